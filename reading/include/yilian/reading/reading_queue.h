// The remote-reading queue: studies become reading tasks when complete, readers claim,
// report and finalise; critical results go back to the requesting institution; overdue
// tasks and unacknowledged critical results escalate. Every state change is an event,
// stored with the task and published in-process (EventBus) for the live service.
//
// Threads: one watcher thread waits for the earliest "study complete" deadline (no new
// instance for `rules.stable`) and checks escalations every few seconds, both measured on the
// injected clock. API calls run on
// the caller's thread; the store serialises them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/common/result.h"
#include "yilian/identity/accounts.h"
#include "yilian/pacs/index.h"
#include "yilian/reading/queue_rules.h"
#include "yilian/reading/queue_settings.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/clock.h"

namespace yilian::reading {

// In-process publish/subscribe of task events. Subscribers run on the publishing thread and
// must hand work off quickly (the WebSocket service queues and wakes its own thread).
class EventBus {
 public:
  using Subscriber = std::function<void(const reading::TaskEvent&)>;
  void subscribe(Subscriber s);
  void publish(const std::vector<reading::TaskEvent>& events);

 private:
  std::mutex mu_;
  std::vector<Subscriber> subscribers_;
};

class ReadingQueue {
 public:
  ReadingQueue(reading::QueueStore& store, pacs::Index& index, identity::Accounts& accounts,
               QueueRules rules, storage::Clock clock, EventBus& bus,
               std::string national_issuer = {});
  ~ReadingQueue();
  ReadingQueue(const ReadingQueue&) = delete;
  ReadingQueue& operator=(const ReadingQueue&) = delete;

  // Several nodes (set before start()): escalations, and routing the studies another node
  // left without a task (it died before their stable time), run only while this says so;
  // unset: always. Each node still routes the studies it received itself.
  void set_leader(std::function<bool()> leader) { leader_ = std::move(leader); }
  // Starts the watcher thread, which first routes the studies left without a task (a restart,
  // an import) in the background.
  Status start();
  void stop();

  // New instances arrived for these studies (from the ingest committer).
  void studies_touched(const std::vector<std::string>& study_uids);
  // Makes the watcher look at its deadlines now (after the injected clock moved, in tests; it
  // looks by itself at least once a second).
  void wake();
  // Routes a study now (an upload that says it is complete; tests). Returns the task ids.
  Result<std::vector<std::int64_t>> study_complete(const std::string& study_uid);
  // The same, asked by a user who may see the study (an uploader saying "that's all"), with the
  // clinical question when one is given: only a clinician of the study's own institution may
  // give it; the routing rules read it with the study's texts.
  Result<std::vector<std::int64_t>> study_complete(const Principal& p, const std::string& uid,
                                                   const std::string& clinical_question = {});
  // Routes a study at once, without waiting for its stable time (an ECG once it is analysed,
  // a study its sender says is complete); a task of the study made while it was still arriving
  // is marked arrived.
  Result<std::vector<std::int64_t>> route_now(const std::string& study_uid);
  // More instances of a study still arriving from an edge node, which will say when it is
  // complete (then route_now). A study the rules make STAT gets its task now, marked arriving,
  // so that it can be opened as its first images land; a task already arriving gets an
  // "instances" event (published only, not stored) so that open screens show the new count.
  // Other studies wait for their completion (their stable time no longer routes them; with no
  // word from the edge for rules.edge_complete_wait, they are routed anyway). Returns the
  // study's arriving task ids.
  Result<std::vector<std::int64_t>> study_arriving(const std::string& study_uid);
  // An emergency found by automated analysis (a suspected STEMI on an ECG): the study is
  // routed now rather than after its stable time, its tasks become STAT with `reason`, and an
  // "emergency" event is published for the live services. Returns the task ids.
  Result<std::vector<std::int64_t>> flag_emergency(const std::string& study_uid,
                                                   const std::string& reason);
  // One escalation pass (the watcher runs it periodically).
  Status escalate_now();

  // What `p` may claim and see in the worklist.
  Result<reading::ClaimScope> claim_scope(const Principal& p);
  Result<reading::ClaimScope> view_scope(const Principal& p);

  Result<std::pair<std::vector<reading::TaskRow>, std::int64_t>> worklist(
      const Principal& p, const reading::WorklistFilter& f);
  // The task if `p` may see it; permission_denied otherwise (also for a missing task).
  Result<reading::TaskRow> task(const Principal& p, std::int64_t id);
  Result<std::optional<reading::TaskRow>> claim_next(const Principal& p);
  Result<reading::TaskRow> claim(const Principal& p, std::int64_t id);
  Status heartbeat(const Principal& p, std::int64_t id);
  Status release(const Principal& p, std::int64_t id);
  Status reassign(const Principal& p, std::int64_t id, const std::string& to_username,
                  const std::string& reason);
  Status raise_priority(const Principal& p, std::int64_t id, Priority priority,
                        const std::string& reason);
  // `statements`: of an ECG report, the automated statements proposed and those signed.
  Result<reading::ReportRow> report(
      const Principal& p, std::int64_t id, ReportKind kind, const std::string& findings,
      const std::string& impression, bool critical,
      std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> statements =
          std::nullopt);
  Result<std::vector<reading::ReportRow>> reports(const Principal& p, std::int64_t id);
  Result<std::vector<reading::TaskEvent>> events(const Principal& p, std::int64_t id);
  Result<std::vector<reading::PriorStudy>> priors(const Principal& p, std::int64_t id);
  Result<std::vector<reading::CriticalRow>> critical_results(const Principal& p, bool open_only);
  Status acknowledge_critical(const Principal& p, std::int64_t id);
  Status record_qc(const Principal& p, std::int64_t id, const std::string& agreement,
                   const std::string& comment);

  bool near_due(const reading::TaskRow& t) const;
  bool overdue(const reading::TaskRow& t) const;
  std::string now() const { return storage::to_iso8601(clock_()); }
  reading::QueueStore& store() { return store_; }
  // The rules now: the configuration file's with the settings changed on the screen over them.
  std::shared_ptr<const QueueRules> rules() const;
  // The configuration file's rules (what a setting returns to when reset).
  const QueueRules& file_rules() const { return file_rules_; }
  // Reads the settings set on the screen and applies them over the file's (start() does it;
  // the watcher again every few seconds, so every node follows a change made on another).
  // A stored value that no longer passes the checks is skipped with a warning.
  Status reload_settings();
  // An administrator's change: checked, stored (who, when), in effect at once.
  Status change_setting(std::string_view key, const nlohmann::json& value,
                        const std::string& changed_by);
  // Back to the file's value.
  Status reset_setting(std::string_view key);

 private:
  // `started`: when start() was called (the start-up routing looks at what waited then).
  void run(storage::TimePoint started);
  // Routes the studies stable for `rules.stable` at `now` that have no task, received within
  // `back` of that (nullopt: ever). Returns how many it looked at.
  Result<std::size_t> route_waiting(storage::TimePoint now,
                                    std::optional<storage::TimePoint::duration> back);
  std::string lease_until() const;
  bool is_reader(const Principal& p) const;
  // Routes a study now; `forced` (an emergency) sets the priority of a new task, or raises an
  // existing one, in the same transaction that creates or updates it. The routing's events
  // are published, or handed to `published` for the caller to publish.
  // `arriving`: the task is (true) or is no longer (false) of a study still arriving; unset:
  // left as it is.
  Result<std::vector<std::int64_t>> route_study(
      const std::string& uid, const std::optional<PriorityDecision>& forced,
      std::vector<reading::TaskEvent>* published = nullptr,
      std::optional<bool> arriving = std::nullopt);

  reading::QueueStore& store_;
  pacs::Index& index_;
  identity::Accounts& accounts_;
  const QueueRules file_rules_;
  mutable std::mutex rules_mu_;
  std::shared_ptr<const QueueRules> rules_;  // rules_mu_
  storage::Clock clock_;
  EventBus& bus_;
  std::string national_issuer_;
  std::function<bool()> leader_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, storage::TimePoint> pending_;  // study -> complete at (clock_ time)
  // Studies still arriving from an edge node -> when they are routed without the edge's word
  // (rules.edge_complete_wait after their last bundle); their stable time does not route them.
  std::map<std::string, storage::TimePoint> from_edge_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace yilian::reading
