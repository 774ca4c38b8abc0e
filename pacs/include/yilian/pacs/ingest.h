// The ingest path: receive -> validate -> store durably -> index.
//
// Callers (DICOM associations, import, later STOW-RS) put the received bytes into a temp
// blob and call ingest(). Validation runs on the caller's thread, so associations work in
// parallel; one committer thread then publishes the files of every waiting instance, makes
// them durable with one file-system sync, and writes all their index rows in one SQLite
// transaction (group commit): two device flushes per batch, however many instances it
// holds. ingest() returns only when the instance is durable.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "yilian/common/result.h"
#include "yilian/pacs/charset.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/clock.h"

namespace yilian::pacs {

enum class IngestStatus {
  stored,     // new instance, durable and indexed
  duplicate,  // an identical instance was already stored; nothing new written
  conflict,   // a different object with a stored SOP Instance UID: kept aside, reported
  rejected,   // invalid input; nothing kept
  refused,    // not allowed: the study belongs to another institution; nothing kept
  failed,     // storage failure; nothing kept
};

const char* ingest_status_name(IngestStatus s);

// Why an instance was not stored as sent. Every entry point answers from this, never from
// the message text (dicom_status, ingest_error below).
enum class IngestReason {
  none,
  unreadable,         // not a readable, valid DICOM data set (rejected)
  not_dicom,          // a STOW-RS part that is not application/dicom (rejected)
  class_mismatch,     // its SOP Class differs from the request or presentation context
  instance_mismatch,  // its SOP Instance UID differs from the request (rejected)
  other_study,        // not of the study the request names, or its Series Instance UID
                      // belongs to another study (rejected)
  other_institution,  // its study belongs to another institution (refused)
  different_copy,     // a different object under a stored SOP Instance UID (conflict)
  storage,            // the store failed (failed)
  disk_full,          // the disk is down to its reserve (failed; stores resume with space)
  shutting_down,      // the server is stopping (failed)
};

struct IngestOutcome {
  IngestStatus status = IngestStatus::failed;
  IngestReason reason = IngestReason::none;
  std::string message;  // why, for rejected/failed/conflict
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string study_instance_uid;
  std::string series_instance_uid;
};

// The one mapping of ingest outcomes to DICOM statuses (PS3.7 C-STORE statuses, also the
// PS3.18 STOW-RS Failure/Warning Reason): success, B000 coerced/kept aside, A900 data set
// does not match, C000 cannot understand, 0124 not authorised, A700 out of resources.
std::uint16_t dicom_status(const IngestOutcome& o);
// The outcome as an error for HTTP answers (net/http.h maps errors to statuses): rejected ->
// invalid_argument, refused -> permission_denied, conflict -> conflict, failed ->
// unavailable (out_of_space for a full disk). Only for outcomes that were not stored.
Error ingest_error(const IngestOutcome& o);

// Who sent an instance.
struct Sender {
  std::string calling_ae;
  std::int64_t institution_id = 0;
  // How this sender's text is decoded; the Ingestor's default when not set.
  std::optional<TextDecoding> text;
};

// What the transport announced (C-STORE request); empty fields are not checked.
struct Announced {
  std::string sop_class_uid;
  std::string sop_instance_uid;
};

struct IngestCounters {
  std::uint64_t stored = 0, duplicates = 0, conflicts = 0, rejected = 0, failed = 0;
  std::uint64_t batches = 0;
};

struct RecoveryReport {
  std::size_t temp_files_removed = 0;
  std::size_t orphan_files_removed = 0;  // published but never indexed nor acknowledged
  std::size_t missing_files = 0;         // index rows whose file was gone (rows removed)
};

class Ingestor {
 public:
  struct Options {
    std::size_t max_batch = 256;
    // Called on the committer thread after each durable batch with the Study Instance UIDs
    // that received new instances (the reading queue watches for complete studies). Must
    // be quick and must not call back into the Ingestor.
    std::function<void(const std::vector<std::string>&)> on_committed;
    // Text decoding for senders that bring none of their own (STOW-RS, import, REST).
    TextDecoding text;
    // When an instance is received (the index's received times).
    storage::Clock clock = [] { return std::chrono::system_clock::now(); };
    // Space the blob store's file system keeps free: below it nothing more is stored (the
    // index, reports and chat on the same disk still have room), and stores resume by
    // themselves once there is space again. 0: no reserve.
    std::uint64_t reserve_bytes = 0;
  };
  Ingestor(pacs::Index& index, storage::BlobStore& blobs, Options options);
  ~Ingestor();
  Ingestor(const Ingestor&) = delete;
  Ingestor& operator=(const Ingestor&) = delete;

  // The temp file of `key` holds a received Part 10 file. Thread-safe; blocks until the
  // instance is durable, or until it was rejected/failed (then the temp file is gone).
  IngestOutcome ingest(const std::string& key, const Sender& sender, const Announced& announced);

  // Convenience for whole files in memory (import, STOW-RS).
  IngestOutcome ingest_bytes(std::string_view bytes, const Sender& sender);

  // Reconciles the blob store and the index after a crash. Call before accepting input.
  Result<RecoveryReport> recover();

  // Stops accepting new instances, finishes the queued ones, joins the committer.
  void shutdown();

  IngestCounters counters() const;
  storage::BlobStore& blobs() { return blobs_; }

 private:
  struct Pending {
    pacs::NewInstance instance;
    std::promise<IngestOutcome> done;
  };

  // A disk_full outcome when the blob store's file system is down to its reserve, or would
  // be with `incoming` more bytes (an object not written yet; a received one is counted in).
  std::optional<IngestOutcome> no_room(std::uint64_t incoming = 0);
  // ingest() after its look at the room.
  IngestOutcome ingest_received(const std::string& key, const Sender& sender,
                                const Announced& announced);
  void run_committer();
  void commit_batch(std::deque<Pending>& batch);
  void count(IngestStatus s);

  pacs::Index& index_;
  storage::BlobStore& blobs_;
  Options options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  IngestCounters counters_;    // guarded by mu_
  std::thread committer_;
};

}  // namespace yilian::pacs
