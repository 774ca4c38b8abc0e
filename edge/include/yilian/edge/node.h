// `yilian edge`: a township clinic's front end. Its modalities store to it (the same DICOM
// SCP and Ingestor as the hub, on its own data directory); every stored instance joins a
// durable outbound queue, and one uploader thread sends the queue to the hub:
//   - STAT first (ECGs, and studies the priority rules make STAT, e.g. a head CT for
//     suspected stroke); a STAT instance overtakes a routine bundle in transfer, which
//     resumes afterwards from where the hub has it;
//   - within a study, series and instance order; instances go in bundles (one upload of many
//     instances, built once into a file so that a resumed upload sends the same bytes);
//   - resumable uploads (tus 1.0, uploads.h): after a cut of the link, a restart of the edge
//     (kill -9 included) or of the hub, the transfer resumes at the offset the hub holds;
//   - routine bundles keep to a bandwidth cap, STAT ones never wait;
//   - once a study's instances are all at the hub and none has arrived at the edge for the
//     stable time, the edge says the study is complete (the hub routes it at once).
// State lives in the edge's index database (edge_outbox, edge_bundles, edge_completions).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/edge/schedule.h"
#include "yilian/identity/accounts.h"
#include "yilian/pacs/index.h"
#include "yilian/pacs/ingest.h"
#include "yilian/reading/queue_rules.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/clock.h"
#include "yilian/storage/database.h"

namespace yilian::edge {

class HubClient;

// At the edge everything of the clinic is filed under one institution of this code: the
// studies its modalities store, the priors pulled for it, and its doctors' accounts as the back
// channel brings them (so that the access rules let them read the clinic's studies here).
inline constexpr std::string_view kLocalInstitution = "local";

struct EdgeOptions {
  std::string hub_url;      // https://hub:port
  std::string credential;   // the edge's token (POST /api/admin/edges at the hub)
  std::string hub_ca_file;  // PEM the hub's certificate is verified with; empty: the system's
  std::filesystem::path outbox_dir;        // bundle files
  std::uint64_t bundle_bytes = 16u << 20;  // a bundle closes at this size...
  std::size_t bundle_instances = 256;      // ...or this many instances
  // One PATCH: from chunk_bytes, grown to about a second of the link's measured throughput
  // (a request waits a round trip for its answer: at 10 Mb/s and 80 ms, 256 KiB chunks leave
  // the link idle a quarter of the time), at most max_chunk_bytes. A STAT object waits for at
  // most the chunk in flight.
  std::uint64_t chunk_bytes = 256u << 10;
  std::uint64_t max_chunk_bytes = 4u << 20;
  std::uint64_t routine_bytes_per_second = 0;  // cap for routine transfers; 0: none
  // Time-of-day windows with their own routine cap or with routine traffic held (in the
  // edge's local time; schedule.h); routine_bytes_per_second outside them.
  std::vector<RoutineWindow> routine_schedule;
  std::chrono::milliseconds stable{10'000};  // no new instance this long: the study is whole
  // The priority rules until the hub's arrive by the back channel (then the hub's, as it has
  // them now: the edge decides STAT as the hub would).
  reading::QueueRules rules;
  storage::Clock clock = [] { return std::chrono::system_clock::now(); };
  // The back channel: how often the edge pulls its clinic's reports, critical results and
  // accounts from the hub (and pushes acknowledgements made at the edge); the accounts go to
  // `accounts` (the edge's own, so that the clinic's doctors sign in at the edge with their
  // usual password while the link is down); null: no back channel.
  std::chrono::milliseconds sync_period{15'000};
  identity::Accounts* accounts = nullptr;
  // Sent studies (whole at the hub) and pulled priors stay viewable at the edge this many days
  // after they were sent or pulled, then are removed from it; 0: kept for ever.
  double keep_days = 30;
  // Stores a prior pulled from the hub (the edge's Ingestor, its own institution); unset: the
  // edge pulls no priors.
  std::function<pacs::IngestOutcome(std::string_view bytes)> ingest;
};

// A doctor's request for the priors of a patient, and what came of it.
struct PriorRequest {
  std::int64_t id = 0;
  std::string patient_id, requested_by;
  std::string state;  // queued, pulling, done, failed
  std::int64_t studies = 0, instances = 0;
  std::string detail;  // what was pulled, or why it failed (the hub's reason)
  std::string requested_at, done_at;
  std::vector<std::string> study_uids;  // the studies now at the edge for it
};

// One item of the back channel as the edge keeps it.
struct InboxItem {
  std::string kind;  // "report" | "critical" | "consult" | "referral"
  std::int64_t hub_id = 0;
  std::string study_uid, patient_id, patient_name, modalities, description, study_date;
  std::string report_kind, findings, impression, author, created_at;
  bool critical = false;
  std::string acknowledged_by, acknowledged_at;
  bool ack_pending = false;  // acknowledged here, not yet at the hub
  // Consults and referrals: `description` is the specialty (consult) or the direction, "up" or
  // "down" (referral); `findings` the question or the reason; `impression` the specialist's
  // opinion or the receiving hospital's answer (or why declined); `author` the specialist or the
  // other institution; `created_at` when it last changed.
  std::string status, urgency, slot_date, discharge_summary, follow_up_plan;
};

struct EdgeStatus {
  bool link_up = false;
  std::string last_error;   // the last failure talking to the hub, with its reason
  std::string institution;  // as the hub knows the edge (whoami)
  std::uint64_t queued = 0, in_bundles = 0, sent = 0, failed = 0;  // instances
  std::uint64_t bundles_sent = 0, bytes_sent = 0, resumes = 0, preempted = 0;
  std::string current_study;  // the bundle in transfer, if any
  int current_priority = 2;
  std::uint64_t current_offset = 0, current_length = 0;
  double bytes_per_second = 0;  // over the last transfer
  RoutineCap routine_cap;       // for routine transfers now, by the schedule
  bool rules_from_hub = false;  // STAT decided by the hub's priority rules (else the config's)
};

// One study of the outbound queue, for the edge's page: no patient name or ID (the page is
// for the clinic's staff on its own network and asks no login).
struct StudyProgress {
  std::string study_uid;
  int priority = 2;
  std::string modalities, description, study_date, study_time;
  std::uint64_t instances = 0, sent = 0, failed = 0;
  std::uint64_t bytes = 0, bytes_left = 0;  // as stored (before transport compression)
  std::string queued_at, sent_at;           // first queued; last sent
  bool complete = false;                    // the hub was told the study is complete
  // Seconds until the study is at the hub, at the link's recent throughput and the measured
  // compression, after the studies before it; negative: not known (no throughput yet, the
  // link is down, or routine traffic is held).
  double eta_seconds = -1;
  std::vector<std::string> failures;  // "SOP Instance UID: reason", the first few
};

class EdgeNode {
 public:
  EdgeNode(storage::Database& db, pacs::Index& index, storage::BlobStore& blobs,
           EdgeOptions options);
  ~EdgeNode();
  EdgeNode(const EdgeNode&) = delete;
  EdgeNode& operator=(const EdgeNode&) = delete;

  // The Ingestor's on_committed: these studies have new instances (queued by the uploader
  // thread, never on the committer's).
  void studies_committed(const std::vector<std::string>& studies);
  // Reconciles the queue with what is stored (instances stored before a crash), removes
  // bundle files nothing refers to, and starts the uploader.
  Status start();
  void stop();
  EdgeStatus status() const;
  // Studies with instances not yet at the hub or failed, and those sent in the last day; the
  // most urgent first, in the order they are sent.
  Result<std::vector<StudyProgress>> queue() const;
  // The back channel as last pulled: open critical results first, then the newest reports,
  // consults and referrals.
  Result<std::vector<InboxItem>> inbox() const;
  // A doctor of the clinic acknowledged critical result `hub_id` at the edge: kept, and sent
  // to the hub when the link allows. False: no such open result.
  Result<bool> acknowledge_critical(std::int64_t hub_id, const std::string& username);
  // When the back channel was last pulled from the hub (ISO 8601), "" never.
  std::string last_sync() const;
  // A doctor of the clinic asks for the priors of a patient: the studies of the patient that
  // they may read at the hub are pulled (on a thread of their own, beside the uploads) and
  // stored here, never sent back. Errors: invalid_argument for a patient ID with wildcards.
  Result<std::int64_t> request_priors(const std::string& patient_id, const std::string& username);
  // The last requests, newest first.
  Result<std::vector<PriorRequest>> prior_requests() const;
  // Removes the studies kept past keep_days (index entries, then files); how many. The
  // uploader calls it now and then.
  Result<std::size_t> purge_expired();

 private:
  struct Bundle;
  void run();
  void build_ahead();  // the builder thread: keeps the next bundle ready
  // Pulls the back channel and pushes acknowledgements (on the uploader thread).
  Status sync_back_channel(HubClient& hub);
  Status sync_accounts(const nlohmann::json& accounts);
  void pull_priors_loop();  // the priors thread
  Status pull_priors(HubClient& hub, const PriorRequest& request);
  Status enqueue_pending();
  Status enqueue_study(const std::string& study_uid);
  int study_priority(const pacs::StudyDetail& study, const pacs::InstanceLocation& first);
  // Builds the next bundle from the most urgent queued study; false when nothing is queued.
  Result<bool> build_bundle();
  Result<std::optional<Bundle>> next_bundle();
  // Sends one bundle; false when it stopped early for a more urgent one.
  Result<bool> send(Bundle& b);
  Status finish(const Bundle& b, const std::string& results_json);
  Status announce_complete();
  bool urgent_waiting(int than_priority);
  void set_error(const Error& e);
  RoutineCap current_routine_cap() const;      // by the schedule, at the edge's local time
  bool wait_for(std::chrono::milliseconds d);  // false when stopping

  storage::Database& db_;
  pacs::Index& index_;
  storage::BlobStore& blobs_;
  EdgeOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> pending_;                     // guarded by mu_
  bool stopping_ = false;                             // guarded by mu_
  EdgeStatus status_;                                 // guarded by mu_
  std::string last_sync_;                             // guarded by mu_
  std::shared_ptr<const reading::QueueRules> rules_;  // guarded by mu_
  std::atomic<bool> sync_now_{false};  // an acknowledgement made here waits to be sent
  std::unique_ptr<HubClient> client_;  // the uploader thread's only
  // Bytes per upload request, as the link's throughput last showed it (the uploader thread's).
  std::uint64_t chunk_size_ = 0;
  // Held while queueing and building bundles (the uploader's turn and the builder's), so no
  // instance goes into two bundles.
  std::mutex build_mu_;
  std::thread thread_;
  std::thread builder_;
  std::condition_variable priors_cv_;  // with mu_: a prior request was made, or stopping
  std::thread priors_;
};

}  // namespace yilian::edge
