// The identity module's steps of the index database's schema history (see
// storage/database.h: one numbered history, each step owned by the module whose tables it
// creates or changes). Never edit a released step: append a new one with the next number.
#include "yilian/identity/schema.h"

#include <array>

namespace yilian::identity {
namespace {

// v3: identity and access. Institutions get their level, consortium parent and AE titles;
// users with roles and credentials at other institutions; bearer sessions (token hashes);
// the reading services one institution provides for another; studies shared with an
// institution or a user through a consult or a referral.
constexpr const char* kV3 = R"sql(
ALTER TABLE institutions ADD COLUMN level TEXT NOT NULL DEFAULT 'township';
ALTER TABLE institutions ADD COLUMN parent_id INTEGER REFERENCES institutions(id);
UPDATE institutions SET level = 'external' WHERE code = 'unknown';
CREATE TABLE institution_aes(
  ae_title       TEXT PRIMARY KEY,
  institution_id INTEGER NOT NULL REFERENCES institutions(id)
);
CREATE TABLE users(
  id                  INTEGER PRIMARY KEY,
  username            TEXT NOT NULL UNIQUE,
  display_name        TEXT NOT NULL DEFAULT '',
  institution_id      INTEGER NOT NULL REFERENCES institutions(id),
  roles               TEXT NOT NULL,
  password_hash       TEXT NOT NULL,
  disabled            INTEGER NOT NULL DEFAULT 0,
  created_at          TEXT NOT NULL,
  password_changed_at TEXT NOT NULL
);
CREATE TABLE user_credentials(
  user_id        INTEGER NOT NULL REFERENCES users(id),
  institution_id INTEGER NOT NULL REFERENCES institutions(id),
  PRIMARY KEY(user_id, institution_id)
);
CREATE TABLE sessions(
  token_hash TEXT PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  revoked_at TEXT,
  address    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE reading_services(
  provider_id INTEGER NOT NULL REFERENCES institutions(id),
  client_id   INTEGER NOT NULL REFERENCES institutions(id),
  service     TEXT NOT NULL CHECK(service IN ('imaging', 'ecg')),
  PRIMARY KEY(provider_id, client_id, service)
);
CREATE TABLE study_shares(
  id             INTEGER PRIMARY KEY,
  study_pk       INTEGER NOT NULL REFERENCES studies(id),
  institution_id INTEGER REFERENCES institutions(id),
  user_id        INTEGER REFERENCES users(id),
  reason         TEXT NOT NULL CHECK(reason IN ('consult', 'referral')),
  reference      TEXT NOT NULL DEFAULT '',
  granted_by     INTEGER REFERENCES users(id),
  granted_at     TEXT NOT NULL,
  expires_at     TEXT,
  CHECK((institution_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX study_shares_study ON study_shares(study_pk);
CREATE INDEX study_shares_user ON study_shares(user_id);
CREATE INDEX study_shares_institution ON study_shares(institution_id);
CREATE INDEX studies_institution ON studies(institution_id, last_received_at DESC);
)sql";

// Failed logins per username, shared by every node (the lockout holds whichever node is asked).
constexpr const char* kV9 = R"sql(
CREATE TABLE login_failures (
  username      TEXT PRIMARY KEY,
  failures      INTEGER NOT NULL,
  window_start  TEXT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures(window_start);
)sql";

// v14: viewer sessions. A viewer token stands for the bearer session that opened it (its
// parent) and only reads DICOMweb, by cookie, for the advanced viewer (auth.h).
constexpr const char* kV14 = R"sql(
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'bearer';
ALTER TABLE sessions ADD COLUMN parent_hash TEXT;
CREATE INDEX sessions_parent ON sessions(parent_hash) WHERE parent_hash IS NOT NULL;
)sql";

// v15: the audit chain's head, written down in the index as well (identity/audit.h).
constexpr const char* kV15 = R"sql(
CREATE TABLE audit_anchor(
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  seq         INTEGER NOT NULL,
  hash        TEXT NOT NULL,
  anchored_at TEXT NOT NULL
);
)sql";

// v17: what the administration screens set: the character set an institution's modalities use
// when they declare none, and a password the user must replace at the next sign-in (a
// generated first password, one an administrator set).
constexpr const char* kV17 = R"sql(
ALTER TABLE institutions ADD COLUMN charset TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
)sql";

constexpr std::array<storage::SchemaStep, 5> kSteps{{
    {3, "identity", "institutions' levels and AE titles, users, sessions, reading services, shares",
     kV3},
    {9, "identity", "failed logins per username", kV9},
    {14, "identity", "viewer sessions opened by a bearer session", kV14},
    {15, "identity", "the audit chain's anchor", kV15},
    {17, "identity", "institutions' default character set, passwords to replace", kV17},
}};

}  // namespace

std::span<const storage::SchemaStep> schema_steps() { return kSteps; }

}  // namespace yilian::identity
