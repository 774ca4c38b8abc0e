#include "yilian/identity/accounts.h"

#include <algorithm>
#include <functional>

#include "yilian/storage/sql.h"

namespace yilian::identity {

namespace sql = storage::sql;
using storage::Database;
using storage::SchemaStep;
using storage::write;
namespace {

const char* session_kind_name(SessionKind k) {
  switch (k) {
    case SessionKind::viewer:
      return "viewer";
    case SessionKind::edge:
      return "edge";
    case SessionKind::bearer:
      break;
  }
  return "bearer";
}

using sql::query;

Status exec_bound(sql::Db& db, const char* q, const std::function<void(sql::Stmt&)>& bind) {
  return sql::run(db, q, bind);
}

// "a,b,c" (from group_concat) -> {"a", "b", "c"}; "" -> {}.
std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  for (std::size_t b = 0; b < list.size();) {
    std::size_t e = list.find(',', b);
    if (e == std::string::npos) e = list.size();
    out.push_back(list.substr(b, e - b));
    b = e + 1;
  }
  return out;
}

bool is_constraint(const Error& e) { return e.message.find("constraint") != std::string::npos; }

constexpr const char* kLevels[] = {"lead",    "county", "community", "township",
                                   "village", "office", "external"};

}  // namespace

Accounts::Accounts(Database& db) : db_(db) {}
Accounts::~Accounts() = default;

Result<std::int64_t> Accounts::institution_id(sql::Db& db, std::string_view code) {
  std::optional<std::int64_t> id;
  if (Status s = query(
          db, "SELECT id FROM institutions WHERE code = ?1",
          [&](sql::Stmt& st) { st.bind(1, code); }, [&](sql::Stmt& st) { id = st.int64(0); });
      !s)
    return s.error();
  if (!id)
    return make_error(Errc::not_found, "no institution with code '" + std::string(code) + "'");
  return *id;
}

Status Accounts::add_credentials(sql::Db& db, std::int64_t user_id, std::int64_t home_id,
                                 const std::vector<std::string>& codes) {
  for (const std::string& code : codes) {
    auto c = institution_id(db, code);
    if (!c.ok()) return c.error();
    if (*c == home_id) continue;
    if (Status e = exec_bound(
            db, "INSERT OR IGNORE INTO user_credentials(user_id, institution_id) VALUES(?1, ?2)",
            [&](sql::Stmt& st) {
              st.bind(1, user_id);
              st.bind(2, *c);
            });
        !e)
      return e;
  }
  return Status::Ok();
}

Result<InstitutionInfo> Accounts::put_institution(const InstitutionInfo& info) {
  if (info.code.empty()) return make_error(Errc::invalid_argument, "an institution needs a code");
  if (std::find(std::begin(kLevels), std::end(kLevels), info.level) == std::end(kLevels)) {
    return make_error(Errc::invalid_argument,
                      "level must be one of lead, county, community, township, village, office, "
                      "external");
  }
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::optional<std::int64_t> parent;
  if (!info.parent_code.empty()) {
    if (info.parent_code == info.code) {
      return make_error(Errc::invalid_argument, "an institution cannot be its own parent");
    }
    auto p = institution_id(tx.conn(), info.parent_code);
    if (!p.ok()) return p.error();
    parent = *p;
  }
  std::int64_t id = 0;
  if (Status s = query(
          tx.conn(),
          "INSERT INTO institutions(code, name, level, parent_id, charset) "
          "VALUES(?1, ?2, ?3, ?4, ?5) "
          "ON CONFLICT(code) DO UPDATE SET name = CASE WHEN excluded.name <> '' THEN "
          "excluded.name ELSE institutions.name END, level = excluded.level, parent_id = "
          "excluded.parent_id, charset = excluded.charset "
          "RETURNING id",
          [&](sql::Stmt& st) {
            st.bind(1, info.code);
            st.bind(2, info.name.empty() ? info.code : info.name);
            st.bind(3, info.level);
            st.bind(4, parent);
            st.bind(5, info.charset);
          },
          [&](sql::Stmt& st) { id = st.int64(0); });
      !s)
    return s.error();
  if (Status s = exec_bound(tx.conn(), "DELETE FROM institution_aes WHERE institution_id = ?1",
                            [&](sql::Stmt& st) { st.bind(1, id); });
      !s)
    return s.error();
  for (const std::string& ae : info.ae_titles) {
    if (ae.empty() || ae.size() > 16) {
      return make_error(Errc::invalid_argument, "AE titles are 1 to 16 characters: '" + ae + "'");
    }
    Status s = exec_bound(tx.conn(),
                          "INSERT INTO institution_aes(ae_title, institution_id) VALUES(?1, ?2)",
                          [&](sql::Stmt& st) {
                            st.bind(1, ae);
                            st.bind(2, id);
                          });
    if (!s) {
      if (is_constraint(s.error())) {
        return make_error(Errc::conflict,
                          "AE title " + ae + " already belongs to another institution");
      }
      return s.error();
    }
  }
  if (Status s = tx.commit(); !s) return s.error();
  InstitutionInfo out = info;
  out.id = id;
  return out;
}

Result<std::vector<InstitutionInfo>> Accounts::select_institutions(std::string_view code) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<InstitutionInfo> out;
  if (Status s = query(
          rd->conn(),
          "SELECT i.id, i.code, i.name, i.level, coalesce(p.code, ''), "
          "coalesce((SELECT group_concat(ae_title, ',') FROM (SELECT ae_title FROM "
          "institution_aes WHERE institution_id = i.id ORDER BY ae_title) AS a), ''), "
          "i.charset FROM institutions i LEFT JOIN institutions p ON p.id = i.parent_id "
          "WHERE ?1 = '' OR i.code = ?1 ORDER BY i.id",
          [&](sql::Stmt& st) { st.bind(1, code); },
          [&](sql::Stmt& st) {
            out.push_back(InstitutionInfo{st.int64(0), st.text(1), st.text(2), st.text(3),
                                          st.text(4), split_list(st.text(5)), st.text(6)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<InstitutionInfo>> Accounts::institutions() { return select_institutions(""); }

Result<std::optional<InstitutionInfo>> Accounts::find_institution(std::string_view code) {
  if (code.empty()) return std::optional<InstitutionInfo>{};
  auto found = select_institutions(code);
  if (!found.ok()) return found.error();
  if (found->empty()) return std::optional<InstitutionInfo>{};
  return std::optional<InstitutionInfo>(std::move(found->front()));
}

Result<std::int64_t> Accounts::count_users() {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::int64_t n = 0;
  if (Status s = query(
          rd->conn(), "SELECT count(*) FROM users", [](sql::Stmt&) {},
          [&](sql::Stmt& st) { n = st.int64(0); });
      !s)
    return s.error();
  return n;
}

Result<UserInfo> Accounts::add_user(const NewUser& u, std::string_view now) {
  if (u.username.empty() || u.username.size() > 64 ||
      u.username.find_first_of(" \t\r\n/\\:") != std::string::npos) {
    return make_error(Errc::invalid_argument,
                      "a username is 1 to 64 characters without spaces, slashes or colons");
  }
  if (u.roles == 0) return make_error(Errc::invalid_argument, "a user needs at least one role");
  {
    Database::Write tx(db_);
    if (Status s = tx.begin(); !s) return s.error();
    auto inst = institution_id(tx.conn(), u.institution_code);
    if (!inst.ok()) return inst.error();
    std::int64_t id = 0;
    Status s = query(
        tx.conn(),
        "INSERT INTO users(username, display_name, institution_id, roles, password_hash, "
        "created_at, password_changed_at, must_change_password) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) RETURNING id",
        [&](sql::Stmt& st) {
          st.bind(1, u.username);
          st.bind(2, u.display_name);
          st.bind(3, *inst);
          st.bind(4, roles_to_string(u.roles));
          st.bind(5, u.password_hash);
          st.bind(6, now);
          st.bind(7, std::int64_t{u.must_change_password ? 1 : 0});
        },
        [&](sql::Stmt& st) { id = st.int64(0); });
    if (!s) {
      if (is_constraint(s.error())) {
        return make_error(Errc::conflict, "user " + u.username + " already exists");
      }
      return s.error();
    }
    if (Status e = add_credentials(tx.conn(), id, *inst, u.credential_codes); !e) return e.error();
    if (Status e = tx.commit(); !e) return e.error();
  }
  auto made = find_user(u.username);
  if (!made.ok()) return made.error();
  if (!made->has_value()) return make_error(Errc::internal, "user vanished after insert");
  return std::move(**made);
}

Result<std::vector<UserInfo>> Accounts::select_users(std::string_view username) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<UserInfo> out;
  Status s = query(
      rd->conn(),
      "SELECT u.id, u.username, u.display_name, u.institution_id, i.code, u.roles, u.disabled, "
      "u.created_at, coalesce((SELECT group_concat(code, ',') FROM (SELECT ci.code FROM "
      "user_credentials c JOIN institutions ci ON ci.id = c.institution_id WHERE c.user_id = "
      "u.id ORDER BY ci.code) AS cc), ''), u.must_change_password, "
      "coalesce(u.password_changed_at, '') "
      "FROM users u JOIN institutions i ON i.id = u.institution_id "
      "WHERE ?1 = '' OR u.username = ?1 ORDER BY u.username",
      [&](sql::Stmt& st) { st.bind(1, username); },
      [&](sql::Stmt& st) {
        UserInfo u;
        u.id = st.int64(0);
        u.username = st.text(1);
        u.display_name = st.text(2);
        u.institution_id = st.int64(3);
        u.institution_code = st.text(4);
        u.roles = roles_from_string(st.text(5)).value_or(0);
        u.disabled = st.int64(6) != 0;
        u.created_at = st.text(7);
        u.credentialed_codes = split_list(st.text(8));
        u.must_change_password = st.int64(9) != 0;
        u.password_changed_at = st.text(10);
        out.push_back(std::move(u));
      });
  if (!s) return s.error();
  return out;
}

Result<std::vector<UserInfo>> Accounts::users() { return select_users(""); }

Result<std::optional<UserInfo>> Accounts::find_user(std::string_view username) {
  if (username.empty()) return std::optional<UserInfo>{};
  auto found = select_users(username);
  if (!found.ok()) return found.error();
  if (found->empty()) return std::optional<UserInfo>{};
  return std::optional<UserInfo>(std::move(found->front()));
}

Result<std::optional<LoginRecord>> Accounts::login_record(std::string_view username) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::optional<LoginRecord> out;
  if (Status s = query(
          rd->conn(), "SELECT id, password_hash, disabled FROM users WHERE username = ?1",
          [&](sql::Stmt& st) { st.bind(1, username); },
          [&](sql::Stmt& st) {
            out = LoginRecord{st.int64(0), st.text(1), st.int64(2) != 0};
          });
      !s)
    return s.error();
  return out;
}

Status Accounts::set_password(std::string_view username, std::string_view password_hash,
                              std::string_view now, bool must_change) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  bool found = false;
  if (Status s = query(
          tx.conn(),
          "UPDATE users SET password_hash = ?2, password_changed_at = ?3, "
          "must_change_password = ?4 WHERE username = ?1 RETURNING id",
          [&](sql::Stmt& st) {
            st.bind(1, username);
            st.bind(2, password_hash);
            st.bind(3, now);
            st.bind(4, std::int64_t{must_change ? 1 : 0});
          },
          [&](sql::Stmt&) { found = true; });
      !s)
    return s;
  if (!found) return make_error(Errc::not_found, "no user " + std::string(username));
  if (Status s = exec_bound(tx.conn(),
                            "UPDATE sessions SET revoked_at = ?2 WHERE revoked_at IS NULL AND "
                            "user_id = (SELECT id FROM users WHERE username = ?1)",
                            [&](sql::Stmt& st) {
                              st.bind(1, username);
                              st.bind(2, now);
                            });
      !s)
    return s;
  return tx.commit();
}

Status Accounts::set_disabled(std::string_view username, bool disabled, std::string_view now) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  bool found = false;
  if (Status s = query(
          tx.conn(), "UPDATE users SET disabled = ?2 WHERE username = ?1 RETURNING id",
          [&](sql::Stmt& st) {
            st.bind(1, username);
            st.bind(2, std::int64_t{disabled ? 1 : 0});
          },
          [&](sql::Stmt&) { found = true; });
      !s)
    return s;
  if (!found) return make_error(Errc::not_found, "no user " + std::string(username));
  if (disabled) {
    if (Status s = exec_bound(tx.conn(),
                              "UPDATE sessions SET revoked_at = ?2 WHERE revoked_at IS NULL AND "
                              "user_id = (SELECT id FROM users WHERE username = ?1)",
                              [&](sql::Stmt& st) {
                                st.bind(1, username);
                                st.bind(2, now);
                              });
        !s)
      return s;
  }
  return tx.commit();
}

Result<int> Accounts::login_failures(std::string_view username, std::string_view window_after) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  int count = 0;
  Status s = sql::query(
      rd->conn(), "SELECT failures FROM login_failures WHERE username = ?1 AND window_start >= ?2",
      [&](sql::Stmt& st) {
        st.bind(1, username);
        st.bind(2, window_after);
      },
      [&](sql::Stmt& st) { count = static_cast<int>(st.int64(0)); });
  if (!s) return s.error();
  return count;
}

Status Accounts::note_login_failure(std::string_view username, std::string_view now,
                                    std::string_view window_after) {
  return write(db_, [&](sql::Db& db) -> Status {
    if (Status s = exec_bound(db, "DELETE FROM login_failures WHERE window_start < ?1",
                              [&](sql::Stmt& st) { st.bind(1, window_after); });
        !s)
      return s;
    return exec_bound(db,
                      "INSERT INTO login_failures(username, failures, window_start) "
                      "VALUES(?1, 1, ?2) ON CONFLICT(username) DO UPDATE SET "
                      "failures = login_failures.failures + 1",
                      [&](sql::Stmt& st) {
                        st.bind(1, username);
                        st.bind(2, now);
                      });
  });
}

Status Accounts::clear_login_failures(std::string_view username) {
  return write(db_, [&](sql::Db& db) -> Status {
    return exec_bound(db, "DELETE FROM login_failures WHERE username = ?1",
                      [&](sql::Stmt& st) { st.bind(1, username); });
  });
}

Status Accounts::create_session(std::string_view token_hash, std::int64_t user_id,
                                std::string_view now, std::string_view expires_at,
                                std::string_view address, SessionKind kind,
                                std::string_view parent_hash) {
  return write(db_, [&](sql::Db& db) -> Status {
    return exec_bound(db,
                      "INSERT INTO sessions(token_hash, user_id, created_at, expires_at, address, "
                      "kind, parent_hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                      [&](sql::Stmt& st) {
                        st.bind(1, token_hash);
                        st.bind(2, user_id);
                        st.bind(3, now);
                        st.bind(4, expires_at);
                        st.bind(5, address);
                        st.bind(6, session_kind_name(kind));
                        if (parent_hash.empty()) {
                          st.bind_null(7);
                        } else {
                          st.bind(7, parent_hash);
                        }
                      });
  });
}

Result<Principal> Accounts::principal(std::int64_t user_id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  return load_principal(rd->conn(), user_id);
}

Result<Principal> Accounts::load_principal(sql::Db& db, std::int64_t user_id) {
  Principal p;
  bool found = false;
  Status s = query(
      db,
      "SELECT u.id, u.username, u.institution_id, i.code, u.roles, u.must_change_password "
      "FROM users u JOIN institutions i ON i.id = u.institution_id WHERE u.id = ?1",
      [&](sql::Stmt& st) { st.bind(1, user_id); },
      [&](sql::Stmt& st) {
        found = true;
        p.user_id = st.int64(0);
        p.username = st.text(1);
        p.institution_id = st.int64(2);
        p.institution_code = st.text(3);
        p.roles = roles_from_string(st.text(4)).value_or(0);
        p.must_change_password = st.int64(5) != 0;
      });
  if (!s) return s.error();
  if (!found) return make_error(Errc::not_found, "no such user");
  s = query(
      db, "SELECT institution_id FROM user_credentials WHERE user_id = ?1 ORDER BY 1",
      [&](sql::Stmt& st) { st.bind(1, user_id); },
      [&](sql::Stmt& st) { p.credentialed.push_back(st.int64(0)); });
  if (!s) return s.error();
  if (Status r = load_reading_clients(db, p); !r) return r.error();
  s = query(
      db, "SELECT service FROM user_services WHERE user_id = ?1 ORDER BY service",
      [&](sql::Stmt& st) { st.bind(1, user_id); },
      [&](sql::Stmt& st) { p.services.push_back(st.text(0)); });
  if (!s) return s.error();
  return p;
}

Status Accounts::load_reading_clients(sql::Db& db, Principal& p) {
  // Reading services provided by any institution the principal works at.
  return query(
      db,
      "SELECT DISTINCT client_id, service FROM reading_services WHERE provider_id = ?1 OR "
      "provider_id IN (SELECT institution_id FROM user_credentials WHERE user_id = ?2) "
      "ORDER BY 1",
      [&](sql::Stmt& st) {
        st.bind(1, p.institution_id);
        st.bind(2, p.user_id);
      },
      [&](sql::Stmt& st) {
        (st.text(1) == "ecg" ? p.ecg_clients : p.imaging_clients).push_back(st.int64(0));
      });
}

Result<Principal> Accounts::station_principal(std::int64_t institution_id, std::uint32_t roles) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  Principal p;
  p.institution_id = institution_id;
  p.roles = roles;
  bool found = false;
  Status s = query(
      rd->conn(), "SELECT code FROM institutions WHERE id = ?1",
      [&](sql::Stmt& st) { st.bind(1, institution_id); },
      [&](sql::Stmt& st) {
        found = true;
        p.institution_code = st.text(0);
      });
  if (!s) return s.error();
  if (!found) return make_error(Errc::not_found, "no such institution");
  if (Status r = load_reading_clients(rd->conn(), p); !r) return r.error();
  return p;
}

Result<std::optional<Principal>> Accounts::session_principal(std::string_view token_hash,
                                                             std::string_view now,
                                                             SessionKind kind) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::optional<std::int64_t> user;
  if (Status s = query(
          rd->conn(),
          "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id "
          "WHERE s.token_hash = ?1 AND s.kind = ?3 AND s.revoked_at IS NULL "
          "AND s.expires_at > ?2 AND u.disabled = 0 AND (s.parent_hash IS NULL OR EXISTS("
          "SELECT 1 FROM sessions p WHERE p.token_hash = s.parent_hash AND "
          "p.revoked_at IS NULL AND p.expires_at > ?2))",
          [&](sql::Stmt& st) {
            st.bind(1, token_hash);
            st.bind(2, now);
            st.bind(3, session_kind_name(kind));
          },
          [&](sql::Stmt& st) { user = st.int64(0); });
      !s)
    return s.error();
  if (!user) return std::optional<Principal>{};
  auto p = load_principal(rd->conn(), *user);
  if (!p.ok()) return p.error();
  return std::optional<Principal>(std::move(*p));
}

Result<std::vector<SessionInfo>> Accounts::live_sessions(std::string_view now) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<SessionInfo> out;
  if (Status s = query(
          rd->conn(),
          "SELECT u.username, s.created_at, s.expires_at, coalesce(s.address, '') FROM sessions s "
          "JOIN users u ON u.id = s.user_id WHERE s.kind = 'bearer' AND s.revoked_at IS NULL "
          "AND s.expires_at > ?1 AND u.disabled = 0 ORDER BY s.created_at DESC LIMIT 1000",
          [&](sql::Stmt& st) { st.bind(1, now); },
          [&](sql::Stmt& st) {
            out.push_back(SessionInfo{st.text(0), st.text(1), st.text(2), st.text(3)});
          });
      !s)
    return s.error();
  return out;
}

Status Accounts::anchor_audit(const AuditAnchor& anchor) {
  return write(db_, [&](sql::Db& db) -> Status {
    return exec_bound(db,
                      "INSERT INTO audit_anchor(id, seq, hash, anchored_at) VALUES(1, ?1, ?2, ?3) "
                      "ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                      "anchored_at = excluded.anchored_at WHERE excluded.seq > audit_anchor.seq",
                      [&](sql::Stmt& st) {
                        st.bind(1, anchor.seq);
                        st.bind(2, anchor.hash);
                        st.bind(3, anchor.anchored_at);
                      });
  });
}

Result<std::optional<AuditAnchor>> Accounts::audit_anchor() {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::optional<AuditAnchor> out;
  Status s = query(
      rd->conn(), "SELECT seq, hash, anchored_at FROM audit_anchor WHERE id = 1", [](sql::Stmt&) {},
      [&](sql::Stmt& st) {
        out = AuditAnchor{st.int64(0), st.text(1), st.text(2)};
      });
  if (!s) return s.error();
  return out;
}

Result<bool> Accounts::revoke_session(std::string_view token_hash, std::string_view now) {
  return write(db_, [&](sql::Db& db) -> Result<bool> {
    bool revoked = false;
    if (Status s = query(
            db,
            "UPDATE sessions SET revoked_at = ?2 WHERE (token_hash = ?1 OR parent_hash = ?1) "
            "AND revoked_at IS NULL RETURNING 1",
            [&](sql::Stmt& st) {
              st.bind(1, token_hash);
              st.bind(2, now);
            },
            [&](sql::Stmt&) { revoked = true; });
        !s)
      return s.error();
    return revoked;
  });
}

Status Accounts::add_reading_service(const ReadingService& rs) {
  if (rs.service != "imaging" && rs.service != "ecg") {
    return make_error(Errc::invalid_argument, "service must be imaging or ecg");
  }
  return write(db_, [&](sql::Db& db) -> Status {
    auto provider = institution_id(db, rs.provider_code);
    if (!provider.ok()) return provider.error();
    auto client = institution_id(db, rs.client_code);
    if (!client.ok()) return client.error();
    return exec_bound(db,
                      "INSERT OR IGNORE INTO reading_services(provider_id, client_id, service) "
                      "VALUES(?1, ?2, ?3)",
                      [&](sql::Stmt& st) {
                        st.bind(1, *provider);
                        st.bind(2, *client);
                        st.bind(3, rs.service);
                      });
  });
}

Result<bool> Accounts::remove_reading_service(const ReadingService& rs) {
  int changed = 0;
  Status s = write(db_, [&](sql::Db& db) -> Status {
    return sql::run(
        db,
        "DELETE FROM reading_services WHERE service = ?3 AND provider_id = (SELECT id FROM "
        "institutions WHERE code = ?1) AND client_id = (SELECT id FROM institutions WHERE code "
        "= ?2)",
        [&](sql::Stmt& st) {
          st.bind(1, rs.provider_code);
          st.bind(2, rs.client_code);
          st.bind(3, rs.service);
        },
        &changed);
  });
  if (!s) return s.error();
  return changed > 0;
}

Result<std::vector<ReadingService>> Accounts::reading_services() {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<ReadingService> out;
  if (Status s = query(
          rd->conn(),
          "SELECT p.code, c.code, r.service FROM reading_services r JOIN institutions p ON "
          "p.id = r.provider_id JOIN institutions c ON c.id = r.client_id ORDER BY 1, 2, 3",
          [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            out.push_back({st.text(0), st.text(1), st.text(2)});
          });
      !s)
    return s.error();
  return out;
}

Status Accounts::add_share(const StudyShare& share) {
  if (share.reason != "consult" && share.reason != "referral") {
    return make_error(Errc::invalid_argument, "reason must be consult or referral");
  }
  if (share.institution_code.empty() == share.username.empty()) {
    return make_error(Errc::invalid_argument, "share with exactly one institution or one user");
  }
  return write(db_, [&](sql::Db& db) -> Status {
    std::optional<std::int64_t> study, inst, user;
    if (Status s = query(
            db, "SELECT id FROM studies WHERE study_uid = ?1",
            [&](sql::Stmt& st) { st.bind(1, share.study_instance_uid); },
            [&](sql::Stmt& st) { study = st.int64(0); });
        !s)
      return s;
    if (!study) return make_error(Errc::not_found, "no such study");
    if (!share.institution_code.empty()) {
      auto i = institution_id(db, share.institution_code);
      if (!i.ok()) return i.error();
      inst = *i;
    } else {
      if (Status s = query(
              db, "SELECT id FROM users WHERE username = ?1",
              [&](sql::Stmt& st) { st.bind(1, share.username); },
              [&](sql::Stmt& st) { user = st.int64(0); });
          !s)
        return s;
      if (!user) return make_error(Errc::not_found, "no user " + share.username);
    }
    return exec_bound(db,
                      "INSERT INTO study_shares(study_pk, institution_id, user_id, reason, "
                      "reference, granted_by, granted_at, expires_at) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                      [&](sql::Stmt& st) {
                        st.bind(1, *study);
                        st.bind(2, inst);
                        st.bind(3, user);
                        st.bind(4, share.reason);
                        st.bind(5, share.reference);
                        st.bind(6, share.granted_by ? std::optional<std::int64_t>(share.granted_by)
                                                    : std::nullopt);
                        st.bind(7, share.granted_at);
                        if (share.expires_at.empty()) {
                          st.bind_null(8);
                        } else {
                          st.bind(8, share.expires_at);
                        }
                      });
  });
}

Result<UserInfo> Accounts::update_user(const NewUser& u, std::string_view now) {
  if (u.roles == 0) return make_error(Errc::invalid_argument, "a user needs at least one role");
  auto before = find_user(u.username);
  if (!before.ok()) return before.error();
  if (!before->has_value()) return make_error(Errc::not_found, "no user " + u.username);
  {
    Database::Write tx(db_);
    if (Status s = tx.begin(); !s) return s.error();
    auto inst = institution_id(tx.conn(), u.institution_code);
    if (!inst.ok()) return inst.error();
    const std::int64_t id = (*before)->id;
    if (Status s = exec_bound(tx.conn(),
                              "UPDATE users SET display_name = ?2, institution_id = ?3, roles = ?4 "
                              "WHERE id = ?1",
                              [&](sql::Stmt& st) {
                                st.bind(1, id);
                                st.bind(2, u.display_name);
                                st.bind(3, *inst);
                                st.bind(4, roles_to_string(u.roles));
                              });
        !s)
      return s.error();
    if (Status s = exec_bound(tx.conn(), "DELETE FROM user_credentials WHERE user_id = ?1",
                              [&](sql::Stmt& st) { st.bind(1, id); });
        !s)
      return s.error();
    if (Status e = add_credentials(tx.conn(), id, *inst, u.credential_codes); !e) return e.error();
    std::vector<std::string> creds;
    for (const std::string& code : u.credential_codes) {
      if (code != u.institution_code) creds.push_back(code);
    }
    std::sort(creds.begin(), creds.end());
    creds.erase(std::unique(creds.begin(), creds.end()), creds.end());
    const UserInfo& old = **before;
    if (old.roles != u.roles || old.institution_code != u.institution_code ||
        old.credentialed_codes != creds) {
      if (Status s = exec_bound(
              tx.conn(),
              "UPDATE sessions SET revoked_at = ?2 WHERE revoked_at IS NULL AND user_id = ?1",
              [&](sql::Stmt& st) {
                st.bind(1, id);
                st.bind(2, now);
              });
          !s)
        return s.error();
    }
    if (Status e = tx.commit(); !e) return e.error();
  }
  auto made = find_user(u.username);
  if (!made.ok()) return made.error();
  if (!made->has_value()) return make_error(Errc::internal, "user vanished after update");
  return std::move(**made);
}

Status Accounts::set_user_services(std::string_view username,
                                   const std::vector<std::string>& services) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s;
  std::optional<std::int64_t> user;
  if (Status s = query(
          tx.conn(), "SELECT id FROM users WHERE username = ?1",
          [&](sql::Stmt& st) { st.bind(1, username); }, [&](sql::Stmt& st) { user = st.int64(0); });
      !s)
    return s;
  if (!user) return make_error(Errc::not_found, "no user " + std::string(username));
  if (Status s = exec_bound(tx.conn(), "DELETE FROM user_services WHERE user_id = ?1",
                            [&](sql::Stmt& st) { st.bind(1, *user); });
      !s)
    return s;
  for (const std::string& service : services) {
    if (service.empty()) return make_error(Errc::invalid_argument, "empty service name");
    if (Status s = exec_bound(
            tx.conn(), "INSERT OR IGNORE INTO user_services(user_id, service) VALUES(?1, ?2)",
            [&](sql::Stmt& st) {
              st.bind(1, *user);
              st.bind(2, service);
            });
        !s)
      return s;
  }
  return tx.commit();
}

Result<std::vector<std::string>> Accounts::user_services(std::int64_t user_id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  std::vector<std::string> out;
  if (Status s = query(
          rd->conn(), "SELECT service FROM user_services WHERE user_id = ?1 ORDER BY service",
          [&](sql::Stmt& st) { st.bind(1, user_id); },
          [&](sql::Stmt& st) { out.push_back(st.text(0)); });
      !s)
    return s.error();
  return out;
}

}  // namespace yilian::identity
