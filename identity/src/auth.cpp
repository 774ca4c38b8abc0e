#include "yilian/identity/auth.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "yilian/common/text.h"

namespace yilian::identity {
namespace {

Error bad_credentials() {
  return make_error(Errc::unauthenticated, "unknown username or wrong password");
}

}  // namespace

bool is_protected_path(std::string_view path) {
  if (path == "/api/auth/login") return false;
  return path.rfind("/api/", 0) == 0 || path == "/api" || path.rfind("/dicom-web/", 0) == 0 ||
         path == "/dicom-web" || path == "/ws" || path.rfind("/ws/", 0) == 0 ||
         path.rfind("/fhir/", 0) == 0 || path == "/fhir";
}

AuthService::AuthService(identity::Accounts& accounts, Auditor& auditor, storage::Clock clock,
                         AuthOptions options)
    : accounts_(accounts), auditor_(auditor), clock_(std::move(clock)), options_(options) {
  auto dummy = hash_password(random_hex(16), options_.password);
  if (dummy.ok()) dummy_hash_ = *dummy;
}

bool AuthService::over_limit(std::map<std::string, Failures>& m, const std::string& key,
                             int limit) {
  auto it = m.find(key);
  if (it == m.end()) return false;
  if (clock_() - it->second.window_start >= options_.lockout) {
    m.erase(it);
    return false;
  }
  return it->second.count >= limit;
}

void AuthService::count_failure(std::map<std::string, Failures>& m, const std::string& key) {
  const storage::TimePoint now = clock_();
  if (m.size() >= 4096) {  // drop windows that have passed, so the map stays bounded
    std::erase_if(m,
                  [&](const auto& kv) { return now - kv.second.window_start >= options_.lockout; });
  }
  Failures& f = m[key];
  if (f.count == 0 || now - f.window_start >= options_.lockout) {
    f.count = 0;
    f.window_start = now;
  }
  ++f.count;
}

// Per username in the database, so that the lockout holds on every node; per address in
// memory (one node's view of a client is enough to slow it down).
bool AuthService::locked_out(const std::string& username) {
  const std::string window = storage::to_iso8601(clock_() - options_.lockout);
  auto n = accounts_.login_failures(username, window);
  // Without the database nobody logs in anyway (the password cannot be checked either).
  return n.ok() && *n >= options_.max_failed_logins;
}

void AuthService::note_failure(const std::string& username) {
  const storage::TimePoint now = clock_();
  Status s = accounts_.note_login_failure(username, storage::to_iso8601(now),
                                          storage::to_iso8601(now - options_.lockout));
  (void)s;  // the failure is audited by the caller either way
}

Result<LoginResult> AuthService::login(std::string_view username_in, std::string_view password,
                                       const std::string& address) {
  std::string username(username_in);
  AuditEvent ev;
  ev.actor = username;
  ev.address = address;
  ev.action = "auth.login";
  ev.object_type = "user";
  ev.object_id = username;
  if (username.size() > kMaxUsernameBytes || password.size() > kMaxPasswordBytes) {
    ev.outcome = "denied";
    ev.detail = "username or password too long";
    (void)auditor_.record(ev);
    return make_error(Errc::invalid_argument,
                      "username (at most " + std::to_string(kMaxUsernameBytes) +
                          " bytes) or password (at most " + std::to_string(kMaxPasswordBytes) +
                          " bytes) too long");
  }
  bool address_blocked = false;
  {
    std::lock_guard lock(mu_);
    address_blocked =
        over_limit(address_failures_, address, options_.max_failed_logins_per_address);
  }
  if (address_blocked) {
    ev.outcome = "denied";
    ev.detail = "address locked out after repeated failures";
    (void)auditor_.record(ev);
    return make_error(Errc::unavailable,
                      "too many failed logins from this address; try again in a few minutes");
  }
  if (locked_out(username)) {
    ev.outcome = "denied";
    ev.detail = "locked out after repeated failures";
    (void)auditor_.record(ev);
    return make_error(Errc::unavailable,
                      "too many failed logins for this user; try again in a few minutes");
  }
  auto rec = accounts_.login_record(username);
  if (!rec.ok()) return rec.error();
  bool ok = false;
  if (rec->has_value()) {
    ok = verify_password(password, (*rec)->password_hash) && !(*rec)->disabled;
  } else {
    (void)verify_password(password, dummy_hash_);
  }
  if (!ok) {
    note_failure(username);
    {
      std::lock_guard lock(mu_);
      count_failure(address_failures_, address);
    }
    ev.outcome = "denied";
    ev.detail = rec->has_value() && (*rec)->disabled ? "user disabled" : "bad credentials";
    (void)auditor_.record(ev);
    return bad_credentials();
  }
  (void)accounts_.clear_login_failures(username);
  LoginResult out;
  out.token = new_token();
  storage::TimePoint now = clock_();
  out.expires_at = storage::to_iso8601(now + options_.token_ttl);
  if (Status s = accounts_.create_session(sha256_hex(out.token), (*rec)->user_id,
                                          storage::to_iso8601(now), out.expires_at, address);
      !s)
    return s.error();
  auto user = accounts_.find_user(username);
  if (!user.ok()) return user.error();
  if (!user->has_value()) return bad_credentials();
  out.user = std::move(**user);
  ev.actor_institution = out.user.institution_code;
  (void)auditor_.record(ev);
  return out;
}

Status AuthService::logout(std::string_view token, const Principal& who,
                           const std::string& address) {
  auto revoked = accounts_.revoke_session(sha256_hex(token), now());
  if (!revoked.ok()) return revoked.error();
  AuditEvent ev = event_for(who, address);
  ev.action = "auth.logout";
  ev.object_type = "user";
  ev.object_id = who.username;
  (void)auditor_.record(ev);
  return Status::Ok();
}

Result<Principal> AuthService::authenticate(std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return make_error(Errc::unauthenticated, "a bearer token is required (POST /api/auth/login)");
  }
  return live_session(header.substr(kBearer.size()), SessionKind::bearer,
                      "the token is unknown, expired or revoked");
}

Result<Principal> AuthService::authenticate_edge(std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return make_error(Errc::unauthenticated,
                      "an edge node's credential is required (issued by POST /api/admin/edges)");
  }
  return live_session(header.substr(kBearer.size()), SessionKind::edge,
                      "the edge credential is unknown or revoked");
}

namespace {
bool valid_edge_name(std::string_view name) {
  if (name.empty() || name.size() > 48) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}
}  // namespace

Result<EdgeCredential> AuthService::issue_edge_credential(std::string_view name,
                                                          std::string_view institution_code) {
  if (!valid_edge_name(name)) {
    return make_error(Errc::invalid_argument,
                      "an edge node's name is 1 to 48 letters, digits or '-'");
  }
  auto inst = accounts_.find_institution(institution_code);
  if (!inst.ok()) return inst.error();
  if (!inst->has_value()) {
    return make_error(Errc::not_found,
                      "no institution with the code " + std::string(institution_code));
  }
  const std::string username = std::string(kEdgeUserPrefix) + std::string(name);
  auto existing = accounts_.find_user(username);
  if (!existing.ok()) return existing.error();
  if (existing->has_value()) {
    return make_error(Errc::conflict, "an edge node named " + std::string(name) +
                                          " exists; revoke it and issue another name");
  }
  NewUser u;
  u.username = username;
  u.display_name = "edge node " + std::string(name);
  u.institution_code = std::string(institution_code);
  u.roles = 1u << static_cast<unsigned>(Role::township_doctor);
  u.password_hash = "!edge";  // no password signs in as a device
  const std::string at = now();
  auto user = accounts_.add_user(u, at);
  if (!user.ok()) return user.error();
  EdgeCredential c;
  c.name = std::string(name);
  c.username = username;
  c.institution_code = std::string(institution_code);
  c.token = new_token();
  c.created_at = at;
  if (Status s = accounts_.create_session(sha256_hex(c.token), user->id, at, "9999-12-31T23:59:59Z",
                                          "", SessionKind::edge);
      !s)
    return s.error();
  return c;
}

Result<bool> AuthService::revoke_edge_credential(std::string_view name) {
  if (!valid_edge_name(name)) return false;
  const std::string username = std::string(kEdgeUserPrefix) + std::string(name);
  auto existing = accounts_.find_user(username);
  if (!existing.ok()) return existing.error();
  if (!existing->has_value()) return false;
  if (Status s = accounts_.set_disabled(username, true, now()); !s) return s.error();
  return true;
}

Result<std::vector<EdgeCredential>> AuthService::edge_credentials() {
  auto users = accounts_.users();
  if (!users.ok()) return users.error();
  std::vector<EdgeCredential> out;
  for (const UserInfo& u : *users) {
    if (u.username.rfind(kEdgeUserPrefix, 0) != 0 || u.display_name.rfind("edge node ", 0) != 0)
      continue;
    EdgeCredential c;
    c.name = u.username.substr(kEdgeUserPrefix.size());
    c.username = u.username;
    c.institution_code = u.institution_code;
    c.created_at = u.created_at;
    c.revoked = u.disabled;
    out.push_back(std::move(c));
  }
  return out;
}

Result<Principal> AuthService::live_session(std::string_view token, SessionKind kind,
                                            const char* when_dead) {
  auto p = accounts_.session_principal(sha256_hex(token), now(), kind);
  if (!p.ok()) return p.error();
  if (!p->has_value()) return make_error(Errc::unauthenticated, when_dead);
  return std::move(**p);
}

Result<ViewerPass> AuthService::open_viewer(const http::Request& request) {
  constexpr std::string_view kBearer = "Bearer ";
  if (!request.principal || request.authorization.rfind(kBearer, 0) != 0) {
    return make_error(Errc::unauthenticated, "a bearer session opens the viewer");
  }
  ViewerPass pass;
  pass.token = new_token();
  const storage::TimePoint at = clock_();
  pass.expires_at = storage::to_iso8601(at + options_.viewer_ttl);
  pass.max_age_s = std::chrono::duration_cast<std::chrono::seconds>(options_.viewer_ttl).count();
  if (Status s = accounts_.create_session(
          sha256_hex(pass.token), request.principal->user_id, storage::to_iso8601(at),
          pass.expires_at, request.peer, SessionKind::viewer,
          sha256_hex(std::string_view(request.authorization).substr(kBearer.size())));
      !s)
    return s.error();
  audit(request, "auth.viewer", "user", request.principal->username, "ok",
        "viewer token until " + pass.expires_at);
  return pass;
}

std::string AuthService::cookie_attributes() const {
  return std::string("; Path=/dicom-web/; HttpOnly; SameSite=Strict") +
         (options_.secure_cookies ? "; Secure" : "");
}

std::string AuthService::viewer_cookie(const ViewerPass& pass) const {
  return std::string(kViewerCookie) + "=" + pass.token + cookie_attributes() +
         "; Max-Age=" + std::to_string(pass.max_age_s);
}

std::string AuthService::cleared_viewer_cookie() const {
  return std::string(kViewerCookie) + "=" + cookie_attributes() + "; Max-Age=0";
}

std::optional<http::Response> AuthService::admit(http::Request& request) {
  if (!is_protected_path(request.path)) return std::nullopt;
  // The advanced viewer's reads: the viewer cookie, for GET and HEAD under /dicom-web/ only.
  if (request.authorization.empty() && (request.method == "GET" || request.method == "HEAD") &&
      request.path.rfind("/dicom-web/", 0) == 0) {
    if (std::string token = http::cookie_value(request.cookie, kViewerCookie); !token.empty()) {
      auto p = live_session(token, SessionKind::viewer,
                            "the viewer token is unknown, expired or revoked; open the study "
                            "again from the worklist");
      if (!p.ok()) return http::Response::from_error(p.error());
      request.principal = std::move(*p);
      return std::nullopt;
    }
  }
  // Edge nodes' credentials are taken on /api/edge/ only, and only they are.
  const bool edge_path = request.path.rfind("/api/edge/", 0) == 0;
  auto p =
      edge_path ? authenticate_edge(request.authorization) : authenticate(request.authorization);
  if (!p.ok()) {
    http::Response r = http::Response::from_error(p.error());
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"yilian\"");
    return r;
  }
  // A temporary password: nothing but replacing it (and who am I, and signing out) until then.
  if (p->must_change_password && request.path != "/api/auth/me" &&
      request.path != "/api/auth/password" && request.path != "/api/auth/logout") {
    nlohmann::json body = {
        {"error",
         {{"code", "password_change_required"},
          {"message", "choose a new password first (POST /api/auth/password)"}}}};
    return http::Response::json(403, json_text(body));
  }
  request.principal = std::move(*p);
  return std::nullopt;
}

Result<LoginResult> AuthService::change_own_password(const Principal& who, std::string_view current,
                                                     std::string_view replacement,
                                                     const std::string& address) {
  AuditEvent ev = event_for(who, address);
  ev.action = "user.password_own";
  ev.object_type = "user";
  ev.object_id = who.username;
  auto fail = [&](Error e) -> Result<LoginResult> {
    ev.outcome = e.code == Errc::invalid_argument ? "failed" : "denied";
    ev.detail = e.message;
    (void)auditor_.record(ev);
    return e;
  };
  if (current.size() > kMaxPasswordBytes || replacement.size() > kMaxPasswordBytes) {
    return fail(make_error(Errc::invalid_argument, "password too long"));
  }
  if (locked_out(who.username)) {
    return fail(make_error(Errc::unavailable,
                           "too many failed attempts for this user; try again in a few minutes"));
  }
  auto rec = accounts_.login_record(who.username);
  if (!rec.ok()) return rec.error();
  if (!rec->has_value() || !verify_password(current, (*rec)->password_hash)) {
    note_failure(who.username);
    return fail(make_error(Errc::unauthenticated, "the current password is wrong"));
  }
  if (current == replacement) {
    return fail(make_error(Errc::invalid_argument, "the new password must differ from the old"));
  }
  if (Status s = set_password(who.username, replacement); !s) return fail(s.error());
  ev.outcome = "ok";
  (void)auditor_.record(ev);
  return login(who.username, replacement, address);
}

Result<identity::UserInfo> AuthService::add_user(identity::NewUser user,
                                                 std::string_view password) {
  if (Status s = check_password_policy(password); !s) return s.error();
  auto hash = hash_password(password, options_.password);
  if (!hash.ok()) return hash.error();
  user.password_hash = std::move(*hash);
  return accounts_.add_user(user, now());
}

Status AuthService::set_password(std::string_view username, std::string_view password,
                                 bool must_change) {
  if (Status s = check_password_policy(password); !s) return s;
  auto hash = hash_password(password, options_.password);
  if (!hash.ok()) return hash.error();
  return accounts_.set_password(username, *hash, now(), must_change);
}

Result<std::optional<std::string>> AuthService::ensure_first_admin(
    const std::string& username, const std::string& institution_code,
    std::optional<std::string> password) {
  auto n = accounts_.count_users();
  if (!n.ok()) return n.error();
  if (*n > 0) return std::optional<std::string>{};
  bool generated = !password.has_value();
  if (generated) password = random_hex(12);
  identity::NewUser admin;
  admin.username = username;
  admin.display_name = "Consortium administrator";
  admin.institution_code = institution_code;
  admin.roles = 1u << static_cast<unsigned>(Role::admin);
  admin.must_change_password = generated;  // shown once on a console: replaced at first sign-in
  auto made = add_user(std::move(admin), *password);
  if (!made.ok()) return made.error();
  AuditEvent ev;
  ev.actor = "system";
  ev.address = "local";
  ev.action = "user.create";
  ev.object_type = "user";
  ev.object_id = username;
  ev.detail = "first administrator";
  (void)auditor_.record(ev);
  return generated ? std::optional<std::string>(*password) : std::optional<std::string>{};
}

void AuthService::audit(const http::Request& req, std::string action, std::string object_type,
                        std::string object_id, std::string outcome, std::string detail) {
  AuditEvent ev = event_for(*req.principal, req.peer);
  ev.action = std::move(action);
  ev.object_type = std::move(object_type);
  ev.object_id = std::move(object_id);
  ev.outcome = std::move(outcome);
  ev.detail = std::move(detail);
  (void)auditor_.record(ev);
}

}  // namespace yilian::identity
