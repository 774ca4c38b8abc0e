// Plain records exchanged with the DICOM index. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "yilian/identity/records.h"

namespace yilian::pacs {

using identity::Institution;
using identity::StudyAccessFacts;
using identity::StudyScope;

// One DICOM instance ready to be indexed: attributes from its data set, where its bytes
// live in the blob store, and how it arrived.
struct NewInstance {
  // Blob
  std::string blob_key;
  std::int64_t size_bytes = 0;
  std::int64_t dataset_offset = 0;  // first byte after the Part 10 file meta information
  std::string transfer_syntax_uid;
  std::string content_hash;  // storage::content_hash of the file as received

  // Identity
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string study_instance_uid;
  std::string series_instance_uid;

  // Patient
  std::string patient_id;
  std::string issuer_of_patient_id;
  std::string patient_name;
  std::string patient_birth_date;
  std::string patient_sex;

  // Study
  std::string study_date;
  std::string study_time;
  std::string accession_number;
  std::string study_id;
  std::string study_description;
  std::string referring_physician;
  std::string institution_name;  // (0008,0080) as written by the modality
  // Order (when the modality copied it from the worklist)
  std::string requested_priority;  // (0040,1003): STAT, HIGH, ROUTINE, MEDIUM, LOW
  std::string indication;          // reason for the requested procedure / admitting diagnosis
  std::string procedure;           // (0032,1060) Requested Procedure Description

  // Series
  std::string modality;
  std::optional<std::int64_t> series_number;
  std::string series_description;
  std::string body_part;

  // Instance
  std::optional<std::int64_t> instance_number;
  std::int64_t number_of_frames = 1;

  // Transport
  std::string calling_ae;
  std::int64_t institution_id = 0;  // the member institution the sender maps to
  std::string received_at;          // ISO 8601 UTC
};

// A stored instance as the ingest path needs to see it (duplicate checks).
struct StoredInstance {
  std::int64_t pk = 0;
  std::string sop_instance_uid;
  std::string blob_key;
  std::int64_t size_bytes = 0;
  std::int64_t dataset_offset = 0;
};

// Where an instance lives and what it belongs to (retrieval).
struct InstanceLocation {
  std::string sop_instance_uid, series_instance_uid, study_instance_uid;
  std::string blob_key;
  std::string sop_class_uid, transfer_syntax_uid;
  std::int64_t number_of_frames = 1;
  std::optional<std::int64_t> instance_number;
};

// A second, different object that arrived with an already stored SOP Instance UID.
struct ConflictingInstance {
  std::string sop_instance_uid;
  std::int64_t existing_instance_pk = 0;
  std::string blob_key;
  std::int64_t size_bytes = 0;
  std::string calling_ae;
  std::int64_t institution_id = 0;
  std::string received_at;
  std::string content_hash;
};

struct StudySummary {
  std::string study_instance_uid;
  std::string patient_id;
  std::string issuer_of_patient_id;
  std::string patient_name;
  std::string patient_birth_date;
  std::string patient_sex;
  std::string study_date;
  std::string study_time;
  std::string accession_number;
  std::string study_description;
  std::string referring_physician;
  std::string institution_name;
  std::string modalities;  // distinct modalities, '\' separated as in DICOM
  std::string institution_code;
  std::int64_t num_series = 0;
  std::int64_t num_instances = 0;
  std::int64_t size_bytes = 0;
  std::string first_received_at;
  std::string last_received_at;
};

struct SeriesSummary {
  std::string series_instance_uid;
  std::string modality;
  std::optional<std::int64_t> series_number;
  std::string series_description;
  std::string body_part;
  std::int64_t num_instances = 0;
  std::int64_t size_bytes = 0;
  std::string last_received_at;
};

struct StudyDetail {
  StudySummary study;
  std::vector<SeriesSummary> series;
};

struct StudyPage {
  std::vector<StudySummary> studies;
  std::int64_t total = 0;
};

// A patient of a search (C-FIND at PATIENT level): the patient's attributes from their most
// recent study and the totals over their matching studies.
struct PatientSummary {
  std::string patient_id;
  std::string issuer_of_patient_id;
  std::string patient_name;
  std::string patient_birth_date;
  std::string patient_sex;
  std::int64_t studies = 0, series = 0, instances = 0;
};

// A study search (QIDO-RS, C-FIND). Empty fields match anything. Wildcards: '*' any run,
// '?' one character. Dates: "YYYYMMDD", "A-B", "-B", "A-".
struct StudyQuery {
  std::string patient_id;    // wildcard, case-sensitive
  std::string patient_name;  // wildcard, case-insensitive
  bool fuzzy_names = false;  // patient_name matches anywhere in the name
  std::string study_date;    // date or range
  std::vector<std::string> study_uids;
  std::string accession_number;   // wildcard
  std::string modality;           // one of the study's modalities
  std::string study_description;  // wildcard, case-insensitive
  // The members (codes) whose studies are searched, within the scope; empty: every member.
  std::vector<std::string> institutions;
};

// One member's patient row of a Patient ID: the member, the issuer it came with, and the
// demographics the member last sent.
struct PatientRow {
  std::string institution_code;
  std::string issuer;
  std::string name, birth_date, sex;
};

}  // namespace yilian::pacs
