#include "yilian/identity/rest.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/policy.h"

namespace yilian::identity {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

Result<json> body_json(const Request& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::invalid_argument, "the request body must be a JSON object");
  }
  return j;
}

// A string member; empty when absent. Wrong type is an error.
Result<std::string> str(const json& j, const char* key, bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return make_error(Errc::invalid_argument, std::string(key) + " is required");
    return std::string();
  }
  if (!it->is_string())
    return make_error(Errc::invalid_argument, std::string(key) + " must be a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> str_list(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array())
    return make_error(Errc::invalid_argument, std::string(key) + " must be an array");
  for (const json& v : *it) {
    if (!v.is_string())
      return make_error(Errc::invalid_argument, std::string(key) + " must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

json user_json(const identity::UserInfo& u) {
  json roles = json::array();
  for (Role r : kAllRoles) {
    if ((u.roles >> static_cast<unsigned>(r)) & 1u) roles.push_back(role_name(r));
  }
  return {{"username", u.username},
          {"displayName", u.display_name},
          {"institution", u.institution_code},
          {"roles", roles},
          {"credentials", u.credentialed_codes},
          {"disabled", u.disabled},
          {"createdAt", u.created_at}};
}

json institution_json(const identity::InstitutionInfo& i) {
  return {{"code", i.code},
          {"name", i.name},
          {"level", i.level},
          {"parent", i.parent_code.empty() ? json(nullptr) : json(i.parent_code)},
          {"aeTitles", i.ae_titles}};
}

Response forbidden() { return Response::error(403, "this needs the admin role"); }

// Runs `handler` for admins; audits the denial otherwise.
template <typename F>
http::Handler admin_only(AuthService& auth, const char* action, F handler) {
  return [&auth, action, handler](const Request& req) -> Response {
    const Principal& p = *req.principal;
    if (!may_administer(p)) {
      AuditEvent ev = event_for(p, req.peer);
      ev.action = action;
      ev.object_type = "admin";
      ev.outcome = "denied";
      (void)auth.auditor().record(ev);
      return forbidden();
    }
    return handler(req, p);
  };
}

// Records an admin change and answers.
Response changed(AuthService& auth, const Request& req, const char* action, const char* type,
                 const std::string& id, const Status& s, int status, json body,
                 std::string detail = {}) {
  AuditEvent ev = event_for(*req.principal, req.peer);
  ev.action = action;
  ev.object_type = type;
  ev.object_id = id;
  ev.outcome = s.ok() ? "ok" : "failed";
  ev.detail = s.ok() ? std::move(detail) : s.error().message;
  (void)auth.auditor().record(ev);
  if (!s.ok()) return Response::from_error(s.error());
  return Response::json(status, json_text(body));
}

}  // namespace

void register_auth_routes(http::Router& router, AuthService& auth) {
  router.add("POST", "/api/auth/login", [&auth](const Request& req) {
    auto j = body_json(req);
    if (!j.ok()) return Response::from_error(j.error());
    auto user = str(*j, "username", true);
    if (!user.ok()) return Response::from_error(user.error());
    auto pass = str(*j, "password", true);
    if (!pass.ok()) return Response::from_error(pass.error());
    auto r = auth.login(*user, *pass, req.peer);
    if (!r.ok()) {
      if (r.error().code == Errc::unavailable) {
        return Response::error(429, r.error().message);
      }
      return Response::from_error(r.error());
    }
    json body = {{"token", r->token}, {"expiresAt", r->expires_at}, {"user", user_json(r->user)}};
    return Response::json(200, json_text(body));
  });

  router.add("POST", "/api/auth/logout", [&auth](const Request& req) {
    std::string token = req.authorization.substr(std::string_view("Bearer ").size());
    Status s = auth.logout(token, *req.principal, req.peer);
    if (!s) return Response::from_error(s.error());
    Response r = Response::json(200, R"({"loggedOut":true})");
    r.headers.emplace_back("Set-Cookie", auth.cleared_viewer_cookie());
    return r;
  });

  // The advanced viewer's pass: a viewer token in an HttpOnly cookie for /dicom-web/ (auth.h).
  router.add("POST", "/api/auth/viewer", [&auth](const Request& req) {
    auto pass = auth.open_viewer(req);
    if (!pass.ok()) return Response::from_error(pass.error());
    Response r =
        Response::json(200, json_text(json{{"expiresAt", pass->expires_at}, {"viewer", "/ohif/"}}));
    r.headers.emplace_back("Set-Cookie", auth.viewer_cookie(*pass));
    return r;
  });

  router.add("GET", "/api/auth/me", [&auth](const Request& req) {
    auto u = auth.accounts().find_user(req.principal->username);
    if (!u.ok()) return Response::from_error(u.error());
    if (!u->has_value()) return Response::error(401, "no such user");
    return Response::json(200, json_text(user_json(**u)));
  });

  // The consortium's directory, for every signed-in user (choosing where to refer): codes,
  // names, levels and parents; AE titles stay with the admins.
  router.add("GET", "/api/institutions", [&auth](const Request&) {
    auto all = auth.accounts().institutions();
    if (!all.ok()) return Response::from_error(all.error());
    json list = json::array();
    for (const auto& i : *all) {
      json j = institution_json(i);
      j.erase("aeTitles");
      list.push_back(std::move(j));
    }
    return Response::json(200, json_text(json{{"institutions", list}}));
  });
}

void register_admin_routes(http::Router& router, AuthService& auth) {
  router.add("GET", "/api/admin/institutions",
             admin_only(auth, "institution.list", [&auth](const Request&, const Principal&) {
               auto all = auth.accounts().institutions();
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const auto& i : *all) list.push_back(institution_json(i));
               return Response::json(200, json_text(json{{"institutions", list}}));
             }));

  router.add("POST", "/api/admin/institutions",
             admin_only(auth, "institution.put", [&auth](const Request& req, const Principal&) {
               auto j = body_json(req);
               if (!j.ok()) return Response::from_error(j.error());
               identity::InstitutionInfo info;
               for (auto [key, out, req_] :
                    {std::tuple{"code", &info.code, true}, std::tuple{"name", &info.name, false},
                     std::tuple{"level", &info.level, true},
                     std::tuple{"parent", &info.parent_code, false}}) {
                 auto v = str(*j, key, req_);
                 if (!v.ok()) return Response::from_error(v.error());
                 *out = *v;
               }
               auto aes = str_list(*j, "aeTitles");
               if (!aes.ok()) return Response::from_error(aes.error());
               info.ae_titles = *aes;
               auto made = auth.accounts().put_institution(info);
               Status s = made.ok() ? Status::Ok() : Status(made.error());
               return changed(auth, req, "institution.put", "institution", info.code, s, 200,
                              made.ok() ? institution_json(*made) : json());
             }));

  router.add("GET", "/api/admin/users",
             admin_only(auth, "user.list", [&auth](const Request&, const Principal&) {
               auto all = auth.accounts().users();
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const auto& u : *all) list.push_back(user_json(u));
               return Response::json(200, json_text(json{{"users", list}}));
             }));

  router.add(
      "POST", "/api/admin/users",
      admin_only(auth, "user.create", [&auth](const Request& req, const Principal&) {
        auto j = body_json(req);
        if (!j.ok()) return Response::from_error(j.error());
        identity::NewUser u;
        auto name = str(*j, "username", true);
        auto display = str(*j, "displayName");
        auto inst = str(*j, "institution", true);
        auto pass = str(*j, "password", true);
        auto roles = str_list(*j, "roles");
        auto creds = str_list(*j, "credentials");
        for (const Error* e :
             {name.ok() ? nullptr : &name.error(), display.ok() ? nullptr : &display.error(),
              inst.ok() ? nullptr : &inst.error(), pass.ok() ? nullptr : &pass.error(),
              roles.ok() ? nullptr : &roles.error(), creds.ok() ? nullptr : &creds.error()}) {
          if (e) return Response::from_error(*e);
        }
        u.username = *name;
        u.display_name = *display;
        u.institution_code = *inst;
        u.credential_codes = *creds;
        for (const std::string& r : *roles) {
          auto role = parse_role(r);
          if (!role) return Response::error(400, "unknown role " + r);
          u.roles |= 1u << static_cast<unsigned>(*role);
        }
        auto made = auth.add_user(u, *pass);
        Status s = made.ok() ? Status::Ok() : Status(made.error());
        return changed(auth, req, "user.create", "user", u.username, s, 201,
                       made.ok() ? user_json(*made) : json(), "roles " + roles_to_string(u.roles));
      }));

  for (const char* verb : {"disable", "enable"}) {
    bool disable = std::string_view(verb) == "disable";
    const char* action = disable ? "user.disable" : "user.enable";
    router.add(
        "POST", std::string("/api/admin/users/{username}/") + verb,
        admin_only(auth, action, [&auth, disable, action](const Request& req, const Principal&) {
          const std::string& name = req.params.at("username");
          Status s = auth.accounts().set_disabled(name, disable, auth.now());
          return changed(auth, req, action, "user", name, s, 200,
                         json{{"username", name}, {"disabled", disable}});
        }));
  }

  router.add("POST", "/api/admin/users/{username}/password",
             admin_only(auth, "user.password", [&auth](const Request& req, const Principal&) {
               auto j = body_json(req);
               if (!j.ok()) return Response::from_error(j.error());
               auto pass = str(*j, "password", true);
               if (!pass.ok()) return Response::from_error(pass.error());
               const std::string& name = req.params.at("username");
               Status s = auth.set_password(name, *pass);
               return changed(auth, req, "user.password", "user", name, s, 200,
                              json{{"username", name}, {"sessionsRevoked", true}});
             }));

  router.add(
      "GET", "/api/admin/reading-services",
      admin_only(auth, "reading_service.list", [&auth](const Request&, const Principal&) {
        auto all = auth.accounts().reading_services();
        if (!all.ok()) return Response::from_error(all.error());
        json list = json::array();
        for (const auto& r : *all) {
          list.push_back(
              {{"provider", r.provider_code}, {"client", r.client_code}, {"service", r.service}});
        }
        return Response::json(200, json_text(json{{"readingServices", list}}));
      }));

  router.add("PUT", "/api/admin/users/{username}/services",
             admin_only(auth, "user.services", [&auth](const Request& req, const Principal&) {
               auto j = body_json(req);
               if (!j.ok()) return Response::from_error(j.error());
               auto services = str_list(*j, "services");
               if (!services.ok()) return Response::from_error(services.error());
               const std::string& name = req.params.at("username");
               Status s = auth.accounts().set_user_services(name, *services);
               std::string detail;
               for (const auto& sv : *services) detail += (detail.empty() ? "" : ",") + sv;
               return changed(auth, req, "user.services", "user", name, s, 200,
                              json{{"username", name}, {"services", *services}}, detail);
             }));

  router.add("POST", "/api/admin/reading-services",
             admin_only(auth, "reading_service.add", [&auth](const Request& req, const Principal&) {
               auto j = body_json(req);
               if (!j.ok()) return Response::from_error(j.error());
               identity::ReadingService rs;
               for (auto [key, out] :
                    {std::pair{"provider", &rs.provider_code}, std::pair{"client", &rs.client_code},
                     std::pair{"service", &rs.service}}) {
                 auto v = str(*j, key, true);
                 if (!v.ok()) return Response::from_error(v.error());
                 *out = *v;
               }
               Status s = auth.accounts().add_reading_service(rs);
               return changed(auth, req, "reading_service.add", "institution", rs.client_code, s,
                              201,
                              json{{"provider", rs.provider_code},
                                   {"client", rs.client_code},
                                   {"service", rs.service}},
                              rs.provider_code + " reads " + rs.service + " for " + rs.client_code);
             }));

  router.add("GET", "/api/audit",
             admin_only(auth, "audit.read", [&auth](const Request& req, const Principal&) {
               identity::AuditFilter f;
               f.actor = req.query_value("actor").value_or("");
               f.action = req.query_value("action").value_or("");
               f.object_id = req.query_value("object").value_or("");
               f.from = req.query_value("from").value_or("");
               f.to = req.query_value("to").value_or("");
               auto limit = req.int_query("limit", 100, 1000);
               if (!limit.ok()) return Response::from_error(limit.error());
               auto before = req.int_query("before", 0, std::int64_t{1} << 62);
               if (!before.ok()) return Response::from_error(before.error());
               f.limit = *limit;
               f.before_seq = *before;
               auto rows = auth.auditor().log().find(f);
               if (!rows.ok()) return Response::from_error(rows.error());
               json list = json::array();
               for (const auto& r : *rows) {
                 list.push_back({{"seq", r.seq},
                                 {"at", r.at},
                                 {"actor", r.actor},
                                 {"actorInstitution", r.actor_institution},
                                 {"address", r.address},
                                 {"action", r.action},
                                 {"objectType", r.object_type},
                                 {"objectId", r.object_id},
                                 {"outcome", r.outcome},
                                 {"detail", r.detail},
                                 {"hash", r.hash}});
               }
               return Response::json(200, json_text(json{{"records", list}}));
             }));
}

}  // namespace yilian::identity
