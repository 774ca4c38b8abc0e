// Authentication: login with username and password, bearer sessions with expiry and
// revocation, and the gate every protected HTTP path passes through.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/accounts.h"
#include "yilian/identity/audit.h"
#include "yilian/identity/crypto.h"
#include "yilian/net/http.h"
#include "yilian/storage/clock.h"

namespace yilian::identity {

struct AuthOptions {
  std::chrono::minutes token_ttl{12 * 60};
  PasswordParams password;
  // After this many failed logins for one username within `lockout`, further attempts are
  // refused until the window has passed.
  int max_failed_logins = 5;
  std::chrono::minutes lockout{15};
  // The same from one address, whatever usernames it tries.
  int max_failed_logins_per_address = 30;
  // How long a viewer token lives (it dies sooner with its session).
  std::chrono::minutes viewer_ttl{4 * 60};
  // Cookies carry Secure (the hub serves HTTPS itself, or behind a proxy that does).
  bool secure_cookies = false;
};

// The advanced viewer (OHIF at /ohif/) sends no Authorization header, so the session that opens
// it gets a viewer token in this cookie. It is safe because:
//   - HttpOnly: no script, of the viewer or of any page, can read it;
//   - SameSite=Strict: no other site can make the browser send it (no cross-site requests or
//     embedded images carry it);
//   - Path=/dicom-web/, and accepted only for GET and HEAD there: it reads what its user may
//     read, through the same institution and role checks and the same audit as a bearer token,
//     and writes nothing; /api and /ws never take it;
//   - it is short-lived (viewer_ttl) and dies with the session that opened it (logout, password
//     change, disabled user), and a viewer token is never taken as a bearer token.
inline constexpr std::string_view kViewerCookie = "yilian_viewer";

struct ViewerPass {
  std::string token;
  std::string expires_at;
  std::int64_t max_age_s = 0;
};

// A township edge node's credential (`yilian edge`): a device account of one institution
// (username "edge.<name>", role township_doctor, no password) with one edge session that does
// not expire. It is taken on /api/edge/ only, where no other token is, so it uploads to and
// reads for its own institution through the edge routes and nothing else. Revoking disables
// the account, which ends the session.
inline constexpr std::string_view kEdgeUserPrefix = "edge.";
struct EdgeCredential {
  std::string name;
  std::string username;
  std::string institution_code;
  std::string token;  // given once, at issue; only its hash is kept
  std::string created_at;
  bool revoked = false;
};

// Longest username and password a login takes; longer ones are refused before anything is
// looked up, stored or logged.
inline constexpr std::size_t kMaxUsernameBytes = 128;
inline constexpr std::size_t kMaxPasswordBytes = 1024;

struct LoginResult {
  std::string token;
  std::string expires_at;
  identity::UserInfo user;
};

// Paths that need a bearer token: everything under /api/ (except /api/auth/login),
// /dicom-web/ and /ws.
bool is_protected_path(std::string_view path);

class AuthService {
 public:
  AuthService(identity::Accounts& accounts, Auditor& auditor, storage::Clock clock,
              AuthOptions options);

  // Errors: unauthenticated (wrong username/password or disabled user, indistinguishable),
  // unavailable (too many failed attempts).
  Result<LoginResult> login(std::string_view username, std::string_view password,
                            const std::string& address);
  // Revokes the session of `token`.
  Status logout(std::string_view token, const Principal& who, const std::string& address);
  // "Bearer <token>" -> the principal of a live session.
  Result<Principal> authenticate(std::string_view authorization_header);
  // "Bearer <token>" -> the principal of an edge node's live credential.
  Result<Principal> authenticate_edge(std::string_view authorization_header);
  // A viewer token for the bearer session of `request` (already admitted).
  Result<ViewerPass> open_viewer(const http::Request& request);
  // The Set-Cookie values that hand a viewer token to the browser and take it back.
  std::string viewer_cookie(const ViewerPass& pass) const;
  std::string cleared_viewer_cookie() const;
  // For protected paths: sets request.principal, or returns the 401 to send.
  std::optional<http::Response> admit(http::Request& request);

  // Creates a user with a hashed password (the policy is checked).
  Result<identity::UserInfo> add_user(identity::NewUser user, std::string_view password);
  // `must_change`: a temporary password (an administrator's reset): the user's next sign-in
  // has to replace it before anything else.
  Status set_password(std::string_view username, std::string_view password,
                      bool must_change = false);
  // A signed-in user replaces their own password: `current` must be right (failures count
  // towards the lockout like failed logins), `replacement` must meet the policy and differ.
  // Every session of the user is revoked; the answer is a fresh session.
  // Errors: unauthenticated (wrong current password), invalid_argument (policy), unavailable
  // (locked out).
  Result<LoginResult> change_own_password(const Principal& who, std::string_view current,
                                          std::string_view replacement, const std::string& address);

  // Edge nodes. `name`: 1 to 48 letters, digits or '-'. Errors: invalid_argument (name),
  // not_found (institution), conflict (the name is taken).
  Result<EdgeCredential> issue_edge_credential(std::string_view name,
                                               std::string_view institution_code);
  // False when there is no such edge node.
  Result<bool> revoke_edge_credential(std::string_view name);
  // Every edge node issued, with whether it is revoked (no tokens).
  Result<std::vector<EdgeCredential>> edge_credentials();

  // On a hub with no users: creates `username` as admin of `institution_code` with the
  // given password, or a generated one that is returned (to be shown once).
  Result<std::optional<std::string>> ensure_first_admin(const std::string& username,
                                                        const std::string& institution_code,
                                                        std::optional<std::string> password);

  identity::Accounts& accounts() { return accounts_; }
  Auditor& auditor() { return auditor_; }
  // One audit record for what the request's principal did (every REST module's audit line).
  void audit(const http::Request& req, std::string action, std::string object_type,
             std::string object_id, std::string outcome, std::string detail = {});
  std::string now() const { return storage::to_iso8601(clock_()); }

 private:
  bool locked_out(const std::string& username);
  std::string cookie_attributes() const;
  // The principal of a live session of `kind` with this raw token; unauthenticated with
  // `when_dead` otherwise.
  Result<Principal> live_session(std::string_view token, SessionKind kind, const char* when_dead);
  void note_failure(const std::string& username);

  identity::Accounts& accounts_;
  Auditor& auditor_;
  storage::Clock clock_;
  AuthOptions options_;
  std::string dummy_hash_;  // verified against when the user does not exist (equal timing)
  std::mutex mu_;
  struct Failures {
    int count = 0;
    storage::TimePoint window_start;
  };
  std::map<std::string, Failures> address_failures_;  // by peer address; guarded by mu_
  // True when `key` has `limit` failures in the current window (expired windows dropped).
  bool over_limit(std::map<std::string, Failures>& m, const std::string& key, int limit);
  void count_failure(std::map<std::string, Failures>& m, const std::string& key);
};

}  // namespace yilian::identity
