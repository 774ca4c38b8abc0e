// Institutions, users, sessions, reading services and study shares, in the index database.
// Identity checks read on read connections, so they never wait behind a commit. Times are ISO 8601
// UTC strings passed in by the caller (no clock here).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/audit.h"
#include "yilian/identity/records.h"
#include "yilian/storage/database.h"

namespace yilian::identity {

// A bearer session is what login gives (Authorization: Bearer); a viewer session is opened by
// one for the advanced viewer and only reads DICOMweb (auth.h); an edge session is a township
// edge node's credential, taken on /api/edge/ only (auth.h).
enum class SessionKind { bearer, viewer, edge };

struct NewUser {
  std::string username;
  std::string display_name;
  std::string institution_code;
  std::uint32_t roles = 0;
  std::vector<std::string> credential_codes;
  std::string password_hash;
  bool must_change_password = false;
};

struct LoginRecord {
  std::int64_t user_id = 0;
  std::string password_hash;
  bool disabled = false;
};

class Accounts {
 public:
  // `db` must hold the migrated consortium schema.
  explicit Accounts(storage::Database& db);
  ~Accounts();
  Accounts(const Accounts&) = delete;
  Accounts& operator=(const Accounts&) = delete;

  // Institutions. put_institution creates or updates by code (name, level, parent, AE
  // titles are replaced by what is given; an empty name keeps the old one).
  Result<InstitutionInfo> put_institution(const InstitutionInfo& info);
  Result<std::vector<InstitutionInfo>> institutions();
  Result<std::optional<InstitutionInfo>> find_institution(std::string_view code);

  // Users.
  Result<std::int64_t> count_users();
  Result<UserInfo> add_user(const NewUser& user, std::string_view now);
  Result<std::vector<UserInfo>> users();
  Result<std::optional<UserInfo>> find_user(std::string_view username);
  Result<std::optional<LoginRecord>> login_record(std::string_view username);
  // Both revoke every session of the user. `must_change`: the password is temporary, the
  // next sign-in has to replace it before anything else.
  Status set_password(std::string_view username, std::string_view password_hash,
                      std::string_view now, bool must_change = false);
  Status set_disabled(std::string_view username, bool disabled, std::string_view now);
  // Replaces display name, home institution, roles and credentials (`user.username` names the
  // user; its password is untouched). Sessions are revoked when what the user may do changed
  // (roles, institutions), so no session keeps powers the user no longer has.
  Result<UserInfo> update_user(const NewUser& user, std::string_view now);

  // The reading services (subspecialties: neuro, chest, ecg...) a reader works in; none
  // means every service.
  Status set_user_services(std::string_view username, const std::vector<std::string>& services);
  Result<std::vector<std::string>> user_services(std::int64_t user_id);

  // Sessions (bearer tokens, stored as hashes).
  // Failed logins of `username` in the window that started at or after `window_after` (older
  // windows count as none).
  Result<int> login_failures(std::string_view username, std::string_view window_after);
  // Counts one failure: a window older than `window_after` starts again at `now`. Windows that
  // have passed are dropped, so unknown usernames do not pile up.
  Status note_login_failure(std::string_view username, std::string_view now,
                            std::string_view window_after);
  Status clear_login_failures(std::string_view username);
  // A viewer session has the bearer session that opened it as its parent.
  Status create_session(std::string_view token_hash, std::int64_t user_id, std::string_view now,
                        std::string_view expires_at, std::string_view address,
                        SessionKind kind = SessionKind::bearer, std::string_view parent_hash = {});
  // The principal behind a live session of `kind`: not revoked, not expired at `now`, user
  // enabled, and for a viewer session its parent live too.
  Result<std::optional<Principal>> session_principal(std::string_view token_hash,
                                                     std::string_view now,
                                                     SessionKind kind = SessionKind::bearer);
  // Revokes the session and the viewer sessions it opened. False when there was no such live
  // session.
  Result<bool> revoke_session(std::string_view token_hash, std::string_view now);
  // The live bearer sessions at `now`, newest first.
  Result<std::vector<SessionInfo>> live_sessions(std::string_view now);

  // The audit chain's anchor (one row; a later head replaces an earlier one, never the
  // reverse, whichever node writes it).
  Status anchor_audit(const AuditAnchor& anchor);
  Result<std::optional<AuditAnchor>> audit_anchor();

  // Reading services.
  Status add_reading_service(const ReadingService& service);
  // False when there was no such reading service.
  Result<bool> remove_reading_service(const ReadingService& service);
  Result<std::vector<ReadingService>> reading_services();

  // What a user may do, as a session would give it (for choosing whom to notify).
  Result<Principal> principal(std::int64_t user_id);

  // Shares. Fails with not_found for an unknown study, institution or user.
  Status add_share(const StudyShare& share);

  // The principal a DICOM node (AE title) of `institution_id` acts as, with `roles`: no user,
  // the reading services of its institution. Errors: not_found (no such institution).
  Result<Principal> station_principal(std::int64_t institution_id, std::uint32_t roles);

 private:
  // The clients of the reading services that `p`'s home institution (and, for a user, the
  // institutions they are credentialed at) provide.
  Status load_reading_clients(storage::sql::Db& db, Principal& p);
  Result<Principal> load_principal(storage::sql::Db& db, std::int64_t user_id);
  // Every row when the key is empty, else the one with that code / username.
  Result<std::vector<InstitutionInfo>> select_institutions(std::string_view code);
  Result<std::vector<UserInfo>> select_users(std::string_view username);
  Result<std::int64_t> institution_id(storage::sql::Db& db, std::string_view code);
  // Credentials of `user_id` at the institutions `codes` (the home one skipped).
  Status add_credentials(storage::sql::Db& db, std::int64_t user_id, std::int64_t home_id,
                         const std::vector<std::string>& codes);

  storage::Database& db_;
};

}  // namespace yilian::identity
