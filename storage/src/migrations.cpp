#include "migrations.h"

#include <array>
#include <string>

namespace yilian::storage {
namespace {

constexpr const char* kV1 = R"sql(
CREATE TABLE institutions(
  id          INTEGER PRIMARY KEY,
  code        TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE patients(
  id              INTEGER PRIMARY KEY,
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  patient_id      TEXT NOT NULL,
  issuer          TEXT NOT NULL DEFAULT '',
  name            TEXT NOT NULL DEFAULT '',
  birth_date      TEXT NOT NULL DEFAULT '',
  sex             TEXT NOT NULL DEFAULT '',
  UNIQUE(institution_id, patient_id, issuer)
);
CREATE TABLE studies(
  id                  INTEGER PRIMARY KEY,
  study_uid           TEXT NOT NULL UNIQUE,
  patient_pk          INTEGER NOT NULL REFERENCES patients(id),
  institution_id      INTEGER NOT NULL REFERENCES institutions(id),
  study_date          TEXT NOT NULL DEFAULT '',
  study_time          TEXT NOT NULL DEFAULT '',
  accession_number    TEXT NOT NULL DEFAULT '',
  study_id            TEXT NOT NULL DEFAULT '',
  description         TEXT NOT NULL DEFAULT '',
  referring_physician TEXT NOT NULL DEFAULT '',
  institution_name    TEXT NOT NULL DEFAULT '',
  modalities          TEXT NOT NULL DEFAULT '',
  num_series          INTEGER NOT NULL DEFAULT 0,
  num_instances       INTEGER NOT NULL DEFAULT 0,
  size_bytes          INTEGER NOT NULL DEFAULT 0,
  first_received_at   TEXT NOT NULL,
  last_received_at    TEXT NOT NULL
);
CREATE INDEX studies_patient ON studies(patient_pk);
CREATE INDEX studies_accession ON studies(accession_number);
CREATE INDEX studies_date ON studies(study_date);
CREATE TABLE series(
  id                INTEGER PRIMARY KEY,
  series_uid        TEXT NOT NULL UNIQUE,
  study_pk          INTEGER NOT NULL REFERENCES studies(id),
  modality          TEXT NOT NULL DEFAULT '',
  series_number     INTEGER,
  description       TEXT NOT NULL DEFAULT '',
  body_part         TEXT NOT NULL DEFAULT '',
  num_instances     INTEGER NOT NULL DEFAULT 0,
  size_bytes        INTEGER NOT NULL DEFAULT 0,
  first_received_at TEXT NOT NULL,
  last_received_at  TEXT NOT NULL
);
CREATE INDEX series_study ON series(study_pk);
CREATE TABLE instances(
  id               INTEGER PRIMARY KEY,
  sop_uid          TEXT NOT NULL UNIQUE,
  series_pk        INTEGER NOT NULL REFERENCES series(id),
  sop_class_uid    TEXT NOT NULL,
  instance_number  INTEGER,
  number_of_frames INTEGER NOT NULL DEFAULT 1,
  transfer_syntax  TEXT NOT NULL,
  blob_key         TEXT NOT NULL UNIQUE,
  size_bytes       INTEGER NOT NULL,
  dataset_offset   INTEGER NOT NULL,
  calling_ae       TEXT NOT NULL DEFAULT '',
  received_at      TEXT NOT NULL
);
CREATE INDEX instances_series ON instances(series_pk);
)sql";

// v2: keep every different object that arrives under an already stored SOP Instance UID,
// and make the newest-first study list an index scan.
constexpr const char* kV2 = R"sql(
CREATE TABLE instance_conflicts(
  id                   INTEGER PRIMARY KEY,
  sop_uid              TEXT NOT NULL,
  existing_instance_pk INTEGER NOT NULL REFERENCES instances(id),
  blob_key             TEXT NOT NULL UNIQUE,
  size_bytes           INTEGER NOT NULL,
  calling_ae           TEXT NOT NULL DEFAULT '',
  institution_id       INTEGER NOT NULL REFERENCES institutions(id),
  received_at          TEXT NOT NULL
);
CREATE INDEX instance_conflicts_sop ON instance_conflicts(sop_uid);
CREATE INDEX studies_last_received ON studies(last_received_at DESC, id DESC);
)sql";

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

// v4: the remote-reading queue. Studies keep the order that came with them; a reading task
// per study and reading service; report versions (append-only); critical results; QC
// second reads; and every state change as an event.
constexpr const char* kV4 = R"sql(
ALTER TABLE studies ADD COLUMN requested_priority TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN indication TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN procedure TEXT NOT NULL DEFAULT '';
CREATE TABLE reading_tasks(
  id               INTEGER PRIMARY KEY,
  study_pk         INTEGER NOT NULL REFERENCES studies(id),
  service          TEXT NOT NULL,
  institution_id   INTEGER NOT NULL REFERENCES institutions(id),
  is_ecg           INTEGER NOT NULL DEFAULT 0,
  modality         TEXT NOT NULL DEFAULT '',
  priority         INTEGER NOT NULL,
  priority_reason  TEXT NOT NULL DEFAULT '',
  status           TEXT NOT NULL CHECK(status IN ('queued','claimed','preliminary','final')),
  received_at      TEXT NOT NULL,
  routed_at        TEXT NOT NULL,
  due_at           TEXT NOT NULL,
  claimed_by       INTEGER REFERENCES users(id),
  lease_expires_at TEXT,
  reported_by      INTEGER REFERENCES users(id),
  final_at         TEXT,
  escalated_at     TEXT,
  UNIQUE(study_pk, service)
);
CREATE INDEX reading_tasks_queue ON reading_tasks(status, priority, due_at, id);
CREATE INDEX reading_tasks_lease ON reading_tasks(status, lease_expires_at);
CREATE INDEX reading_tasks_due ON reading_tasks(escalated_at, due_at);
CREATE TABLE reports(
  id          INTEGER PRIMARY KEY,
  task_id     INTEGER NOT NULL REFERENCES reading_tasks(id),
  version     INTEGER NOT NULL,
  kind        TEXT NOT NULL CHECK(kind IN ('draft','preliminary','final','addendum')),
  findings    TEXT NOT NULL DEFAULT '',
  impression  TEXT NOT NULL DEFAULT '',
  critical    INTEGER NOT NULL DEFAULT 0,
  author_id   INTEGER NOT NULL REFERENCES users(id),
  created_at  TEXT NOT NULL,
  UNIQUE(task_id, version)
);
CREATE TRIGGER reports_no_update BEFORE UPDATE ON reports
  BEGIN SELECT RAISE(ABORT, 'report versions are immutable'); END;
CREATE TRIGGER reports_no_delete BEFORE DELETE ON reports
  BEGIN SELECT RAISE(ABORT, 'report versions are immutable'); END;
CREATE TABLE critical_results(
  id               INTEGER PRIMARY KEY,
  task_id          INTEGER NOT NULL REFERENCES reading_tasks(id),
  report_id        INTEGER NOT NULL REFERENCES reports(id),
  institution_id   INTEGER NOT NULL REFERENCES institutions(id),
  created_at       TEXT NOT NULL,
  acknowledged_by  INTEGER REFERENCES users(id),
  acknowledged_at  TEXT,
  escalated_at     TEXT
);
CREATE INDEX critical_results_open ON critical_results(acknowledged_at, created_at);
CREATE TABLE qc_reviews(
  id           INTEGER PRIMARY KEY,
  task_id      INTEGER NOT NULL UNIQUE REFERENCES reading_tasks(id),
  sampled_at   TEXT NOT NULL,
  reviewer_id  INTEGER REFERENCES users(id),
  agreement    TEXT CHECK(agreement IN ('agree','minor','major')),
  comment      TEXT NOT NULL DEFAULT '',
  reviewed_at  TEXT
);
CREATE TABLE task_events(
  id       INTEGER PRIMARY KEY,
  task_id  INTEGER NOT NULL REFERENCES reading_tasks(id),
  at       TEXT NOT NULL,
  type     TEXT NOT NULL,
  actor    TEXT NOT NULL DEFAULT '',
  detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX task_events_task ON task_events(task_id, id);
CREATE TABLE user_services(
  user_id  INTEGER NOT NULL REFERENCES users(id),
  service  TEXT NOT NULL,
  PRIMARY KEY(user_id, service)
);
)sql";

// v5: study searches (QIDO-RS, C-FIND) start from the patient when they name one.
constexpr const char* kV5 = R"sql(
CREATE INDEX patients_patient_id ON patients(patient_id);
CREATE INDEX patients_name ON patients(name COLLATE NOCASE);
)sql";

// v6: teleconsultation. A consult with its attachments and participants; its chat as an
// append-only log numbered per consult (seq), de-duplicated by the sender's message id; the
// shared view's latest state; saved annotations; lifecycle events. A concluded consult's
// opinion can no longer change.
constexpr const char* kV6 = R"sql(
CREATE TABLE consults(
  id              INTEGER PRIMARY KEY,
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  requester_id    INTEGER NOT NULL REFERENCES users(id),
  patient_id      TEXT NOT NULL,
  patient_name    TEXT NOT NULL DEFAULT '',
  question        TEXT NOT NULL,
  urgency         TEXT NOT NULL CHECK(urgency IN ('routine','urgent','emergency')),
  specialty       TEXT NOT NULL,
  status          TEXT NOT NULL CHECK(status IN
                    ('requested','accepted','in_progress','concluded','declined','cancelled')),
  assignee_id     INTEGER REFERENCES users(id),
  reason          TEXT NOT NULL DEFAULT '',
  opinion         TEXT,
  opinion_sha256  TEXT,
  concluded_at    TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  last_seq        INTEGER NOT NULL DEFAULT 0,
  view_version    INTEGER NOT NULL DEFAULT 0,
  view_driver     INTEGER REFERENCES users(id),
  view_state      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX consults_open ON consults(status, specialty, created_at);
CREATE INDEX consults_institution ON consults(institution_id, created_at);
CREATE TRIGGER consults_concluded_immutable
  BEFORE UPDATE OF status, opinion, opinion_sha256, concluded_at, assignee_id ON consults
  WHEN OLD.status = 'concluded'
  BEGIN SELECT RAISE(ABORT, 'a concluded consult is immutable'); END;
CREATE TABLE consult_attachments(
  consult_id  INTEGER NOT NULL REFERENCES consults(id),
  kind        TEXT NOT NULL CHECK(kind IN ('study','ecg','report')),
  ref         TEXT NOT NULL,
  study_uid   TEXT NOT NULL,
  PRIMARY KEY(consult_id, kind, ref)
) WITHOUT ROWID;
CREATE TABLE consult_participants(
  consult_id     INTEGER NOT NULL REFERENCES consults(id),
  user_id        INTEGER NOT NULL REFERENCES users(id),
  role           TEXT NOT NULL CHECK(role IN ('requester','specialist')),
  delivered_seq  INTEGER NOT NULL DEFAULT 0,
  read_seq       INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(consult_id, user_id)
) WITHOUT ROWID;
CREATE INDEX consult_participants_user ON consult_participants(user_id);
CREATE TABLE consult_messages(
  consult_id   INTEGER NOT NULL REFERENCES consults(id),
  seq          INTEGER NOT NULL,
  author_id    INTEGER NOT NULL REFERENCES users(id),
  client_id    TEXT,
  at           TEXT NOT NULL,
  text         TEXT NOT NULL,
  attachments  TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY(consult_id, seq),
  UNIQUE(consult_id, author_id, client_id)
) WITHOUT ROWID;
CREATE TRIGGER consult_messages_no_update BEFORE UPDATE ON consult_messages
  BEGIN SELECT RAISE(ABORT, 'chat messages are immutable'); END;
CREATE TRIGGER consult_messages_no_delete BEFORE DELETE ON consult_messages
  BEGIN SELECT RAISE(ABORT, 'chat messages are immutable'); END;
CREATE TABLE consult_annotations(
  id          INTEGER PRIMARY KEY,
  consult_id  INTEGER NOT NULL REFERENCES consults(id),
  author_id   INTEGER NOT NULL REFERENCES users(id),
  at          TEXT NOT NULL,
  body        TEXT NOT NULL
);
CREATE INDEX consult_annotations_consult ON consult_annotations(consult_id, id);
CREATE TABLE consult_events(
  id          INTEGER PRIMARY KEY,
  consult_id  INTEGER NOT NULL REFERENCES consults(id),
  at          TEXT NOT NULL,
  type        TEXT NOT NULL,
  actor       TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX consult_events_consult ON consult_events(consult_id, id);
CREATE TABLE emergency_cases(
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL CHECK(kind IN ('chest_pain','stroke')),
  status          TEXT NOT NULL CHECK(status IN ('open','closed')),
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  patient_id      TEXT NOT NULL,
  patient_name    TEXT NOT NULL DEFAULT '',
  study_uid       TEXT NOT NULL DEFAULT '',
  consult_id      INTEGER REFERENCES consults(id),
  source          TEXT NOT NULL,
  reason          TEXT NOT NULL DEFAULT '',
  opened_by       TEXT NOT NULL,
  opened_at       TEXT NOT NULL,
  closed_at       TEXT
);
CREATE INDEX emergency_cases_open ON emergency_cases(status, institution_id);
CREATE UNIQUE INDEX emergency_cases_study ON emergency_cases(study_uid, kind) WHERE study_uid != '';
CREATE TABLE emergency_time_points(
  id           INTEGER PRIMARY KEY,
  case_id      INTEGER NOT NULL REFERENCES emergency_cases(id),
  point        TEXT NOT NULL,
  at           TEXT NOT NULL,
  recorded_by  TEXT NOT NULL,
  recorded_at  TEXT NOT NULL,
  note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX emergency_time_points_case ON emergency_time_points(case_id, id);
CREATE TRIGGER emergency_time_points_append_only BEFORE UPDATE ON emergency_time_points
  BEGIN SELECT RAISE(ABORT, 'time points are corrected by a new record'); END;
CREATE TABLE notifications(
  id          INTEGER PRIMARY KEY,
  user_id     INTEGER NOT NULL REFERENCES users(id),
  kind        TEXT NOT NULL,
  payload     TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  acked_at    TEXT
);
CREATE INDEX notifications_pending ON notifications(user_id, acked_at, id);
CREATE TABLE referrals(
  id                 INTEGER PRIMARY KEY,
  direction          TEXT NOT NULL CHECK(direction IN ('up','down')),
  urgency            TEXT NOT NULL CHECK(urgency IN ('routine','urgent')),
  patient_id         TEXT NOT NULL,
  patient_name       TEXT NOT NULL DEFAULT '',
  from_institution   INTEGER NOT NULL REFERENCES institutions(id),
  to_institution     INTEGER NOT NULL REFERENCES institutions(id),
  requested_by       TEXT NOT NULL,
  reason             TEXT NOT NULL,
  status             TEXT NOT NULL CHECK(status IN
                       ('requested','accepted','rejected','scheduled','arrived','completed','cancelled')),
  answer             TEXT NOT NULL DEFAULT '',
  slot_date          TEXT NOT NULL DEFAULT '',
  discharge_summary  TEXT NOT NULL DEFAULT '',
  follow_up_plan     TEXT NOT NULL DEFAULT '',
  studies            TEXT NOT NULL DEFAULT '[]',
  created_at         TEXT NOT NULL,
  updated_at         TEXT NOT NULL,
  answer_due_at      TEXT NOT NULL,
  escalated_at       TEXT
);
CREATE INDEX referrals_to ON referrals(to_institution, status);
CREATE INDEX referrals_from ON referrals(from_institution, status);
CREATE INDEX referrals_slots ON referrals(to_institution, slot_date);
CREATE TABLE referral_events(
  id           INTEGER PRIMARY KEY,
  referral_id  INTEGER NOT NULL REFERENCES referrals(id),
  at           TEXT NOT NULL,
  type         TEXT NOT NULL,
  actor        TEXT NOT NULL,
  detail       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX referral_events_referral ON referral_events(referral_id, id);
CREATE TABLE referral_quotas(
  institution_id  INTEGER PRIMARY KEY REFERENCES institutions(id),
  daily           INTEGER NOT NULL CHECK(daily >= 0)
);
)sql";

// The requesting clinician's question, given when a study is sent for reading (REST); kept
// apart from the DICOM indication, which later instances may update.
constexpr const char* kV7 = R"sql(
ALTER TABLE studies ADD COLUMN clinical_question TEXT NOT NULL DEFAULT '';
)sql";

constexpr std::array<Migration, 7> kMigrations{{
    {1, "institutions, patients, studies, series, instances", kV1},
    {2, "instance conflicts; newest-first study index", kV2},
    {3, "institutions' levels and AE titles, users, sessions, reading services, shares", kV3},
    {4, "reading queue: tasks, reports, critical results, QC, events", kV4},
    {5, "patient ID and name indexes for searches", kV5},
    {6,
     "teleconsultation: consults, chat, view, annotations, emergency cases, notifications, "
     "referrals",
     kV6},
    {7, "the requesting clinician's question on a study", kV7},
}};

Result<int> user_version(sql::Db& db) {
  sql::Stmt st;
  if (Status s = st.prepare(db.get(), "PRAGMA user_version"); !s) return s.error();
  auto row = st.step();
  if (!row.ok()) return row.error();
  return static_cast<int>(st.int64(0));
}

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

Result<int> migrate_to(sql::Db& db, int target) {
  auto current = user_version(db);
  if (!current.ok()) return current.error();
  int version = *current;
  if (version > static_cast<int>(kMigrations.size())) {
    return make_error(Errc::corrupt, "index schema version " + std::to_string(version) +
                                         " is newer than this build understands (" +
                                         std::to_string(kMigrations.size()) + ")");
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= version || m.version > target) continue;
    sql::Tx tx(db);
    if (Status s = tx.begin(); !s) return s.error();
    if (Status s = db.exec(m.sql); !s) {
      return make_error(s.error().code, "schema migration to v" + std::to_string(m.version) +
                                            " failed: " + s.error().message);
    }
    std::string pragma = "PRAGMA user_version = " + std::to_string(m.version);
    if (Status s = db.exec(pragma.c_str()); !s) return s.error();
    if (Status s = tx.commit(); !s) return s.error();
    version = m.version;
  }
  return version;
}

Result<int> migrate(sql::Db& db) { return migrate_to(db, static_cast<int>(kMigrations.size())); }

}  // namespace yilian::storage
