// The pacs module's steps of the index database's schema history (see
// storage/database.h: one numbered history, each step owned by the module whose tables it
// creates or changes). Never edit a released step: append a new one with the next number.
#include "yilian/pacs/schema.h"

#include <array>

namespace yilian::pacs {
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

// v5: study searches (QIDO-RS, C-FIND) start from the patient when they name one.
constexpr const char* kV5 = R"sql(
CREATE INDEX patients_patient_id ON patients(patient_id);
CREATE INDEX patients_name ON patients(name COLLATE NOCASE);
)sql";

// v11: a study search by date range or by patient name counts and pages its matches from one
// index: the columns the scope check and the newest-first order read are in it. The name is
// searched in the study's own folded copy of it (ASCII letters in lower case), kept by ingest;
// the patients' name index has no reader left.
constexpr const char* kV11 = R"sql(
DROP INDEX studies_date;
CREATE INDEX studies_date ON studies(study_date, last_received_at, id, institution_id, modalities);
ALTER TABLE studies ADD COLUMN patient_name_key TEXT NOT NULL DEFAULT '';
UPDATE studies SET patient_name_key =
  lower((SELECT name FROM patients WHERE patients.id = studies.patient_pk));
CREATE INDEX studies_patient_name
  ON studies(patient_name_key, last_received_at, id, institution_id, modalities);
DROP INDEX patients_name;
)sql";
// PostgreSQL: the columns beside the key as INCLUDE; lower() in the "C" collation folds ASCII
// letters only, as SQLite's does; text_pattern_ops serves a LIKE prefix in any collation.
constexpr const char* kV11Postgres = R"sql(
DROP INDEX studies_date;
CREATE INDEX studies_date ON studies(study_date)
  INCLUDE (last_received_at, id, institution_id, modalities);
ALTER TABLE studies ADD COLUMN patient_name_key TEXT NOT NULL DEFAULT '';
UPDATE studies SET patient_name_key = lower(p.name COLLATE "C")
  FROM patients p WHERE p.id = studies.patient_pk;
CREATE INDEX studies_patient_name ON studies(patient_name_key text_pattern_ops)
  INCLUDE (last_received_at, id, institution_id, modalities);
DROP INDEX patients_name;
)sql";

// v12: a date range lists the latest study dates first; on PostgreSQL the index then holds that
// order in its key, so the page is the first entries of a backward scan. SQLite's v11 index has
// it already.
constexpr const char* kV12 = "SELECT 1;";
constexpr const char* kV12Postgres = R"sql(
DROP INDEX studies_date;
CREATE INDEX studies_date ON studies(study_date, last_received_at, id)
  INCLUDE (institution_id, modalities);
)sql";

// v13: the name key without trailing component separators, as ingest now writes it.
constexpr const char* kV13 = R"sql(
UPDATE studies SET patient_name_key = rtrim(patient_name_key, '^ ')
  WHERE patient_name_key LIKE '%^' OR patient_name_key LIKE '% ';
)sql";

// v16: the content hash taken at ingest (storage::content_hash), which fsck checks files
// against; NULL for objects stored before.
constexpr const char* kV16 = R"sql(
ALTER TABLE instances ADD COLUMN content_hash TEXT;
ALTER TABLE instance_conflicts ADD COLUMN content_hash TEXT;
)sql";

constexpr std::array<storage::SchemaStep, 7> kSteps{{
    {1, "pacs", "institutions, patients, studies, series, instances", kV1},
    {2, "pacs", "instance conflicts; newest-first study index", kV2},
    {5, "pacs", "patient ID and name indexes for searches", kV5},
    {11, "pacs", "date and patient name searches served by one study index each", kV11,
     kV11Postgres},
    {12, "pacs", "date range searches in study date order", kV12, kV12Postgres},
    {13, "pacs", "patient name keys without trailing component separators", kV13},
    {16, "pacs", "content hash of each stored object", kV16},
}};

}  // namespace

std::span<const storage::SchemaStep> schema_steps() { return kSteps; }

}  // namespace yilian::pacs
