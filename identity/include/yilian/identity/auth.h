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
  // For protected paths: sets request.principal, or returns the 401 to send.
  std::optional<http::Response> admit(http::Request& request);

  // Creates a user with a hashed password (the policy is checked).
  Result<identity::UserInfo> add_user(identity::NewUser user, std::string_view password);
  Status set_password(std::string_view username, std::string_view password);

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
