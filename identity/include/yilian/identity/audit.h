// The tamper-evident audit trail. Each record's hash is SHA-256 over its own fields and the
// previous record's hash, so changing, removing or reordering any record breaks the chain
// from that point on; `yilian audit verify` walks it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/audit_log.h"
#include "yilian/storage/clock.h"

namespace yilian::identity {

struct AuditEvent {
  std::string actor;              // username, "ae:TITLE" for DICOM senders, "cli"
  std::string actor_institution;  // institution code
  std::string address;            // peer address, "local" for the command line
  std::string action;             // "study.read", "user.create", "dicom.store", ...
  std::string object_type;        // "study", "user", "institution", ...
  std::string object_id;
  std::string outcome = "ok";  // "ok", "denied", "failed"
  std::string detail;
};

AuditEvent event_for(const Principal& p, std::string address);

// The hash a record must carry given its fields and prev_hash (pure).
std::string audit_hash(const identity::AuditRecord& r);

struct ChainReport {
  std::int64_t records = 0;
  bool intact = true;
  std::int64_t first_bad_seq = 0;
  std::string problem;
};

// The chain's head as last written down outside the audit database (in the index: the
// audit_anchor row). Removing the newest records leaves a chain that verifies by itself; it
// no longer reaches its anchor.
struct AuditAnchor {
  std::int64_t seq = 0;
  std::string hash;
  std::string anchored_at;
};

class Auditor {
 public:
  // Reads the newest record to continue the chain.
  static Result<std::unique_ptr<Auditor>> open(identity::AuditLog& log, storage::Clock clock);

  // Appends one record and returns once it is durable; thread-safe. Records of callers that
  // arrive while a write is on the disk go together in the next one (group commit: one
  // flush for all of them). A failure is returned and logged by the caller; the chain stays
  // consistent (the sequence only advances on success).
  Status record(const AuditEvent& e);

  Result<ChainReport> verify();
  identity::AuditLog& log() { return log_; }

  // Writes the head down through `sink` after a record, at most once per `every` (and at
  // once for the first record after this is set). The sink's failure is only returned to no
  // one: the record itself stands.
  void anchor_with(std::function<Status(const AuditAnchor&)> sink, std::chrono::seconds every);
  // The head now (seq 0: no record yet).
  AuditAnchor head();

 private:
  // Records gathered for one write, and its outcome.
  struct Batch {
    std::vector<identity::AuditRecord> records;
    bool done = false;
    Status status;
  };
  Auditor(identity::AuditLog& log, storage::Clock clock) : log_(log), clock_(std::move(clock)) {}
  // Chains and appends `records` after the head `last_seq`/`last_hash`, which it moves to the
  // newest record written (or learnt of from another node). Called without mu_, by the one
  // caller that set writing_.
  static Status write(identity::AuditLog& log, std::vector<identity::AuditRecord>& records,
                      std::int64_t& last_seq, std::string& last_hash);

  identity::AuditLog& log_;
  storage::Clock clock_;
  std::mutex mu_;
  std::condition_variable written_;
  std::shared_ptr<Batch> gathering_;  // the batch new records join (mu_)
  bool writing_ = false;              // one caller writes a batch at a time (mu_)
  std::int64_t last_seq_ = 0;         // the head (mu_)
  std::string last_hash_;
  std::function<Status(const AuditAnchor&)> anchor_sink_;
  std::chrono::seconds anchor_every_{60};
  std::optional<storage::TimePoint> anchored_at_;
};

// Verifies a chain read from any log (used by Auditor::verify and the command line); with an
// anchor, also that the chain still holds the anchored record unchanged.
Result<ChainReport> verify_chain(identity::AuditLog& log,
                                 const std::optional<AuditAnchor>& anchor = std::nullopt);

}  // namespace yilian::identity
