// The teleconsult module's steps of the index database's schema history (see
// storage/database.h: one numbered history, each step owned by the module whose tables it
// creates or changes). Never edit a released step: append a new one with the next number.
#include "yilian/teleconsult/schema.h"

#include <array>

namespace yilian::teleconsult {
namespace {

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

// v19: on-call rosters (who answers an emergency alert for a service of an institution, with a
// back-up, by shift) and each emergency case's alert: whom it reached at which stage, who
// acknowledged it and when, when it escalated.
constexpr const char* kV19 = R"sql(
CREATE TABLE oncall_shifts(
  id              INTEGER PRIMARY KEY,
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  service         TEXT NOT NULL CHECK(service IN ('cardiology','ecg','neurology','radiology')),
  role            TEXT NOT NULL CHECK(role IN ('primary','backup')),
  user_id         INTEGER NOT NULL REFERENCES users(id),
  starts_at       TEXT NOT NULL,
  ends_at         TEXT NOT NULL,
  created_by      TEXT NOT NULL,
  created_at      TEXT NOT NULL
);
CREATE INDEX oncall_shifts_now ON oncall_shifts(institution_id, service, ends_at);
CREATE TABLE case_alerts(
  case_id     INTEGER NOT NULL REFERENCES emergency_cases(id),
  user_id     INTEGER NOT NULL REFERENCES users(id),
  stage       TEXT NOT NULL CHECK(stage IN ('on_call','escalation')),
  alerted_at  TEXT NOT NULL,
  PRIMARY KEY(case_id, user_id)
);
ALTER TABLE emergency_cases ADD COLUMN alert_service TEXT NOT NULL DEFAULT '';
ALTER TABLE emergency_cases ADD COLUMN acknowledged_by TEXT NOT NULL DEFAULT '';
ALTER TABLE emergency_cases ADD COLUMN acknowledged_at TEXT NOT NULL DEFAULT '';
ALTER TABLE emergency_cases ADD COLUMN escalated_at TEXT NOT NULL DEFAULT '';
)sql";

// v25: the consortium's other emergency centres (trauma, critical maternal and newborn care):
// their case kinds and on-call services. SQLite changes a CHECK only by building the table
// anew; the time points and alerts that refer to a case are set aside and put back around it.
constexpr const char* kV25 = R"sql(
CREATE TEMP TABLE v25_time_points AS SELECT * FROM emergency_time_points;
CREATE TEMP TABLE v25_alerts AS SELECT * FROM case_alerts;
DROP TABLE emergency_time_points;
DROP TABLE case_alerts;
CREATE TABLE emergency_cases_v25(
  id              INTEGER PRIMARY KEY,
  kind            TEXT NOT NULL CHECK(kind IN
                    ('chest_pain','stroke','trauma','maternal','newborn')),
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
  closed_at       TEXT,
  alert_service   TEXT NOT NULL DEFAULT '',
  acknowledged_by TEXT NOT NULL DEFAULT '',
  acknowledged_at TEXT NOT NULL DEFAULT '',
  escalated_at    TEXT NOT NULL DEFAULT ''
);
INSERT INTO emergency_cases_v25(id, kind, status, institution_id, patient_id, patient_name,
    study_uid, consult_id, source, reason, opened_by, opened_at, closed_at, alert_service,
    acknowledged_by, acknowledged_at, escalated_at)
  SELECT id, kind, status, institution_id, patient_id, patient_name, study_uid, consult_id,
    source, reason, opened_by, opened_at, closed_at, alert_service, acknowledged_by,
    acknowledged_at, escalated_at FROM emergency_cases;
DROP TABLE emergency_cases;
ALTER TABLE emergency_cases_v25 RENAME TO emergency_cases;
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
INSERT INTO emergency_time_points SELECT * FROM temp.v25_time_points;
CREATE INDEX emergency_time_points_case ON emergency_time_points(case_id, id);
CREATE TRIGGER emergency_time_points_append_only BEFORE UPDATE ON emergency_time_points
  BEGIN SELECT RAISE(ABORT, 'time points are corrected by a new record'); END;
CREATE TABLE case_alerts(
  case_id     INTEGER NOT NULL REFERENCES emergency_cases(id),
  user_id     INTEGER NOT NULL REFERENCES users(id),
  stage       TEXT NOT NULL CHECK(stage IN ('on_call','escalation')),
  alerted_at  TEXT NOT NULL,
  PRIMARY KEY(case_id, user_id)
);
INSERT INTO case_alerts SELECT * FROM temp.v25_alerts;
DROP TABLE temp.v25_time_points;
DROP TABLE temp.v25_alerts;
CREATE TABLE oncall_shifts_v25(
  id              INTEGER PRIMARY KEY,
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  service         TEXT NOT NULL CHECK(service IN ('cardiology','ecg','neurology','radiology',
                    'trauma','obstetrics','neonatology')),
  role            TEXT NOT NULL CHECK(role IN ('primary','backup')),
  user_id         INTEGER NOT NULL REFERENCES users(id),
  starts_at       TEXT NOT NULL,
  ends_at         TEXT NOT NULL,
  created_by      TEXT NOT NULL,
  created_at      TEXT NOT NULL
);
INSERT INTO oncall_shifts_v25 SELECT * FROM oncall_shifts;
DROP TABLE oncall_shifts;
ALTER TABLE oncall_shifts_v25 RENAME TO oncall_shifts;
CREATE INDEX oncall_shifts_now ON oncall_shifts(institution_id, service, ends_at);
)sql";

// PostgreSQL names a column's CHECK <table>_<column>_check and changes it in place.
constexpr const char* kV25Postgres = R"sql(
ALTER TABLE emergency_cases DROP CONSTRAINT emergency_cases_kind_check;
ALTER TABLE emergency_cases ADD CONSTRAINT emergency_cases_kind_check
  CHECK(kind IN ('chest_pain','stroke','trauma','maternal','newborn'));
ALTER TABLE oncall_shifts DROP CONSTRAINT oncall_shifts_service_check;
ALTER TABLE oncall_shifts ADD CONSTRAINT oncall_shifts_service_check
  CHECK(service IN ('cardiology','ecg','neurology','radiology','trauma','obstetrics',
                    'neonatology'));
)sql";

// The patient's record reads a patient's consults, referrals and emergency cases by Patient ID.
constexpr const char* kV27 = R"sql(
CREATE INDEX consults_patient ON consults(patient_id, institution_id);
CREATE INDEX referrals_patient ON referrals(patient_id, from_institution);
CREATE INDEX emergency_cases_patient ON emergency_cases(patient_id, institution_id);
)sql";

constexpr std::array<storage::SchemaStep, 4> kSteps{{
    {6, "teleconsult",
     "teleconsultation: consults, chat, view, annotations, emergency cases, notifications, "
     "referrals",
     kV6},
    {19, "teleconsult", "on-call rosters and the acknowledgement of emergency alerts", kV19},
    {25, "teleconsult", "trauma, critical maternal and critical newborn emergency cases", kV25,
     kV25Postgres},
    {27, "teleconsult", "the patient's consults, referrals and emergency cases by Patient ID",
     kV27},
}};

}  // namespace

std::span<const storage::SchemaStep> schema_steps() { return kSteps; }

}  // namespace yilian::teleconsult
