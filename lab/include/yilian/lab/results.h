// Laboratory results: what the hub keeps of each (LabResult), the consortium's mutual
// recognition rules (检查检验结果互认: which tests, from laboratories of which qualification,
// for how long), the store, and the receiver that turns an HL7 v2 message into stored results
// and its acknowledgement.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/clock.h"
#include "yilian/storage/database.h"

namespace yilian::identity {
class Accounts;
struct InstitutionInfo;
}  // namespace yilian::identity

namespace yilian::lab {

struct OruReport;

struct LabResult {
  std::int64_t id = 0;
  std::int64_t institution_id = 0;
  std::string institution_code;
  std::string patient_id, patient_name;
  std::string order_code, order_name;
  std::string code;         // LOINC when sent or mapped, else the sender's own code
  std::string code_system;  // "LN" for LOINC, else the system the sender named ("L" if none)
  std::string local_code;   // the sender's own code, when it sent one besides LOINC
  std::string name;
  std::string value_type, value, units, reference_range, flags, status;
  std::string specimen_at, observed_at;  // ISO 8601 UTC
  std::string performing_lab, qualification;
  std::string received_at;
};

// One recognition rule: results of `code` (LOINC) from laboratories holding one of
// `qualifications` (e.g. "national_eqa", "provincial_eqa", "iso15189") are recognised across
// members for `valid_days` after the specimen was taken. An imaging rule names a `modality`
// instead: final reports of that modality signed at an institution holding one of the
// qualifications are recognised for `valid_days` after they were signed.
struct RecognitionRule {
  std::string code;      // a LOINC test; or, for imaging reports, empty and `modality` set
  std::string modality;  // CT, MR, DX, US, ...
  std::vector<std::string> qualifications;
  int valid_days = 0;
};

struct Recognition {
  bool recognised = false;
  std::string until;  // ISO 8601 UTC, when recognised
  std::string why;    // why not, in words
  // why not, as a code: preliminary, no_rule, qualification_unknown, not_qualified,
  // no_specimen_time, expired
  std::string why_code;
};

// Pure: a final or corrected result whose test a rule names, from a qualified laboratory, in
// its validity window at `now`.
Recognition recognise(const LabResult& r, const std::vector<RecognitionRule>& rules,
                      storage::TimePoint now);

// A laboratory's qualification in `qualifications`: by its name as results give it, else by the
// sending member's code when the member performed the test itself; "" when neither is there.
std::string laboratory_qualification(std::string_view performing_lab, std::string_view sender,
                                     const std::map<std::string, std::string>& qualifications);

// The qualification a stored result is judged by: the one its laboratory held when the result
// was received, or, when none was known then, the one the table gives that laboratory now.
void fill_qualification(LabResult& r, const std::map<std::string, std::string>& qualifications);

// An imaging study read to its final report, as the recognition sees it.
struct ImagingReport {
  std::int64_t task_id = 0;
  std::string study_uid, study_date, modality, description, institution_code, read_by;
  std::string final_at, impression;
};
Recognition recognise_report(const ImagingReport& r, const std::vector<RecognitionRule>& rules,
                             const std::map<std::string, std::string>& qualifications,
                             storage::TimePoint now);

struct LabOptions {
  // Times sent without a zone are this far ahead of UTC (China Standard Time).
  int utc_offset_minutes = 480;
  // A laboratory's qualification, by institution code or by the performing laboratory's name
  // as results name it (OBX-23).
  std::map<std::string, std::string> qualifications;
  // The LOINC code of a sender's local code: "institution:local code" -> LOINC.
  std::map<std::string, std::string> local_codes;
  std::vector<RecognitionRule> recognition;
};

// The consortium admins' edits of the recognition table. An edit replaces the configuration
// file's entry of the same key (a rule's test or modality, a qualification's holder), adds one
// the file does not have, or takes one out (`removed`).
struct RuleEdit {
  RecognitionRule rule;  // its code or modality is the key; the rest is unused when removed
  bool removed = false;
  std::string by, at;  // who edited it, when (ISO 8601 UTC)
};
struct QualificationEdit {
  std::string holder;  // an institution code or a performing laboratory's name (OBX-23)
  std::string qualification;
  bool removed = false;
  std::string by, at;
};

// The table in force.
struct RecognitionTable {
  std::vector<RecognitionRule> rules;
  std::map<std::string, std::string> qualifications;
};

// A rule's key: "code:<LOINC>" or "modality:<modality>".
std::string rule_key(const RecognitionRule& r);

// Pure: the file's rules and qualifications with the edits over them. A rule the file does not
// have is added after the file's; a file rule keeps its place when edited.
RecognitionTable recognition_table(const LabOptions& file, const std::vector<RuleEdit>& rules,
                                   const std::vector<QualificationEdit>& qualifications);

class LabStore {
 public:
  explicit LabStore(storage::Database& db);

  // True when the institution knows this patient (a study of theirs is indexed).
  Result<bool> patient_known(std::int64_t institution_id, std::string_view patient_id);
  // The results a message stored, when a message with this control id from this institution
  // was stored already.
  Result<std::optional<std::int64_t>> stored_message(std::int64_t institution_id,
                                                     std::string_view control_id);
  // The message and its results in one transaction. A message stored meanwhile by another
  // connection (the same control id) stores nothing: `duplicate` is set.
  Result<std::int64_t> store(std::int64_t institution_id, std::string_view control_id,
                             std::string_view protocol, std::string_view received_at,
                             const std::vector<LabResult>& results, bool& duplicate);
  // A patient's results at these institutions, newest specimen first, at most kMostResults.
  static constexpr std::size_t kMostResults = 5000;
  Result<std::vector<LabResult>> results(std::string_view patient_id,
                                         const std::vector<std::int64_t>& institutions);
  Result<std::optional<LabResult>> result(std::int64_t id);
  // A doctor of `institution_id` took result `result_id` instead of repeating the test; once
  // per result and institution (false: it was recorded already).
  Result<bool> record_recognition(std::int64_t result_id, std::int64_t institution_id,
                                  std::string_view user, std::string_view at);
  // The recognition table's edits, by key; setting one replaces the key's earlier edit, and
  // dropping it (false: there was none) puts the file's entry back in force.
  Result<std::vector<RuleEdit>> rule_edits();
  Result<std::vector<QualificationEdit>> qualification_edits();
  Status put_rule_edit(const RuleEdit& e);
  Status put_qualification_edit(const QualificationEdit& e);
  Result<bool> drop_rule_edit(std::string_view key);
  Result<bool> drop_qualification_edit(std::string_view holder);
  // The laboratories that results named (OBX-23, else the sender) with no qualification known
  // when they were received, most results first (at most 50): those the recognition table
  // does not reach yet.
  struct UnqualifiedLab {
    std::string holder;       // the performing laboratory as the results name it
    std::string institution;  // the member that sent its results
    std::int64_t results = 0;
    std::string last_received_at;
  };
  Result<std::vector<UnqualifiedLab>> unqualified_labs();
  // The LOINC tests that results have named, by code, each with the name most of its results
  // gave it and how many results there are (at most 2,000 codes): so that a rule's code can be
  // shown and chosen by the test's name.
  struct KnownTest {
    std::string code, name;
    std::int64_t results = 0;
  };
  Result<std::vector<KnownTest>> known_tests();
  // The table in force: `file` with the stored edits over it.
  Result<RecognitionTable> recognition_table(const LabOptions& file);
  // Repeats avoided in [from, to) (ISO 8601 UTC; empty: unbounded), by the institution that
  // avoided them: code -> count.
  Result<std::map<std::string, std::int64_t>> avoided_repeats(
      const std::vector<std::int64_t>& institutions, std::string_view from = {},
      std::string_view to = {});

 private:
  storage::Database& db_;
};

// A laboratory report (from HL7 v2 or FHIR) of a member institution -> stored results: the
// duplicate check by the report's id, the patient check, the LOINC mapping and the
// laboratory's qualification, then every result in one transaction.
struct Intake {
  std::optional<Error> failed;  // the store could not be read or written
  bool unknown_patient = false;
  bool duplicate = false;   // stored already under this id: nothing stored now
  std::int64_t stored = 0;  // results stored (or stored earlier, for a duplicate)
  std::string text;         // what happened, for the acknowledgement
};
Intake intake(LabStore& store, const LabOptions& options, const identity::InstitutionInfo& sender,
              const OruReport& report, std::string_view protocol, std::string_view now);

// HL7 v2 ORU^R01 -> stored results -> the ACK. AR: not processable (not HL7, wrong encoding
// characters, another message type, version or processing id, an unknown sending facility);
// AE: content errors (a required field missing, a bad value, an unknown patient); AA: stored,
// or stored already under this control id (nothing stored twice). Nothing is stored unless
// every result of the message is accepted.
class Hl7Receiver {
 public:
  Hl7Receiver(LabStore& store, identity::Accounts& accounts, LabOptions options,
              std::function<storage::TimePoint()> clock);
  std::string receive(std::string_view bytes);

 private:
  LabStore& store_;
  identity::Accounts& accounts_;
  LabOptions options_;
  std::function<storage::TimePoint()> clock_;
  std::atomic<std::uint64_t> acks_{0};
};

}  // namespace yilian::lab
