// The DICOM index: institutions, patients, studies, series, instances. Writes are
// group-committed operations of storage::Database (the ingest committer writes a whole batch
// as one); reads use read connections, so they never wait for a commit.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/pacs/records.h"
#include "yilian/storage/database.h"

namespace yilian::pacs {

// What one group commit writes: new instances and conflicting copies, in one transaction.
struct IndexBatch {
  std::vector<NewInstance> instances;
  std::vector<ConflictingInstance> conflicts;
};

class Index {
 public:
  // The index over `db`, which must hold the migrated consortium schema.
  static std::unique_ptr<Index> open(storage::Database& db);

  virtual ~Index() = default;

  virtual int schema_version() = 0;

  // Institutions: get-or-create by code.
  virtual Result<Institution> ensure_institution(std::string_view code, std::string_view name) = 0;
  virtual Result<std::vector<Institution>> institutions() = 0;

  // Ingest.
  virtual Result<std::optional<StoredInstance>> find_instance(
      std::string_view sop_instance_uid) = 0;
  virtual Status commit(const IndexBatch& batch) = 0;

  // The institution a study is filed under, if the study exists (ingest: a sender may only
  // add to its own institution's studies).
  virtual Result<std::optional<std::int64_t>> study_institution(std::string_view study_uid) = 0;
  // The Study Instance UID the series is filed under, if the series exists.
  virtual Result<std::optional<std::string>> series_study(std::string_view series_uid) = 0;

  // Reads for the API, limited to what `scope` covers.
  virtual Result<StudyPage> list_studies(const StudyScope& scope, std::int64_t limit,
                                         std::int64_t offset) = 0;
  // Studies matching `query` within `scope`, newest first.
  virtual Result<StudyPage> search_studies(const StudyScope& scope, const StudyQuery& query,
                                           std::int64_t limit, std::int64_t offset) = 0;
  // The patients of the studies matching `query` within `scope`, one per patient ID and
  // issuer, the most recently active first; at most `limit`.
  virtual Result<std::vector<PatientSummary>> search_patients(const StudyScope& scope,
                                                              const StudyQuery& query,
                                                              std::int64_t limit) = 0;
  // Every member's patient row of exactly `patient_id` (no wildcards), in the order they were
  // first filed: where the ID is held and under which issuer, to decide who it names
  // (identity/patient.h).
  virtual Result<std::vector<PatientRow>> patient_rows(std::string_view patient_id) = 0;
  // The facts the access rules need; `shared` is computed for the given user/institutions.
  virtual Result<std::optional<StudyAccessFacts>> study_access(
      std::string_view study_uid, std::int64_t user_id,
      std::span<const std::int64_t> share_institutions, std::string_view now) = 0;
  virtual Result<std::optional<StudyDetail>> get_study(std::string_view study_instance_uid) = 0;
  virtual Result<std::int64_t> count_instances() = 0;

  virtual Result<std::optional<InstanceLocation>> locate_instance(
      std::string_view sop_instance_uid) = 0;
  // The instances of a series, by instance number.
  virtual Result<std::vector<InstanceLocation>> series_instances(
      std::string_view series_instance_uid) = 0;

  // Recovery.
  virtual Result<std::vector<std::string>> all_blob_keys() = 0;
  virtual Status remove_blob_references(std::span<const std::string> blob_keys) = 0;
};

}  // namespace yilian::pacs
