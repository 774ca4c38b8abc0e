// The edge module's steps of the index database's schema history (storage/database.h). The
// hub keeps the uploads it is receiving; an edge node keeps its outbound queue and bundles.
// Never edit a released step: append a new one with the next number.
#include <array>

#include "yilian/edge/uploads.h"

namespace yilian::edge {
namespace {

// v21: edge transfers. At the hub: one row per resumable upload (its bytes are in the uploads
// directory until stored). At an edge: every stored instance's place in the outbound queue,
// the bundles built from them (files, sent whole or resumed), and the studies said complete.
constexpr const char* kV21 = R"sql(
CREATE TABLE edge_uploads(
  id             TEXT PRIMARY KEY,
  institution_id INTEGER NOT NULL REFERENCES institutions(id),
  user_id        INTEGER NOT NULL REFERENCES users(id),
  length         INTEGER NOT NULL,
  received       INTEGER NOT NULL DEFAULT 0,
  metadata       TEXT NOT NULL DEFAULT '',
  content_type   TEXT NOT NULL,
  encoding       TEXT NOT NULL DEFAULT '',
  state          TEXT NOT NULL CHECK(state IN ('receiving', 'stored')),
  result         TEXT NOT NULL DEFAULT '',
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL
);
CREATE INDEX edge_uploads_user ON edge_uploads(user_id, state);
CREATE TABLE edge_bundles(
  id           INTEGER PRIMARY KEY,
  study_uid    TEXT NOT NULL,
  priority     INTEGER NOT NULL,
  file         TEXT NOT NULL,
  length       INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  encoding     TEXT NOT NULL DEFAULT '',
  instances    INTEGER NOT NULL,
  upload_url   TEXT NOT NULL DEFAULT '',
  sent         INTEGER NOT NULL DEFAULT 0,
  state        TEXT NOT NULL CHECK(state IN ('ready', 'done')),
  created_at   TEXT NOT NULL,
  done_at      TEXT
);
CREATE INDEX edge_bundles_ready ON edge_bundles(state, priority, id);
CREATE TABLE edge_outbox(
  sop_instance_uid TEXT PRIMARY KEY,
  study_uid        TEXT NOT NULL,
  blob_key         TEXT NOT NULL,
  size_bytes       INTEGER NOT NULL,
  priority         INTEGER NOT NULL,
  sort_key         TEXT NOT NULL,
  state            TEXT NOT NULL CHECK(state IN ('queued', 'bundled', 'sent', 'failed')),
  bundle_id        INTEGER REFERENCES edge_bundles(id),
  outcome          TEXT NOT NULL DEFAULT '',
  queued_at        TEXT NOT NULL,
  sent_at          TEXT
);
CREATE INDEX edge_outbox_queue ON edge_outbox(state, priority, queued_at, study_uid, sort_key);
CREATE INDEX edge_outbox_study ON edge_outbox(study_uid, state);
CREATE TABLE edge_completions(
  study_uid TEXT PRIMARY KEY,
  sent_at   TEXT NOT NULL
);
)sql";

// v23: an edge's copy of what the hub sends back for its clinic (final reports and addenda,
// critical results), readable while the link is down; an acknowledgement made at the edge waits
// in ack_pending until the hub has it.
constexpr const char* kV23 = R"sql(
CREATE TABLE edge_inbox(
  kind            TEXT NOT NULL CHECK(kind IN ('report', 'critical')),
  hub_id          INTEGER NOT NULL,
  study_uid       TEXT NOT NULL,
  patient_id      TEXT NOT NULL DEFAULT '',
  patient_name    TEXT NOT NULL DEFAULT '',
  modalities      TEXT NOT NULL DEFAULT '',
  description     TEXT NOT NULL DEFAULT '',
  study_date      TEXT NOT NULL DEFAULT '',
  report_kind     TEXT NOT NULL DEFAULT '',
  findings        TEXT NOT NULL DEFAULT '',
  impression      TEXT NOT NULL DEFAULT '',
  critical        INTEGER NOT NULL DEFAULT 0,
  author          TEXT NOT NULL DEFAULT '',
  created_at      TEXT NOT NULL,
  acknowledged_by TEXT NOT NULL DEFAULT '',
  acknowledged_at TEXT NOT NULL DEFAULT '',
  ack_pending     INTEGER NOT NULL DEFAULT 0,
  received_at     TEXT NOT NULL,
  PRIMARY KEY(kind, hub_id)
);
)sql";

// v24: an edge's copy of its clinic's consults and referrals as the hub last sent them (status,
// the specialist's opinion, the receiving hospital's answer, slot, discharge summary and
// follow-up plan), replaced whole at each sync; the doctors' requests for a patient's priors and
// the prior studies pulled from the hub for them (kept at the edge, never sent back).
constexpr const char* kV24 = R"sql(
CREATE TABLE edge_notices(
  kind              TEXT NOT NULL CHECK(kind IN ('consult', 'referral')),
  hub_id            INTEGER NOT NULL,
  patient_id        TEXT NOT NULL DEFAULT '',
  patient_name      TEXT NOT NULL DEFAULT '',
  topic             TEXT NOT NULL DEFAULT '',
  urgency           TEXT NOT NULL DEFAULT '',
  status            TEXT NOT NULL DEFAULT '',
  question          TEXT NOT NULL DEFAULT '',
  answer            TEXT NOT NULL DEFAULT '',
  counterpart       TEXT NOT NULL DEFAULT '',
  slot_date         TEXT NOT NULL DEFAULT '',
  discharge_summary TEXT NOT NULL DEFAULT '',
  follow_up_plan    TEXT NOT NULL DEFAULT '',
  created_at        TEXT NOT NULL,
  updated_at        TEXT NOT NULL,
  received_at       TEXT NOT NULL,
  PRIMARY KEY(kind, hub_id)
);
CREATE TABLE edge_prior_requests(
  id           INTEGER PRIMARY KEY,
  patient_id   TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  state        TEXT NOT NULL CHECK(state IN ('queued', 'pulling', 'done', 'failed')),
  studies      INTEGER NOT NULL DEFAULT 0,
  instances    INTEGER NOT NULL DEFAULT 0,
  detail       TEXT NOT NULL DEFAULT '',
  requested_at TEXT NOT NULL,
  done_at      TEXT
);
CREATE TABLE edge_priors(
  study_uid  TEXT PRIMARY KEY,
  patient_id TEXT NOT NULL,
  request_id INTEGER NOT NULL REFERENCES edge_prior_requests(id),
  pulled_at  TEXT NOT NULL
);
)sql";

constexpr std::array kSteps = {
    storage::SchemaStep{21, "edge", "edge transfers: uploads at the hub, outbound queue at an edge",
                        kV21},
    storage::SchemaStep{23, "edge", "an edge's copy of its clinic's reports and critical results",
                        kV23},
    storage::SchemaStep{
        24, "edge", "an edge's copy of its clinic's consults and referrals; priors pulled", kV24},
};

}  // namespace

std::span<const storage::SchemaStep> schema_steps() { return kSteps; }

}  // namespace yilian::edge
