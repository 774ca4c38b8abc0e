#include "yilian/reading/reading_queue.h"
#include "yilian/pacs/study_access.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "yilian/identity/policy.h"
#include "yilian/pacs/patient.h"

namespace yilian::reading {
namespace {

Error no_task() { return make_error(Errc::permission_denied, "no task you may see has this id"); }

std::vector<std::int64_t> own_institutions(const Principal& p) {
  std::vector<std::int64_t> out{p.institution_id};
  out.insert(out.end(), p.credentialed.begin(), p.credentialed.end());
  return out;
}

void append(std::vector<std::int64_t>& to, const std::vector<std::int64_t>& from) {
  for (std::int64_t x : from) {
    if (std::find(to.begin(), to.end(), x) == to.end()) to.push_back(x);
  }
}

constexpr auto kEscalationPeriod = std::chrono::seconds(5);
constexpr auto kSettingsPeriod = std::chrono::seconds(5);
// How often, and how far back, the leading node looks for studies left without a task.
constexpr auto kWaitingPeriod = std::chrono::seconds(60);
constexpr auto kWaitingWindow = std::chrono::minutes(10);

}  // namespace

void EventBus::subscribe(Subscriber s) {
  std::lock_guard lock(mu_);
  subscribers_.push_back(std::move(s));
}

void EventBus::publish(const std::vector<reading::TaskEvent>& events) {
  std::vector<Subscriber> subs;
  {
    std::lock_guard lock(mu_);
    subs = subscribers_;
  }
  for (const reading::TaskEvent& e : events) {
    for (const Subscriber& s : subs) s(e);
  }
}

ReadingQueue::ReadingQueue(reading::QueueStore& store, pacs::Index& index,
                           identity::Accounts& accounts, QueueRules rules, storage::Clock clock,
                           EventBus& bus, std::string national_issuer)
    : store_(store),
      index_(index),
      accounts_(accounts),
      file_rules_(std::move(rules)),
      rules_(std::make_shared<const QueueRules>(file_rules_)),
      clock_(std::move(clock)),
      bus_(bus),
      national_issuer_(std::move(national_issuer)) {}

ReadingQueue::~ReadingQueue() { stop(); }

std::shared_ptr<const QueueRules> ReadingQueue::rules() const {
  std::lock_guard lock(rules_mu_);
  return rules_;
}

Status ReadingQueue::reload_settings() {
  auto rows = store_.queue_settings();
  if (!rows.ok()) return rows.error();
  QueueRules r = file_rules_;
  for (const QueueSettingRow& row : *rows) {
    nlohmann::json v = nlohmann::json::parse(row.value, nullptr, false);
    if (Status s = apply_queue_setting(r, row.key, v); !s) {
      spdlog::warn("queue setting {} (set by {} at {}) skipped: {}", row.key, row.changed_by,
                   row.changed_at, s.error().message);
    }
  }
  std::lock_guard lock(rules_mu_);
  rules_ = std::make_shared<const QueueRules>(std::move(r));
  return Status::Ok();
}

Status ReadingQueue::change_setting(std::string_view key, const nlohmann::json& value,
                                    const std::string& changed_by) {
  QueueRules check = *rules();
  if (Status s = apply_queue_setting(check, key, value); !s) return s;
  if (Status s = store_.put_queue_setting(
          QueueSettingRow{std::string(key), value.dump(), changed_by, now()});
      !s)
    return s;
  return reload_settings();
}

Status ReadingQueue::reset_setting(std::string_view key) {
  const auto& keys = queue_setting_keys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
    return make_error(Errc::not_found, "no queue setting " + std::string(key));
  }
  auto erased = store_.erase_queue_setting(key);
  if (!erased.ok()) return erased.error();
  return reload_settings();
}

Status ReadingQueue::start() {
  if (Status s = reload_settings(); !s) return s;
  // The studies waiting now: whatever arrives from here on is routed as it becomes stable.
  const storage::TimePoint started = clock_();
  thread_ = std::thread([this, started] { run(started); });
  return Status::Ok();
}

Result<std::size_t> ReadingQueue::route_waiting(storage::TimePoint now,
                                                std::optional<storage::TimePoint::duration> back) {
  const storage::TimePoint cutoff = now - rules()->stable;
  auto missing = store_.studies_without_task(
      storage::to_iso8601(cutoff), back ? storage::to_iso8601(cutoff - *back) : std::string());
  if (!missing.ok()) return missing.error();
  std::size_t looked_at = 0;
  for (const std::string& uid : *missing) {
    {
      std::lock_guard lock(mu_);
      if (stop_) break;  // the rest waits for the next start
    }
    if (auto r = study_complete(uid); !r.ok()) {
      spdlog::error("reading queue: routing study {}: {}", uid, r.error().message);
    }
    ++looked_at;
  }
  return looked_at;
}

void ReadingQueue::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReadingQueue::studies_touched(const std::vector<std::string>& uids) {
  const storage::TimePoint deadline = clock_() + rules()->stable;
  {
    std::lock_guard lock(mu_);
    for (const std::string& uid : uids) {
      // A study an edge node is sending is complete when the edge says so.
      auto edge = from_edge_.find(uid);
      pending_[uid] = edge == from_edge_.end() ? deadline : std::max(deadline, edge->second);
    }
  }
  cv_.notify_all();
}

void ReadingQueue::wake() { cv_.notify_all(); }

void ReadingQueue::run(storage::TimePoint started) {
  // Deadlines are in the injected clock's time. The clock may jump (a wall-clock step, a test
  // advancing it), so the thread never sleeps longer than kRecheck before looking again;
  // wake() makes it look at once.
  constexpr auto kRecheck = std::chrono::seconds(1);
  // First the studies left without a task (by a restart, a crash, an import): here rather than
  // in start(), so that a large backlog does not hold up the hub's start.
  if (auto routed = route_waiting(started, std::nullopt); !routed.ok()) {
    spdlog::error("reading queue: routing waiting studies: {}", routed.error().message);
  } else if (*routed > 0) {
    spdlog::info("reading queue: routed {} waiting studies", *routed);
  }
  storage::TimePoint next_escalation = clock_();
  storage::TimePoint next_waiting = clock_();
  storage::TimePoint next_settings = clock_() + kSettingsPeriod;
  std::unique_lock lock(mu_);
  while (!stop_) {
    const storage::TimePoint now = clock_();
    std::vector<std::string> due;
    storage::TimePoint wake_at = next_escalation;
    // Escalations (and the sweep for studies a dead node left) run on the leading node only.
    const bool leads = !leader_ || leader_();
    if (now >= next_escalation && !leads) next_escalation = now + kEscalationPeriod;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second <= now) {
        if (from_edge_.erase(it->first) > 0)
          spdlog::warn(
              "reading queue: study {} routed without its edge node's word that it is "
              "complete",
              it->first);
        due.push_back(it->first);
        it = pending_.erase(it);
      } else {
        wake_at = std::min(wake_at, it->second);
        ++it;
      }
    }
    const bool escalate = now >= next_escalation;
    // Several nodes: a setting changed on another node's screen reaches this one here.
    const bool reload = leader_ && now >= next_settings;
    if (reload) next_settings = now + kSettingsPeriod;
    if (!due.empty() || escalate || reload) {
      lock.unlock();
      if (reload) {
        if (Status s = reload_settings(); !s)
          spdlog::warn("reading queue: settings: {}", s.error().message);
      }
      for (const std::string& uid : due) {
        if (auto r = study_complete(uid); !r.ok()) {
          spdlog::error("reading queue: routing study {}: {}", uid, r.error().message);
        }
      }
      if (escalate) {
        if (Status s = escalate_now(); !s) spdlog::error("reading queue: {}", s.error().message);
        if (leader_ && now >= next_waiting) {
          // Only the recent past (a node that died left at most the studies it was still
          // receiving), so a study no rule routes is looked at a few times, not forever.
          if (auto r = route_waiting(now, kWaitingWindow); !r.ok())
            spdlog::error("reading queue: {}", r.error().message);
          next_waiting = now + kWaitingPeriod;
        }
        next_escalation = clock_() + kEscalationPeriod;
      }
      lock.lock();
      continue;
    }
    const auto wait = std::min<std::chrono::nanoseconds>(wake_at - now, kRecheck);
    cv_.wait_for(lock, wait);
  }
}

Result<std::vector<std::int64_t>> ReadingQueue::study_complete(const std::string& uid) {
  return route_study(uid, std::nullopt);
}

Result<std::vector<std::int64_t>> ReadingQueue::route_study(
    const std::string& uid, const std::optional<PriorityDecision>& forced,
    std::vector<reading::TaskEvent>* published, std::optional<bool> arriving) {
  auto study = store_.routable_study(uid);
  if (!study.ok()) return study.error();
  if (!study->has_value()) return make_error(Errc::not_found, "no such study");
  const reading::RoutableStudy& s = **study;
  StudyFacts facts{s.modalities, s.body_parts, s.institution_code,  s.description,
                   s.procedure,  s.indication, s.requested_priority};
  reading::NewTask t;
  t.study_pk = s.study_pk;
  const auto rules = this->rules();
  t.service = route(*rules, facts);
  t.institution_id = s.institution_id;
  t.is_ecg = identity::is_ecg_study(s.modalities);
  t.modality = s.modalities;
  PriorityDecision d = decide_priority(*rules, facts);
  if (forced && forced->priority <= d.priority) d = *forced;
  t.priority = static_cast<int>(d.priority);
  t.priority_reason = d.reason;
  t.received_at = s.first_received_at;
  auto received = storage::parse_iso8601(s.first_received_at).value_or(clock_());
  t.due_at = storage::to_iso8601(received + due_within(*rules, d));
  t.arriving = arriving;
  auto r = store_.upsert_task(t, now());
  if (!r.ok()) return r.error();
  if (published) {
    *published = std::move(r->second);
  } else {
    bus_.publish(r->second);
  }
  return std::vector<std::int64_t>{r->first};
}

Result<std::vector<std::int64_t>> ReadingQueue::flag_emergency(const std::string& study_uid,
                                                               const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    pending_.erase(study_uid);
    from_edge_.erase(study_uid);
  }
  // One transaction creates the task as STAT (or raises the existing one): a reader never sees
  // the emergency as a routine task, however briefly.
  std::vector<reading::TaskEvent> routed;
  auto ids = route_study(study_uid, PriorityDecision{Priority::stat, reason}, &routed);
  if (!ids.ok()) return ids.error();
  // The emergency goes out first: its alert must not queue behind the worklist updates that
  // the routing sends to every open screen.
  std::vector<reading::TaskEvent> events;
  for (std::int64_t id : *ids) {
    events.push_back(reading::TaskEvent{id, now(), "emergency", "automated-analysis", reason});
  }
  events.insert(events.end(), routed.begin(), routed.end());
  bus_.publish(events);
  return ids;
}

Result<std::vector<std::int64_t>> ReadingQueue::study_complete(
    const Principal& p, const std::string& uid, const std::string& clinical_question) {
  auto visible = may_read_study(index_, p, uid, now());
  if (!visible.ok()) return visible.error();
  if (!*visible) return make_error(Errc::permission_denied, "no study you may see has this UID");
  if (!clinical_question.empty()) {
    auto home = index_.study_institution(uid);
    if (!home.ok()) return home.error();
    if (!home->has_value() || **home != p.institution_id || !identity::has_clinical_role(p)) {
      return make_error(Errc::permission_denied,
                        "the clinical question is given by a clinician of the study's institution");
    }
    if (Status s = store_.set_clinical_question(uid, clinical_question); !s) return s.error();
  }
  return route_now(uid);
}

Result<std::vector<std::int64_t>> ReadingQueue::route_now(const std::string& uid) {
  {
    std::lock_guard lock(mu_);
    pending_.erase(uid);
    from_edge_.erase(uid);
  }
  return route_study(uid, std::nullopt, nullptr, false);
}

Result<std::vector<std::int64_t>> ReadingQueue::study_arriving(const std::string& uid) {
  auto study = store_.routable_study(uid);
  if (!study.ok()) return study.error();
  if (!study->has_value()) return make_error(Errc::not_found, "no such study");
  const reading::RoutableStudy& s = **study;
  auto tasks = store_.study_tasks(s.study_pk);
  if (!tasks.ok()) return tasks.error();
  std::vector<std::int64_t> ids;
  bool arriving_task = false;
  for (const auto& task : *tasks) arriving_task = arriving_task || task.second;
  if (tasks->empty() || arriving_task) {
    // Its stable time routes it no more: the edge says when it is complete (route_now).
    std::lock_guard lock(mu_);
    const storage::TimePoint fallback = clock_() + rules()->edge_complete_wait;
    from_edge_[uid] = fallback;
    pending_[uid] = fallback;
  }
  cv_.notify_all();
  if (!tasks->empty()) {
    // Routed already: an arriving task's screens are told of the new instances.
    std::vector<reading::TaskEvent> events;
    for (const auto& [id, arriving] : *tasks) {
      if (!arriving) continue;
      ids.push_back(id);
      events.push_back(reading::TaskEvent{id, now(), "instances", "", ""});
    }
    bus_.publish(events);
    return ids;
  }
  const StudyFacts facts{s.modalities, s.body_parts, s.institution_code,  s.description,
                         s.procedure,  s.indication, s.requested_priority};
  if (decide_priority(*rules(), facts).priority != Priority::stat) return ids;
  return route_study(uid, std::nullopt, nullptr, true);
}

Status ReadingQueue::escalate_now() {
  auto critical_before = storage::to_iso8601(clock_() - rules()->critical_ack);
  auto events = store_.escalate(now(), critical_before);
  if (!events.ok()) return events.error();
  std::size_t overdue = 0, critical = 0;
  for (const auto& e : *events) (e.type == "escalated" ? overdue : critical) += 1;
  if (overdue > 0) spdlog::warn("reading queue: {} tasks passed their due time", overdue);
  if (critical > 0) {
    spdlog::warn("reading queue: {} critical results not acknowledged in time", critical);
  }
  bus_.publish(*events);
  return Status::Ok();
}

bool ReadingQueue::is_reader(const Principal& p) const {
  return p.has(Role::radiologist) || p.has(Role::pathologist) || p.has(Role::ecg_reader) ||
         p.has(Role::cardiologist);
}

Result<reading::ClaimScope> ReadingQueue::claim_scope(const Principal& p) {
  // The one "who reads this task" rule (identity/policy.h), as sets for the query.
  identity::ReaderScope readers = identity::reader_scope(p);
  reading::ClaimScope scope;
  scope.imaging_institutions = std::move(readers.imaging_institutions);
  scope.ecg_institutions = std::move(readers.ecg_institutions);
  scope.services = std::move(readers.services);
  scope.pathology = readers.pathology;
  return scope;
}

Result<reading::ClaimScope> ReadingQueue::view_scope(const Principal& p) {
  auto scope = claim_scope(p);
  if (!scope.ok()) return scope;
  scope->services.clear();  // readers see the whole queue they could work, not only their services
  if (p.has(Role::township_doctor)) append(scope->institutions, own_institutions(p));
  if (p.has(Role::qc_reviewer)) {
    scope->pathology = identity::PathologyTasks::any;  // reviewers sample every service
    append(scope->institutions, own_institutions(p));
    append(scope->imaging_institutions, p.imaging_clients);
    append(scope->ecg_institutions, p.ecg_clients);
  }
  return scope;
}

Result<std::pair<std::vector<reading::TaskRow>, std::int64_t>> ReadingQueue::worklist(
    const Principal& p, const reading::WorklistFilter& f) {
  auto scope = view_scope(p);
  if (!scope.ok()) return scope.error();
  return store_.worklist(f, *scope, now());
}

Result<reading::TaskRow> ReadingQueue::task(const Principal& p, std::int64_t id) {
  auto t = store_.task(id);
  if (!t.ok()) return t.error();
  if (!t->has_value()) return no_task();
  auto visible = may_read_study(index_, p, (*t)->study_uid, now());
  if (!visible.ok()) return visible.error();
  if (!*visible) return no_task();
  return std::move(**t);
}

std::string ReadingQueue::lease_until() const {
  return storage::to_iso8601(clock_() + rules()->lease);
}

Result<std::optional<reading::TaskRow>> ReadingQueue::claim_next(const Principal& p) {
  auto scope = claim_scope(p);
  if (!scope.ok()) return scope.error();
  if (scope->empty()) return make_error(Errc::permission_denied, "only readers claim tasks");
  std::vector<reading::TaskEvent> events;
  auto r = store_.claim_next(*scope, p.user_id, p.username, now(), lease_until(), &events);
  if (r.ok()) bus_.publish(events);
  return r;
}

Result<reading::TaskRow> ReadingQueue::claim(const Principal& p, std::int64_t id) {
  auto t = task(p, id);
  if (!t.ok()) return t.error();
  auto scope = claim_scope(p);
  if (!scope.ok()) return scope.error();
  auto in = [](const std::vector<std::int64_t>& v, std::int64_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  bool eligible = t->is_ecg ? in(scope->ecg_institutions, t->institution_id)
                            : in(scope->imaging_institutions, t->institution_id) &&
                                  identity::pathology_allows(scope->pathology, t->service);
  if (!eligible)
    return make_error(Errc::permission_denied, "you do not read this kind of study here");
  std::vector<reading::TaskEvent> events;
  auto r = store_.claim(id, p.user_id, p.username, now(), lease_until(), &events);
  if (r.ok()) bus_.publish(events);
  return r;
}

Status ReadingQueue::heartbeat(const Principal& p, std::int64_t id) {
  if (auto t = task(p, id); !t.ok()) return t.error();
  return store_.heartbeat(id, p.user_id, lease_until());
}

Status ReadingQueue::release(const Principal& p, std::int64_t id) {
  if (auto t = task(p, id); !t.ok()) return t.error();
  std::vector<reading::TaskEvent> events;
  Status s = store_.release(id, p.user_id, p.username, now(), &events);
  if (s.ok()) bus_.publish(events);
  return s;
}

Status ReadingQueue::reassign(const Principal& p, std::int64_t id, const std::string& to_username,
                              const std::string& reason) {
  if (!is_reader(p) && !p.has(Role::qc_reviewer)) {
    return make_error(Errc::permission_denied, "only readers reassign tasks");
  }
  if (reason.empty()) return make_error(Errc::invalid_argument, "a reassignment needs a reason");
  auto t = task(p, id);
  if (!t.ok()) return t.error();
  auto to = accounts_.find_user(to_username);
  if (!to.ok()) return to.error();
  if (!to->has_value() || (*to)->disabled)
    return make_error(Errc::not_found, "no active user " + to_username);
  std::vector<reading::TaskEvent> events;
  Status s = store_.reassign(id, (*to)->id, p.username, to_username, reason, now(), lease_until(),
                             &events);
  if (s.ok()) bus_.publish(events);
  return s;
}

Status ReadingQueue::raise_priority(const Principal& p, std::int64_t id, Priority priority,
                                    const std::string& reason) {
  if (reason.empty())
    return make_error(Errc::invalid_argument, "raising a priority needs a reason");
  auto t = task(p, id);
  if (!t.ok()) return t.error();
  auto received = storage::parse_iso8601(t->received_at).value_or(clock_());
  std::string due = storage::to_iso8601(received + sla(*rules(), priority));
  std::vector<reading::TaskEvent> events;
  Status s =
      store_.set_priority(id, static_cast<int>(priority), reason, due, p.username, now(), &events);
  if (s.ok()) bus_.publish(events);
  return s;
}

Result<reading::ReportRow> ReadingQueue::report(
    const Principal& p, std::int64_t id, ReportKind kind, const std::string& findings,
    const std::string& impression, bool critical,
    std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> statements) {
  auto t = task(p, id);
  if (!t.ok()) return t.error();
  if (!is_reader(p)) return make_error(Errc::permission_denied, "only readers write reports");
  if (kind != ReportKind::draft && impression.empty()) {
    return make_error(Errc::invalid_argument, "a signed report needs an impression");
  }
  reading::QueueStore::NewReport r;
  r.task_id = id;
  r.kind = report_kind_name(kind);
  r.findings = findings;
  r.impression = impression;
  r.critical = critical;
  r.author = p.user_id;
  r.author_name = p.username;
  r.qc = qc_sampled(id, rules()->qc_percent);
  if (statements && t->is_ecg) r.statements = std::move(statements);
  std::vector<reading::TaskEvent> events;
  auto row = store_.add_report(
      r,
      [&](const std::string& status, std::int64_t claimed_by) -> Result<std::string> {
        auto current = parse_task_status(status);
        if (!current) return make_error(Errc::internal, "unknown task status " + status);
        auto next = after_report(*current, kind, claimed_by == p.user_id);
        if (!next.ok()) return next.error();
        return std::string(task_status_name(*next));
      },
      now(), &events);
  if (row.ok()) bus_.publish(events);
  return row;
}

Result<std::vector<reading::ReportRow>> ReadingQueue::reports(const Principal& p, std::int64_t id) {
  if (auto t = task(p, id); !t.ok()) return t.error();
  return store_.reports(id);
}

Result<std::vector<reading::TaskEvent>> ReadingQueue::events(const Principal& p, std::int64_t id) {
  if (auto t = task(p, id); !t.ok()) return t.error();
  return store_.events(id);
}

Result<std::vector<reading::PriorStudy>> ReadingQueue::priors(const Principal& p, std::int64_t id) {
  auto t = task(p, id);
  if (!t.ok()) return t.error();
  if (t->patient_id.empty()) return std::vector<reading::PriorStudy>{};
  auto person = pacs::person_at(index_, t->patient_id, t->institution_code, national_issuer_);
  if (!person.ok()) return person.error();
  auto all = store_.priors(id, person->institutions);
  if (!all.ok()) return all.error();
  // Matching by Patient ID + issuer is only a suggestion: a sender can type any identifier,
  // so a prior is shown only when the reader may read it in its own right.
  std::vector<reading::PriorStudy> visible;
  const std::string at = now();
  for (reading::PriorStudy& prior : *all) {
    auto ok = may_read_study(index_, p, prior.study_uid, at);
    if (!ok.ok()) return ok.error();
    if (*ok) visible.push_back(std::move(prior));
  }
  return visible;
}

Result<std::vector<reading::CriticalRow>> ReadingQueue::critical_results(const Principal& p,
                                                                         bool open_only) {
  if (!identity::has_clinical_role(p)) return std::vector<reading::CriticalRow>{};
  return store_.critical_results(open_only, own_institutions(p));
}

Status ReadingQueue::acknowledge_critical(const Principal& p, std::int64_t id) {
  if (!identity::has_clinical_role(p)) {
    return make_error(Errc::permission_denied, "only clinical users acknowledge results");
  }
  std::vector<reading::TaskEvent> events;
  Status s =
      store_.acknowledge_critical(id, own_institutions(p), p.user_id, p.username, now(), &events);
  if (s.ok()) bus_.publish(events);
  return s;
}

Status ReadingQueue::record_qc(const Principal& p, std::int64_t id, const std::string& agreement,
                               const std::string& comment) {
  if (!p.has(Role::qc_reviewer)) return make_error(Errc::permission_denied, "only QC reviewers");
  if (auto t = task(p, id); !t.ok()) return t.error();
  std::vector<reading::TaskEvent> events;
  Status s = store_.record_qc(id, p.user_id, p.username, agreement, comment, now(), &events);
  if (s.ok()) bus_.publish(events);
  return s;
}

bool ReadingQueue::overdue(const reading::TaskRow& t) const {
  return t.status != "final" && t.due_at < now();
}

bool ReadingQueue::near_due(const reading::TaskRow& t) const {
  if (t.status == "final" || overdue(t)) return false;
  auto due = storage::parse_iso8601(t.due_at);
  if (!due) return false;
  // A share of the time the task was given (its priority's target, or its own).
  auto received = storage::parse_iso8601(t.received_at).value_or(*due);
  auto window = std::chrono::duration_cast<std::chrono::milliseconds>((*due - received) *
                                                                      rules()->due_soon_fraction);
  return clock_() + window >= *due;
}

}  // namespace yilian::reading
