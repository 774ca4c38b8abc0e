// The reading module's steps of the index database's schema history (see
// storage/database.h: one numbered history, each step owned by the module whose tables it
// creates or changes). Never edit a released step: append a new one with the next number.
#include "yilian/reading/schema.h"

#include <array>

namespace yilian::reading {
namespace {

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

// The requesting clinician's question, given when a study is sent for reading (REST); kept
// apart from the DICOM indication, which later instances may update.
constexpr const char* kV7 = R"sql(
ALTER TABLE studies ADD COLUMN clinical_question TEXT NOT NULL DEFAULT '';
)sql";

// PostgreSQL: every claim and report leaves a dead row version behind in the queue's index,
// which the next claims step over until a vacuum removes it; with the default thresholds (20 %
// of the table) a large queue collects hundreds of thousands. Vacuum and analyse the queue
// tables after 1 % changes, without the cost-based pauses. Nothing to do on SQLite.
constexpr const char* kV10 = "SELECT 1;";
constexpr const char* kV10Postgres = R"sql(
ALTER TABLE reading_tasks SET (autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_analyze_scale_factor = 0.01, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE task_events SET (autovacuum_analyze_scale_factor = 0.01);
)sql";

// v18: queue settings changed on the administration screens (JSON values over the
// configuration file's), with who changed them when.
constexpr const char* kV18 = R"sql(
CREATE TABLE queue_settings (
  key         TEXT PRIMARY KEY,
  value       TEXT NOT NULL,
  changed_by  TEXT NOT NULL,
  changed_at  TEXT NOT NULL
);
)sql";

// v20: how readers received the automated ECG statements: per signed ECG report, each
// statement the analysis proposed or the reader chose, and whether the signed report kept it.
constexpr const char* kV20 = R"sql(
CREATE TABLE ecg_statement_reviews (
  report_id  INTEGER NOT NULL REFERENCES reports(id),
  task_id    INTEGER NOT NULL REFERENCES reading_tasks(id),
  code       TEXT NOT NULL,
  proposed   INTEGER NOT NULL,
  kept       INTEGER NOT NULL,
  signed_at  TEXT NOT NULL,
  PRIMARY KEY (report_id, code)
);
CREATE INDEX ecg_statement_reviews_signed ON ecg_statement_reviews(signed_at);
)sql";

// v22: a task made while its study is still arriving (a STAT study from an edge node, routed
// with its first instances), until the edge says the study is complete.
constexpr const char* kV22 = R"sql(
ALTER TABLE reading_tasks ADD COLUMN arriving INTEGER NOT NULL DEFAULT 0;
)sql";

// v29: readers' measurements kept with the study: a length or an angle on one frame of one
// instance (its points in the frame's pixels, as JSON), the value measured and its unit, who
// made it at which institution, and when.
constexpr const char* kV29 = R"sql(
CREATE TABLE study_measurements (
  id              INTEGER PRIMARY KEY,
  study_uid       TEXT NOT NULL,
  instance_uid    TEXT NOT NULL,
  frame           INTEGER NOT NULL,
  kind            TEXT NOT NULL CHECK(kind IN ('length','angle')),
  points          TEXT NOT NULL,
  value           TEXT NOT NULL,
  unit            TEXT NOT NULL CHECK(unit IN ('mm','px','deg')),
  created_by      TEXT NOT NULL,
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  created_at      TEXT NOT NULL
);
CREATE INDEX study_measurements_study ON study_measurements(study_uid, id);
)sql";

constexpr std::array<storage::SchemaStep, 7> kSteps{{
    {4, "reading", "reading queue: tasks, reports, critical results, QC, events", kV4},
    {7, "reading", "the requesting clinician's question on a study", kV7},
    {10, "reading", "the queue tables vacuumed and analysed often (PostgreSQL)", kV10,
     kV10Postgres},
    {18, "reading", "queue settings set on the administration screens", kV18},
    {20, "reading", "readers' agreement with the automated ECG statements", kV20},
    {22, "reading", "tasks of studies still arriving from an edge node", kV22},
    {29, "reading", "readers' measurements kept with the study", kV29},
}};

}  // namespace

std::span<const storage::SchemaStep> schema_steps() { return kSteps; }

}  // namespace yilian::reading
