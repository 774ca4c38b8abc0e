// The laboratory module's steps of the index database's schema history (see
// storage/database.h). Never edit a released step: append a new one with the next number.
#include "yilian/lab/schema.h"

#include <array>

namespace yilian::lab {
namespace {

// v26: laboratory results. Each accepted HL7 message once per sender and control id (a resent
// message is answered from here and stores nothing twice); its results per patient with their
// codes (LOINC where sent or mapped, the sender's own code kept), units, reference range,
// flags, specimen time, performing laboratory and that laboratory's qualification when
// received; and each time a doctor took a recognised result instead of repeating the test.
constexpr const char* kV26 = R"sql(
CREATE TABLE lab_messages(
  id              INTEGER PRIMARY KEY,
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  control_id      TEXT NOT NULL,
  protocol        TEXT NOT NULL CHECK(protocol IN ('hl7v2','fhir')),
  received_at     TEXT NOT NULL,
  results         INTEGER NOT NULL,
  UNIQUE(institution_id, control_id)
);
CREATE TABLE lab_results(
  id               INTEGER PRIMARY KEY,
  message_id       INTEGER NOT NULL REFERENCES lab_messages(id),
  institution_id   INTEGER NOT NULL REFERENCES institutions(id),
  patient_id       TEXT NOT NULL,
  patient_name     TEXT NOT NULL DEFAULT '',
  order_code       TEXT NOT NULL DEFAULT '',
  order_name       TEXT NOT NULL DEFAULT '',
  code             TEXT NOT NULL,
  code_system      TEXT NOT NULL,
  local_code       TEXT NOT NULL DEFAULT '',
  name             TEXT NOT NULL DEFAULT '',
  value_type       TEXT NOT NULL,
  value            TEXT NOT NULL,
  units            TEXT NOT NULL DEFAULT '',
  reference_range  TEXT NOT NULL DEFAULT '',
  flags            TEXT NOT NULL DEFAULT '',
  status           TEXT NOT NULL CHECK(status IN ('F','C','P')),
  specimen_at      TEXT NOT NULL,
  observed_at      TEXT NOT NULL DEFAULT '',
  performing_lab   TEXT NOT NULL,
  qualification    TEXT NOT NULL DEFAULT '',
  received_at      TEXT NOT NULL
);
CREATE INDEX lab_results_patient ON lab_results(patient_id, institution_id, code, specimen_at);
CREATE TABLE lab_recognitions(
  id              INTEGER PRIMARY KEY,
  result_id       INTEGER NOT NULL REFERENCES lab_results(id),
  institution_id  INTEGER NOT NULL REFERENCES institutions(id),
  recognised_by   TEXT NOT NULL,
  at              TEXT NOT NULL,
  UNIQUE(result_id, institution_id)
);
)sql";

// v28: the consortium admins' edits of the recognition table over the configuration file's
// ([[lab.recognition]], [lab] qualifications): a rule by its key ("code:<LOINC>" or
// "modality:<modality>") and a qualification by its holder, each set or taken out, with who did
// it and when. Dropping an edit puts the file's entry back in force.
constexpr const char* kV28 = R"sql(
CREATE TABLE lab_rule_edits(
  rule_key        TEXT PRIMARY KEY,
  code            TEXT NOT NULL DEFAULT '',
  modality        TEXT NOT NULL DEFAULT '',
  qualifications  TEXT NOT NULL DEFAULT '',
  valid_days      INTEGER NOT NULL DEFAULT 0,
  removed         INTEGER NOT NULL DEFAULT 0 CHECK(removed IN (0, 1)),
  edited_by       TEXT NOT NULL,
  edited_at       TEXT NOT NULL
);
CREATE TABLE lab_qualification_edits(
  holder          TEXT PRIMARY KEY,
  qualification   TEXT NOT NULL DEFAULT '',
  removed         INTEGER NOT NULL DEFAULT 0 CHECK(removed IN (0, 1)),
  edited_by       TEXT NOT NULL,
  edited_at       TEXT NOT NULL
);
)sql";

constexpr std::array<storage::SchemaStep, 2> kSteps{{
    {26, "lab", "laboratory results, their messages and their recognition", kV26},
    {28, "lab", "the admins' edits of the recognition rules and laboratory qualifications", kV28},
}};

}  // namespace

std::span<const storage::SchemaStep> schema_steps() { return kSteps; }

}  // namespace yilian::lab
