// Every ECG the hub receives (C-STORE, STOW-RS, import) is analysed as soon as its batch is
// committed, on a thread of its own: the results are kept for GET /api/ecg and the study is
// routed to the ECG readers at once (an ECG is complete when it arrives); a suspected STEMI
// makes that task STAT and publishes an emergency event (the first link of the chest-pain
// pathway). Flags support the reader; the reader signs the report.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "yilian/identity/audit.h"
#include "yilian/pacs/index.h"
#include "yilian/reading/reading_queue.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/disk_cache.h"

namespace yilian::ecg::service {

struct EcgPipelineCounters {
  std::uint64_t analysed = 0, suspected_stemi = 0, unreadable = 0;
};

class EcgPipeline {
 public:
  EcgPipeline(pacs::Index& index, storage::BlobStore& blobs, storage::DiskCache& cache,
              reading::ReadingQueue& queue, identity::Auditor* auditor);
  ~EcgPipeline();
  EcgPipeline(const EcgPipeline&) = delete;
  EcgPipeline& operator=(const EcgPipeline&) = delete;

  void start();
  void stop();  // finishes the study it is on; what is still queued is left
  // New instances were committed for these studies (from the ingest committer; returns at once).
  void studies_committed(const std::vector<std::string>& study_uids);
  // Waits until everything queued so far has been analysed (tests, shutdown).
  void drain();
  EcgPipelineCounters counters() const;

 private:
  void run();
  void analyse_study(const std::string& study_uid);

  pacs::Index& index_;
  storage::BlobStore& blobs_;
  storage::DiskCache& cache_;
  reading::ReadingQueue& queue_;
  identity::Auditor* auditor_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::string> pending_;   // guarded by mu_
  bool busy_ = false, stop_ = false;  // guarded by mu_
  EcgPipelineCounters counters_;      // guarded by mu_
  std::thread thread_;
};

}  // namespace yilian::ecg::service
