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
          {"createdAt", u.created_at},
          {"mustChangePassword", u.must_change_password},
          {"passwordChangedAt", u.password_changed_at}};
}

// An optional boolean member; `fallback` when absent.
Result<bool> flag(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    return make_error(Errc::invalid_argument, std::string(key) + " must be true or false");
  return it->get<bool>();
}

// The user fields of a create or update body into `u` (roles by name).
Status read_user_fields(const json& j, identity::NewUser& u, std::vector<std::string>& roles) {
  auto display = str(j, "displayName");
  auto inst = str(j, "institution", true);
  auto role_names = str_list(j, "roles");
  auto creds = str_list(j, "credentials");
  for (const Error* e :
       {display.ok() ? nullptr : &display.error(), inst.ok() ? nullptr : &inst.error(),
        role_names.ok() ? nullptr : &role_names.error(), creds.ok() ? nullptr : &creds.error()}) {
    if (e) return *e;
  }
  u.display_name = *display;
  u.institution_code = *inst;
  u.credential_codes = *creds;
  u.roles = 0;
  for (const std::string& r : *role_names) {
    auto role = parse_role(r);
    if (!role) return make_error(Errc::invalid_argument, "unknown role " + r);
    u.roles |= 1u << static_cast<unsigned>(*role);
  }
  roles = *role_names;
  return Status::Ok();
}

// {"provider", "client", "service"}, all required.
Result<identity::ReadingService> reading_service_body(const Request& req) {
  auto j = body_json(req);
  if (!j.ok()) return j.error();
  identity::ReadingService rs;
  for (auto [key, out] :
       {std::pair{"provider", &rs.provider_code}, std::pair{"client", &rs.client_code},
        std::pair{"service", &rs.service}}) {
    auto v = str(*j, key, true);
    if (!v.ok()) return v.error();
    *out = *v;
  }
  return rs;
}

json audit_json(const identity::AuditRecord& r) {
  return {{"seq", r.seq},
          {"at", r.at},
          {"actor", r.actor},
          {"actorInstitution", r.actor_institution},
          {"address", r.address},
          {"action", r.action},
          {"objectType", r.object_type},
          {"objectId", r.object_id},
          {"outcome", r.outcome},
          {"detail", r.detail},
          {"hash", r.hash}};
}

json institution_json(const identity::InstitutionInfo& i) {
  return {{"code", i.code},
          {"name", i.name},
          {"level", i.level},
          {"parent", i.parent_code.empty() ? json(nullptr) : json(i.parent_code)},
          {"aeTitles", i.ae_titles},
          {"charset", i.charset}};
}

Response forbidden() { return Response::error(403, "this needs the admin role"); }

// The newest successful change of `object` among the actions beginning with `prefix`, as
// {"by", "at", "action"}; null when there is none.
json last_change(AuthService& auth, const std::string& object, const std::string& prefix) {
  identity::AuditFilter f;
  f.object_id = object;
  f.action = prefix;
  f.limit = 20;
  auto rows = auth.auditor().log().find(f);
  if (!rows.ok()) return nullptr;
  for (const auto& r : *rows) {
    if (r.outcome == "ok") return {{"by", r.actor}, {"at", r.at}, {"action", r.action}};
  }
  return nullptr;
}

// Runs `handler` for admins; audits the denial otherwise.
template <typename F>
http::Handler admin_only(AuthService& auth, const char* action, F handler) {
  return [&auth, action, handler](const Request& req) -> Response {
    if (auto no = refuse_non_admin(auth, req, action, "admin")) return *no;
    return handler(req, *req.principal);
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

std::optional<http::Response> refuse_non_admin(AuthService& auth, const http::Request& req,
                                               const char* action, const char* object_type) {
  if (may_administer(*req.principal)) return std::nullopt;
  auth.audit(req, action, object_type, "", "denied");
  return forbidden();
}

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

  // Every user changes their own password here; a temporary one (the first administrator's,
  // one an administrator set) must be changed before anything else works.
  router.add("POST", "/api/auth/password", [&auth](const Request& req) {
    auto j = body_json(req);
    if (!j.ok()) return Response::from_error(j.error());
    auto current = str(*j, "currentPassword", true);
    if (!current.ok()) return Response::from_error(current.error());
    auto next = str(*j, "newPassword", true);
    if (!next.ok()) return Response::from_error(next.error());
    auto r = auth.change_own_password(*req.principal, *current, *next, req.peer);
    if (!r.ok()) {
      if (r.error().code == Errc::unavailable) return Response::error(429, r.error().message);
      // A wrong current password is not an expired session: 403, so the page stays.
      if (r.error().code == Errc::unauthenticated) return Response::error(403, r.error().message);
      return Response::from_error(r.error());
    }
    json body = {{"token", r->token}, {"expiresAt", r->expires_at}, {"user", user_json(r->user)}};
    return Response::json(200, json_text(body));
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

void register_admin_routes(http::Router& router, AuthService& auth, AdminHooks hooks) {
  router.add("GET", "/api/admin/institutions",
             admin_only(auth, "institution.list", [&auth, hooks](const Request&, const Principal&) {
               auto all = auth.accounts().institutions();
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const auto& i : *all) {
                 json j = institution_json(i);
                 j["fromFile"] = hooks.file_institutions.count(i.code) > 0;
                 j["lastChange"] = last_change(auth, i.code, "institution.");
                 list.push_back(std::move(j));
               }
               return Response::json(200, json_text(json{{"institutions", list}}));
             }));

  router.add(
      "POST", "/api/admin/institutions",
      admin_only(auth, "institution.put", [&auth, hooks](const Request& req, const Principal&) {
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
        auto charset = str(*j, "charset");
        if (!charset.ok()) return Response::from_error(charset.error());
        info.charset = *charset;
        if (!info.charset.empty() && hooks.charset_known && !hooks.charset_known(info.charset)) {
          return Response::error(400, "unknown character set " + info.charset +
                                          " (a DICOM defined term such as GB18030)");
        }
        auto made = auth.accounts().put_institution(info);
        Status s = made.ok() ? Status::Ok() : Status(made.error());
        if (s.ok() && hooks.institutions_changed) hooks.institutions_changed();
        std::string detail = "level " + info.level;
        for (const auto& ae : info.ae_titles) detail += " ae " + ae;
        if (!info.charset.empty()) detail += " charset " + info.charset;
        return changed(auth, req, "institution.put", "institution", info.code, s, 200,
                       made.ok() ? institution_json(*made) : json(), detail);
      }));

  // Township edge nodes (auth.h EdgeCredential): issue (the token is in this answer only),
  // list, revoke.
  auto edge_json = [](const EdgeCredential& c) {
    json j{{"name", c.name},
           {"username", c.username},
           {"institution", c.institution_code},
           {"createdAt", c.created_at},
           {"revoked", c.revoked}};
    if (!c.token.empty()) j["token"] = c.token;
    return j;
  };
  router.add("GET", "/api/admin/edges",
             admin_only(auth, "edge.list", [&auth, edge_json](const Request&, const Principal&) {
               auto all = auth.edge_credentials();
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const auto& c : *all) list.push_back(edge_json(c));
               return Response::json(200, json_text(json{{"edges", list}}));
             }));
  router.add(
      "POST", "/api/admin/edges",
      admin_only(auth, "edge.issue", [&auth, edge_json](const Request& req, const Principal&) {
        auto j = body_json(req);
        if (!j.ok()) return Response::from_error(j.error());
        auto name = str(*j, "name", true);
        if (!name.ok()) return Response::from_error(name.error());
        auto institution = str(*j, "institution", true);
        if (!institution.ok()) return Response::from_error(institution.error());
        auto made = auth.issue_edge_credential(*name, *institution);
        Status s = made.ok() ? Status::Ok() : Status(made.error());
        return changed(auth, req, "edge.issue", "edge", *name, s, 201,
                       made.ok() ? edge_json(*made) : json(), "institution " + *institution);
      }));
  router.add("DELETE", "/api/admin/edges/{name}",
             admin_only(auth, "edge.revoke", [&auth](const Request& req, const Principal&) {
               const std::string& name = req.params.at("name");
               auto revoked = auth.revoke_edge_credential(name);
               Status s = !revoked.ok() ? Status(revoked.error())
                          : *revoked    ? Status::Ok()
                                     : Status(make_error(Errc::not_found, "no edge node " + name));
               return changed(auth, req, "edge.revoke", "edge", name, s, 200,
                              json{{"name", name}, {"revoked", true}});
             }));

  router.add("GET", "/api/admin/users",
             admin_only(auth, "user.list", [&auth](const Request&, const Principal&) {
               auto all = auth.accounts().users();
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const auto& u : *all) {
                 json j = user_json(u);
                 auto services = auth.accounts().user_services(u.id);
                 if (!services.ok()) return Response::from_error(services.error());
                 j["services"] = *services;
                 j["lastChange"] = last_change(auth, u.username, "user.");
                 list.push_back(std::move(j));
               }
               return Response::json(200, json_text(json{{"users", list}}));
             }));

  router.add("POST", "/api/admin/users",
             admin_only(auth, "user.create", [&auth](const Request& req, const Principal&) {
               auto j = body_json(req);
               if (!j.ok()) return Response::from_error(j.error());
               identity::NewUser u;
               auto name = str(*j, "username", true);
               auto pass = str(*j, "password", true);
               auto must = flag(*j, "mustChangePassword", false);
               for (const Error* e :
                    {name.ok() ? nullptr : &name.error(), pass.ok() ? nullptr : &pass.error(),
                     must.ok() ? nullptr : &must.error()}) {
                 if (e) return Response::from_error(*e);
               }
               u.username = *name;
               u.must_change_password = *must;
               std::vector<std::string> roles;
               if (Status s = read_user_fields(*j, u, roles); !s)
                 return Response::from_error(s.error());
               auto made = auth.add_user(u, *pass);
               Status s = made.ok() ? Status::Ok() : Status(made.error());
               return changed(auth, req, "user.create", "user", u.username, s, 201,
                              made.ok() ? user_json(*made) : json(),
                              "roles " + roles_to_string(u.roles));
             }));

  router.add("PUT", "/api/admin/users/{username}",
             admin_only(auth, "user.update", [&auth](const Request& req, const Principal&) {
               auto j = body_json(req);
               if (!j.ok()) return Response::from_error(j.error());
               identity::NewUser u;
               u.username = req.params.at("username");
               std::vector<std::string> roles;
               if (Status s = read_user_fields(*j, u, roles); !s)
                 return Response::from_error(s.error());
               auto made = auth.accounts().update_user(u, auth.now());
               Status s = made.ok() ? Status::Ok() : Status(made.error());
               std::string detail =
                   "roles " + roles_to_string(u.roles) + " at " + u.institution_code;
               for (const auto& c : u.credential_codes) detail += "+" + c;
               return changed(auth, req, "user.update", "user", u.username, s, 200,
                              made.ok() ? user_json(*made) : json(), detail);
             }));

  // Who is signed in now (live sessions; no tokens, not even their hashes).
  router.add("GET", "/api/admin/sessions",
             admin_only(auth, "session.list", [&auth](const Request&, const Principal&) {
               auto all = auth.accounts().live_sessions(auth.now());
               if (!all.ok()) return Response::from_error(all.error());
               json list = json::array();
               for (const auto& x : *all) {
                 list.push_back({{"username", x.username},
                                 {"since", x.created_at},
                                 {"expiresAt", x.expires_at},
                                 {"address", x.address}});
               }
               return Response::json(200, json_text(json{{"sessions", list}}));
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

  router.add(
      "POST", "/api/admin/users/{username}/password",
      admin_only(auth, "user.password", [&auth](const Request& req, const Principal&) {
        auto j = body_json(req);
        if (!j.ok()) return Response::from_error(j.error());
        auto pass = str(*j, "password", true);
        if (!pass.ok()) return Response::from_error(pass.error());
        auto must = flag(*j, "mustChange", false);
        if (!must.ok()) return Response::from_error(must.error());
        const std::string& name = req.params.at("username");
        Status s = auth.set_password(name, *pass, *must);
        return changed(
            auth, req, "user.password", "user", name, s, 200,
            json{{"username", name}, {"sessionsRevoked", true}, {"mustChangePassword", *must}},
            *must ? "temporary: to be changed at the next sign-in" : "");
      }));

  router.add(
      "GET", "/api/admin/reading-services",
      admin_only(auth, "reading_service.list", [&auth, hooks](const Request&, const Principal&) {
        auto all = auth.accounts().reading_services();
        if (!all.ok()) return Response::from_error(all.error());
        json list = json::array();
        for (const auto& r : *all) {
          list.push_back(
              {{"provider", r.provider_code},
               {"client", r.client_code},
               {"service", r.service},
               {"fromFile", hooks.file_reading_services.count(
                                r.provider_code + ":" + r.client_code + ":" + r.service) > 0}});
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
               auto body = reading_service_body(req);
               if (!body.ok()) return Response::from_error(body.error());
               const identity::ReadingService& rs = *body;
               Status s = auth.accounts().add_reading_service(rs);
               return changed(auth, req, "reading_service.add", "institution", rs.client_code, s,
                              201,
                              json{{"provider", rs.provider_code},
                                   {"client", rs.client_code},
                                   {"service", rs.service}},
                              rs.provider_code + " reads " + rs.service + " for " + rs.client_code);
             }));

  router.add(
      "POST", "/api/admin/reading-services/remove",
      admin_only(auth, "reading_service.remove", [&auth](const Request& req, const Principal&) {
        auto body = reading_service_body(req);
        if (!body.ok()) return Response::from_error(body.error());
        const identity::ReadingService& rs = *body;
        auto removed = auth.accounts().remove_reading_service(rs);
        Status s = !removed.ok() ? Status(removed.error())
                   : *removed    ? Status::Ok()
                                 : Status(make_error(Errc::not_found, "no such reading service"));
        return changed(
            auth, req, "reading_service.remove", "institution", rs.client_code, s, 200,
            json{{"provider", rs.provider_code},
                 {"client", rs.client_code},
                 {"service", rs.service},
                 {"removed", true}},
            rs.provider_code + " no longer reads " + rs.service + " for " + rs.client_code);
      }));

  router.add("GET", "/api/audit",
             admin_only(auth, "audit.read", [&auth](const Request& req, const Principal&) {
               identity::AuditFilter f;
               f.actor = req.query_value("actor").value_or("");
               f.action = req.query_value("action").value_or("");
               f.object_id = req.query_value("object").value_or("");
               f.from = req.query_value("from").value_or("");
               f.to = req.query_value("to").value_or("");
               f.institution = req.query_value("institution").value_or("");
               const bool csv = req.query_value("format").value_or("") == "csv";
               // A CSV export for the regulator takes up to 100,000 records at once.
               auto limit = req.int_query("limit", csv ? 100000 : 100, csv ? 100000 : 1000);
               if (!limit.ok()) return Response::from_error(limit.error());
               auto before = req.int_query("before", 0, std::int64_t{1} << 62);
               if (!before.ok()) return Response::from_error(before.error());
               f.limit = *limit;
               f.before_seq = *before;
               auto rows = auth.auditor().log().find(f);
               if (!rows.ok()) return Response::from_error(rows.error());
               if (csv) {
                 Response r;
                 r.content_type = "text/csv; charset=utf-8";
                 r.headers.emplace_back("Content-Disposition",
                                        "attachment; filename=\"audit.csv\"");
                 // The byte order mark tells spreadsheets the file is UTF-8 (Chinese names).
                 r.body =
                     "\xEF\xBB\xBFseq,at,actor,actor_institution,address,action,object_type,"
                     "object_id,outcome,detail,hash\r\n";
                 for (const auto& a : *rows) {
                   r.body += std::to_string(a.seq);
                   for (const std::string* v :
                        {&a.at, &a.actor, &a.actor_institution, &a.address, &a.action,
                         &a.object_type, &a.object_id, &a.outcome, &a.detail, &a.hash}) {
                     r.body += "," + csv_field(*v);
                   }
                   r.body += "\r\n";
                 }
                 return r;
               }
               json list = json::array();
               for (const auto& r : *rows) list.push_back(audit_json(r));
               return Response::json(200, json_text(json{{"records", list}}));
             }));

  // The chain checked from its first record to its head (and against the anchor in the index):
  // what `yilian audit verify` says, for the screen.
  router.add("GET", "/api/audit/verify",
             admin_only(auth, "audit.verify", [&auth](const Request&, const Principal&) {
               auto anchor = auth.accounts().audit_anchor();
               if (!anchor.ok()) return Response::from_error(anchor.error());
               auto report = verify_chain(auth.auditor().log(), *anchor);
               if (!report.ok()) return Response::from_error(report.error());
               json body = {{"intact", report->intact},
                            {"records", report->records},
                            {"checkedAt", auth.now()}};
               if (!report->intact) {
                 body["firstBadSeq"] = report->first_bad_seq;
                 body["problem"] = report->problem;
               }
               return Response::json(200, json_text(body));
             }));
}

}  // namespace yilian::identity
