// The reading queue over a real index in a temp directory: tasks from complete studies,
// claim order, leases, concurrency, the report flow, critical results, escalation, priors.
#include "yilian/reading/reading_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "test_db.h"
#include "test_util.h"
#include "yilian/identity/accounts.h"

namespace yilian::reading {
namespace {

using namespace std::chrono_literals;

class ReadingQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = dir_.path() / "index.sqlite";
    db_ = testing::index_database(path);
    index_ = pacs::Index::open(*db_);
    accounts_ = std::make_unique<identity::Accounts>(*db_);
    store_ = std::make_unique<reading::QueueStore>(*db_);
    for (auto [code, level] :
         {std::pair{"lead", "lead"}, std::pair{"ta", "township"}, std::pair{"tb", "township"}}) {
      ASSERT_TRUE(accounts_->put_institution({0, code, code, level, "", {}, {}}).ok());
    }
    ASSERT_TRUE(accounts_->add_reading_service({"lead", "ta", "imaging"}).ok());
    ASSERT_TRUE(accounts_->add_reading_service({"lead", "ta", "ecg"}).ok());
    add_user("rad1", Role::radiologist, "lead");
    add_user("rad2", Role::radiologist, "lead");
    add_user("ecg1", Role::ecg_reader, "lead");
    add_user("doc-a", Role::township_doctor, "ta");
    add_user("doc-b", Role::township_doctor, "tb");
    add_user("qc", Role::qc_reviewer, "lead");
    add_user("path1", Role::pathologist, "lead");
    rules_.stable = 2min;
    rules_.routes = {{"neuro", {{"CT"}, {"HEAD"}, {}, {}}}};
    rules_.priority_rules = {{Priority::stat, "stroke", {{}, {}, {}, {"stroke"}}}};
    rules_.qc_percent = 100;
    queue_ = std::make_unique<ReadingQueue>(
        *store_, *index_, *accounts_, rules_, [this] { return now_.load(); }, bus_, "CN-ID");
    bus_.subscribe([this](const reading::TaskEvent& e) {
      std::lock_guard lock(seen_mu_);
      seen_.push_back(e.type);
    });
  }

  void add_user(const std::string& name, Role role, const std::string& inst) {
    identity::NewUser u;
    u.username = name;
    u.institution_code = inst;
    u.roles = 1u << static_cast<unsigned>(role);
    u.password_hash = "unused";
    ASSERT_TRUE(accounts_->add_user(u, "2026-11-22T00:00:00.000Z").ok());
  }

  Principal who(const std::string& name) {
    auto u = accounts_->find_user(name);
    std::string token = "token-" + name;
    EXPECT_TRUE(accounts_
                    ->create_session(token, (*u)->id, "2026-01-01T00:00:00.000Z",
                                     "2099-01-01T00:00:00.000Z", "")
                    .ok() ||
                true);
    auto p = accounts_->session_principal(token, "2026-11-22T00:00:00.000Z");
    return **p;
  }

  std::int64_t inst(const std::string& code) { return (*accounts_->find_institution(code))->id; }

  // Stores one instance of a new study and returns its UID.
  std::string study(const std::string& inst_code, const std::string& modality,
                    const std::string& body_part, const std::string& description = {},
                    const std::string& received = "2026-11-22T08:00:00.000Z",
                    const std::string& patient = "P1", const std::string& issuer = "") {
    std::string uid = "1.2.9." + std::to_string(++counter_);
    pacs::NewInstance in;
    in.blob_key = "k" + uid;
    in.size_bytes = 1;
    in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
    in.sop_instance_uid = uid + ".1.1";
    in.series_instance_uid = uid + ".1";
    in.study_instance_uid = uid;
    in.modality = modality;
    in.body_part = body_part;
    in.study_description = description;
    in.patient_id = patient;
    in.issuer_of_patient_id = issuer;
    in.institution_id = inst(inst_code);
    in.received_at = received;
    pacs::IndexBatch b;
    b.instances.push_back(in);
    EXPECT_TRUE(index_->commit(b).ok());
    return uid;
  }

  std::int64_t task_for(const std::string& uid) {
    auto ids = queue_->study_complete(uid);
    EXPECT_TRUE(ids.ok()) << (ids.ok() ? "" : ids.error().message);
    return ids.ok() ? ids->front() : 0;
  }

  testing::TempDir dir_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<pacs::Index> index_;
  std::unique_ptr<identity::Accounts> accounts_;
  std::unique_ptr<reading::QueueStore> store_;
  QueueRules rules_;
  EventBus bus_;
  std::unique_ptr<ReadingQueue> queue_;
  std::atomic<storage::TimePoint> now_{*storage::parse_iso8601("2026-11-22T08:05:00Z")};
  int counter_ = 0;
  std::mutex seen_mu_;
  std::vector<std::string> seen_;
};

TEST_F(ReadingQueueTest, a_study_becomes_one_task_once_no_instance_arrived_for_the_stable_time) {
  ASSERT_TRUE(queue_->start().ok());  // the watcher thread
  // Received now: the watcher's first sweep (studies a restart left without a task, those
  // received before the stable time) must not take it, whenever that sweep runs.
  std::string uid = study("ta", "CT", "HEAD", "suspected stroke", storage::to_iso8601(now_.load()));
  auto waiting = [&] { return queue_->worklist(who("rad1"), {})->second; };
  queue_->studies_touched({uid});  // as the ingest committer does
  now_ = now_.load() + 90s;
  queue_->studies_touched({uid});  // another instance within the stable time
  now_ = now_.load() + 90s;        // 3 min after the first, 90 s after the last
  queue_->wake();
  EXPECT_EQ(waiting(), 0);   // the last instance is 90 s old: not complete yet
  now_ = now_.load() + 31s;  // the stable time has passed since the last instance
  queue_->wake();
  // Bounded wait (5 s) for the watcher.
  std::optional<reading::TaskRow> task;
  for (int i = 0; i < 500 && !task; ++i) {
    auto page = queue_->worklist(who("rad1"), {});
    ASSERT_TRUE(page.ok());
    if (!page->first.empty()) task = page->first.front();
    if (!task) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->study_uid, uid);
  EXPECT_EQ(task->service, "neuro");
  EXPECT_EQ(task->priority, static_cast<int>(Priority::stat));
  EXPECT_EQ(task->priority_reason, "stroke");
  EXPECT_EQ(task->due_at, "2026-11-22T08:35:00.000Z");  // received (08:05) + 30 min
  // More instances later update the same task.
  queue_->studies_touched({uid});
  ASSERT_TRUE(queue_->study_complete(uid).ok());
  auto page = queue_->worklist(who("rad1"), {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->second, 1);
  queue_->stop();
  auto events = queue_->events(who("rad1"), task->id);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> types;
  for (const auto& e : *events) types.push_back(e.type);
  ASSERT_GE(types.size(), 3u);
  EXPECT_EQ(types[0], "received");
  EXPECT_EQ(types[1], "routed");
  EXPECT_EQ(types[2], "updated");
}

TEST_F(ReadingQueueTest, studies_left_without_a_task_by_a_restart_are_routed_at_start) {
  std::string waiting = study("ta", "DX", "CHEST", "", "2026-11-22T08:00:00.000Z");
  std::string too_new = study("ta", "DX", "CHEST", "", "2026-11-22T08:04:59.990Z");
  ASSERT_TRUE(queue_->start().ok());  // the watcher routes them first
  auto page = queue_->worklist(who("rad1"), {});
  for (int i = 0; i < 500 && page.ok() && page->second == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    page = queue_->worklist(who("rad1"), {});
  }
  queue_->stop();
  page = queue_->worklist(who("rad1"), {});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->second, 1);  // the other one is still within its stable time
  EXPECT_EQ(page->first.front().study_uid, waiting);
  // An uploader may say a study is complete, if they may see it.
  EXPECT_EQ(queue_->study_complete(who("doc-b"), too_new).error().code, Errc::permission_denied);
  auto ids = queue_->study_complete(who("doc-a"), too_new);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(queue_->worklist(who("rad1"), {})->second, 2);
}

// The township doctor's clinical question travels with the study: readers see it on the task,
// and the priority rules read it (a stroke question makes a head CT STAT).
TEST_F(ReadingQueueTest, the_senders_clinical_question_is_shown_and_read_by_the_rules) {
  std::string uid = study("ta", "CT", "HEAD", "", "2026-11-22T08:04:59.990Z");
  const std::string question = "Sudden left weakness for 1 h, stroke?";
  EXPECT_EQ(queue_->study_complete(who("rad1"), uid, question).error().code,
            Errc::permission_denied);  // not the requesting institution's clinician
  auto ids = queue_->study_complete(who("doc-a"), uid, question);
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  ASSERT_EQ(ids->size(), 1u);
  auto t = store_->task(ids->front());
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->clinical_question, question);
  EXPECT_EQ((*t)->priority, static_cast<int>(Priority::stat));
  EXPECT_EQ((*t)->priority_reason, "stroke");
}

// A suspected STEMI found by the ECG analysis: the task is born STAT (never seen as routine,
// even for a moment), or an existing task is raised; either way one "emergency" event follows.
TEST_F(ReadingQueueTest, an_emergency_routes_the_study_as_stat_in_one_step) {
  std::string fresh = study("ta", "ECG", "", "", "2026-11-22T08:04:00.000Z");
  auto ids = queue_->flag_emergency(fresh, "suspected STEMI: inferior");
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  ASSERT_EQ(ids->size(), 1u);
  auto events = queue_->events(who("ecg1"), ids->front());
  ASSERT_TRUE(events.ok());
  ASSERT_GE(events->size(), 2u);
  EXPECT_EQ((*events)[1].type, "routed");
  EXPECT_NE((*events)[1].detail.find("priority 0 (suspected STEMI: inferior)"), std::string::npos)
      << (*events)[1].detail;
  auto page = queue_->worklist(who("ecg1"), {});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->second, 1);
  const reading::TaskRow& t = page->first.front();
  EXPECT_EQ(t.priority, static_cast<int>(Priority::stat));
  EXPECT_EQ(t.priority_reason, "suspected STEMI: inferior");
  EXPECT_EQ(t.due_at, "2026-11-22T08:34:00.000Z");  // received + the STAT SLA
  {
    std::lock_guard lock(seen_mu_);
    EXPECT_EQ(std::count(seen_.begin(), seen_.end(), "emergency"), 1);
  }

  // A routine task already in the queue is raised in place.
  std::string routine = study("ta", "ECG", "", "", "2026-11-22T08:00:00.000Z");
  std::int64_t id = task_for(routine);
  ASSERT_EQ(queue_->worklist(who("ecg1"), {})->second, 2);
  auto again = queue_->flag_emergency(routine, "suspected STEMI: anterior");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->front(), id);
  auto raised = store_->task(id);
  ASSERT_TRUE(raised.ok() && raised->has_value());
  EXPECT_EQ((*raised)->priority, static_cast<int>(Priority::stat));
  EXPECT_EQ((*raised)->priority_reason, "suspected STEMI: anterior");
  EXPECT_EQ((*raised)->due_at, "2026-11-22T08:30:00.000Z");
  std::lock_guard lock(seen_mu_);
  EXPECT_EQ(std::count(seen_.begin(), seen_.end(), "emergency"), 2);
}

TEST_F(ReadingQueueTest, a_stat_study_still_arriving_gets_its_task_at_once_and_others_wait) {
  auto seen = [this](const std::string& type) {
    std::lock_guard lock(seen_mu_);
    return std::count(seen_.begin(), seen_.end(), type);
  };
  // A routine study arriving from an edge waits for its completion.
  std::string routine = study("ta", "CT", "CHEST");
  auto none = queue_->study_arriving(routine);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(queue_->worklist(who("rad1"), {})->second, 0);

  // A head CT for a suspected stroke is routed with its first instance, marked arriving.
  std::string stroke = study("ta", "CT", "HEAD", "CT HEAD suspected stroke");
  auto ids = queue_->study_arriving(stroke);
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  ASSERT_EQ(ids->size(), 1u);
  auto t = store_->task(ids->front());
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_TRUE((*t)->arriving);
  EXPECT_EQ((*t)->instances, 1);
  EXPECT_EQ((*t)->priority, static_cast<int>(Priority::stat));
  EXPECT_EQ((*t)->status, "queued");  // a reader can claim and open it now
  EXPECT_EQ(seen("instances"), 0);

  // More instances: the same task, its screens told (an event not stored with the task).
  auto again = queue_->study_arriving(stroke);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *ids);
  EXPECT_EQ(seen("instances"), 1);
  const auto stored = queue_->events(who("rad1"), ids->front());
  ASSERT_TRUE(stored.ok());
  for (const auto& e : *stored) EXPECT_NE(e.type, "instances");

  // The stable-time routing leaves it arriving; the sender's "complete" ends that.
  ASSERT_TRUE(queue_->study_complete(stroke).ok());
  EXPECT_TRUE((*store_->task(ids->front()))->arriving);
  ASSERT_TRUE(queue_->route_now(stroke).ok());
  EXPECT_FALSE((*store_->task(ids->front()))->arriving);
  auto events = queue_->events(who("rad1"), ids->front());
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().detail, "all instances arrived");
  // Once arrived, more calls do nothing.
  auto after = queue_->study_arriving(stroke);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

// A routine study an edge node is sending is not routed by its stable time (a link down
// mid-study would send a reader half a CT), but when the edge says it is complete, or after
// the edge's long wait with no word.
TEST_F(ReadingQueueTest,
       a_routine_study_from_an_edge_waits_for_the_edges_word_not_its_stable_time) {
  ASSERT_TRUE(queue_->start().ok());
  const std::string at = storage::to_iso8601(now_.load());
  const std::string from_edge = study("ta", "CT", "CHEST", "", at);
  const std::string by_storescu = study("ta", "DX", "CHEST", "", at);
  auto tasks = [&] { return queue_->worklist(who("rad1"), {})->second; };
  auto wait_for_tasks = [&](std::int64_t n) {  // bounded (5 s) wait for the watcher
    for (int i = 0; i < 500 && tasks() < n; ++i) std::this_thread::sleep_for(10ms);
    return tasks();
  };
  queue_->studies_touched({from_edge, by_storescu});  // as the ingest committer does
  ASSERT_TRUE(queue_->study_arriving(from_edge).ok());
  // Past the stable time of both: the other study is routed, the edge's waits.
  now_ = now_.load() + 10min;
  queue_->wake();
  ASSERT_EQ(wait_for_tasks(1), 1);
  auto page = queue_->worklist(who("rad1"), {});
  ASSERT_EQ(page->first.size(), 1u);
  EXPECT_EQ(page->first.front().study_uid, by_storescu);
  // Another bundle (the committer first, then the upload service), still no routing; the
  // edge's word routes it.
  queue_->studies_touched({from_edge});
  ASSERT_TRUE(queue_->study_arriving(from_edge).ok());
  now_ = now_.load() + 10min;
  queue_->wake();
  ASSERT_TRUE(queue_->study_complete(by_storescu).ok());  // a call through the same lock
  EXPECT_EQ(tasks(), 1);
  ASSERT_TRUE(queue_->route_now(from_edge).ok());
  EXPECT_EQ(tasks(), 2);

  // An edge that never says so: routed once the edge's wait has passed since its last bundle.
  const std::string abandoned = study("ta", "CT", "CHEST", "", storage::to_iso8601(now_.load()));
  queue_->studies_touched({abandoned});
  ASSERT_TRUE(queue_->study_arriving(abandoned).ok());
  now_ = now_.load() + rules_.edge_complete_wait - 1min;
  queue_->wake();
  now_ = now_.load() + 2min;
  queue_->wake();
  EXPECT_EQ(wait_for_tasks(3), 3);
  queue_->stop();
}

TEST_F(ReadingQueueTest, claim_next_takes_priority_then_due_time_then_arrival) {
  std::int64_t routine_old = task_for(study("ta", "DX", "CHEST", "", "2026-11-22T07:00:00.000Z"));
  std::int64_t routine_new = task_for(study("ta", "DX", "CHEST", "", "2026-11-22T07:30:00.000Z"));
  std::int64_t stat = task_for(study("ta", "CT", "HEAD", "stroke", "2026-11-22T08:00:00.000Z"));
  std::int64_t ecg = task_for(study("ta", "ECG", "", "", "2026-11-22T06:00:00.000Z"));
  std::int64_t other = task_for(study("tb", "DX", "CHEST", "", "2026-11-22T05:00:00.000Z"));
  Principal rad = who("rad1");
  std::vector<std::int64_t> order;
  while (true) {
    auto t = queue_->claim_next(rad);
    ASSERT_TRUE(t.ok());
    if (!t->has_value()) break;
    order.push_back((*t)->id);
  }
  // The radiologist gets imaging of township A only: not the ECG, not township B.
  EXPECT_EQ(order, (std::vector<std::int64_t>{stat, routine_old, routine_new}));
  auto e = queue_->claim_next(who("ecg1"));
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->id, ecg);
  auto none = queue_->claim_next(who("doc-a"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::permission_denied);
  // Township B's study is not visible to the lead's readers at all.
  EXPECT_EQ(queue_->task(rad, other).error().code, Errc::permission_denied);
}

// The pathology centre's slides are the pathologists' to read, everything else the
// radiologists': in what each claims, claims by id and sees on the worklist. QC reviewers see
// both.
TEST_F(ReadingQueueTest, slides_go_to_pathologists_and_other_imaging_to_radiologists) {
  const std::int64_t ct = task_for(study("ta", "CT", "CHEST"));
  const std::int64_t slide = task_for(study("ta", "SM", "", "frozen section"));
  Principal rad = who("rad1"), path = who("path1");
  auto ids = [](const std::vector<reading::TaskRow>& rows) {
    std::vector<std::int64_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    std::sort(out.begin(), out.end());
    return out;
  };
  auto seen = [&](const Principal& p) {
    auto w = queue_->worklist(p, {});
    EXPECT_TRUE(w.ok());
    return w.ok() ? ids(w->first) : std::vector<std::int64_t>{};
  };
  EXPECT_EQ(seen(rad), std::vector<std::int64_t>{ct});
  EXPECT_EQ(seen(path), std::vector<std::int64_t>{slide});
  EXPECT_EQ(seen(who("qc")), (std::vector<std::int64_t>{ct, slide}));
  // By id: a radiologist cannot take the slide, a pathologist cannot take the CT.
  auto refused = queue_->claim(rad, slide);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::permission_denied);
  EXPECT_FALSE(queue_->claim(path, ct).ok());
  // Next: each gets their own.
  auto p = queue_->claim_next(path);
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->id, slide);
  EXPECT_EQ((*p)->service, reading::kPathologyService);
  auto r = queue_->claim_next(rad);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->id, ct);
  auto none = queue_->claim_next(path);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(ReadingQueueTest, an_abandoned_claim_expires_and_returns_to_the_queue) {
  std::int64_t id = task_for(study("ta", "DX", "CHEST"));
  auto first = queue_->claim_next(who("rad1"));
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_FALSE(queue_->claim(who("rad2"), id).ok());  // held
  ASSERT_TRUE(queue_->claim_next(who("rad2")).ok());
  EXPECT_FALSE(queue_->claim_next(who("rad2"))->has_value());
  now_ = now_.load() + 200s;
  ASSERT_TRUE(queue_->heartbeat(who("rad1"), id).ok());  // lease renewed to +300 s
  now_ = now_.load() + 200s;
  EXPECT_FALSE(queue_->claim_next(who("rad2"))->has_value());
  now_ = now_.load() + 301s;  // no heartbeat: abandoned
  auto second = queue_->claim_next(who("rad2"));
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->id, id);
  EXPECT_EQ((*second)->claimed_by_name, "rad2");
  EXPECT_FALSE(queue_->heartbeat(who("rad1"), id).ok());
  EXPECT_FALSE(queue_->release(who("rad1"), id).ok());
  EXPECT_TRUE(queue_->release(who("rad2"), id).ok());
  EXPECT_TRUE(queue_->reassign(who("rad2"), id, "rad1", "neuro follow-up").ok());
  EXPECT_EQ(queue_->task(who("rad1"), id)->claimed_by_name, "rad1");
  EXPECT_FALSE(queue_->reassign(who("rad2"), id, "rad1", "").ok());  // a reason is required
}

TEST_F(ReadingQueueTest, concurrent_claims_never_hand_one_task_to_two_readers) {
  constexpr int kTasks = 300, kThreads = 12;
  for (int i = 0; i < kTasks; ++i) task_for(study("ta", "DX", "CHEST"));
  std::vector<Principal> readers;
  for (int t = 0; t < kThreads; ++t) {
    std::string name = "r" + std::to_string(t);
    add_user(name, Role::radiologist, "lead");
    readers.push_back(who(name));
  }
  std::mutex mu;
  std::vector<std::int64_t> claimed;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kTasks; ++n) {  // bounded
        auto r = queue_->claim_next(readers[t]);
        if (!r.ok()) {
          ++errors;
          return;
        }
        if (!r->has_value()) return;
        std::lock_guard lock(mu);
        claimed.push_back((*r)->id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<std::int64_t> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kTasks));
  EXPECT_EQ(unique.size(), claimed.size());
}

TEST_F(ReadingQueueTest, reports_are_versioned_final_is_immutable_and_critical_results_need_ack) {
  std::int64_t id = task_for(study("ta", "CT", "HEAD"));
  Principal rad = who("rad1");
  EXPECT_EQ(queue_->report(rad, id, ReportKind::draft, "f", "", false).error().code,
            Errc::conflict);  // not claimed
  ASSERT_TRUE(queue_->claim(rad, id).ok());
  EXPECT_EQ(queue_->report(who("rad2"), id, ReportKind::draft, "f", "", false).error().code,
            Errc::conflict);  // not the holder
  ASSERT_TRUE(queue_->report(rad, id, ReportKind::draft, "draft text", "", false).ok());
  EXPECT_EQ(queue_->report(rad, id, ReportKind::final, "x", "", false).error().code,
            Errc::invalid_argument);  // a signed report needs an impression
  ASSERT_TRUE(queue_->report(rad, id, ReportKind::preliminary, "bleed", "ICH", true).ok());
  auto fin = queue_->report(rad, id, ReportKind::final, "bleed 2 cm", "acute ICH", true);
  ASSERT_TRUE(fin.ok()) << fin.error().message;
  EXPECT_EQ(fin->version, 3);
  auto again = queue_->report(rad, id, ReportKind::final, "changed", "changed", false);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message, "the report is final; only addenda may be added");
  ASSERT_TRUE(
      queue_->report(who("rad2"), id, ReportKind::addendum, "", "also: old infarct", false).ok());
  auto reports = queue_->reports(rad, id);
  ASSERT_TRUE(reports.ok());
  ASSERT_EQ(reports->size(), 4u);
  EXPECT_EQ((*reports)[2].kind, "final");
  EXPECT_EQ((*reports)[2].impression, "acute ICH");
  EXPECT_EQ((*reports)[3].kind, "addendum");
  EXPECT_EQ(queue_->task(rad, id)->status, "final");

  // Two critical results (preliminary and final) went to township A.
  auto open = queue_->critical_results(who("doc-a"), true);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->size(), 2u);
  EXPECT_TRUE(queue_->critical_results(who("doc-b"), true)->empty());
  std::int64_t cid = open->front().id;
  EXPECT_FALSE(queue_->acknowledge_critical(who("doc-b"), cid).ok());
  ASSERT_TRUE(queue_->acknowledge_critical(who("doc-a"), cid).ok());
  EXPECT_FALSE(queue_->acknowledge_critical(who("doc-a"), cid).ok());  // once
  EXPECT_EQ(queue_->critical_results(who("doc-a"), true)->size(), 1u);

  // The other one escalates once the acknowledgement window has passed.
  now_ = now_.load() + 31min;
  ASSERT_TRUE(queue_->escalate_now().ok());
  auto events = queue_->events(rad, id);
  ASSERT_TRUE(events.ok());
  std::multiset<std::string> types;
  for (const auto& e : *events) types.insert(e.type);
  EXPECT_EQ(types.count("critical_sent"), 2u);
  EXPECT_EQ(types.count("critical_acknowledged"), 1u);
  EXPECT_EQ(types.count("critical_escalated"), 1u);
  EXPECT_EQ(types.count("finalised"), 1u);
  EXPECT_EQ(types.count("addendum"), 1u);
  EXPECT_EQ(types.count("qc"), 1u);  // qc_percent = 100 in this test

  // QC second reading.
  EXPECT_FALSE(queue_->record_qc(rad, id, "agree", "").ok());  // not a QC reviewer
  EXPECT_FALSE(queue_->record_qc(who("qc"), id, "perfect", "").ok());
  EXPECT_TRUE(queue_->record_qc(who("qc"), id, "minor", "size under-measured").ok());
  EXPECT_FALSE(queue_->record_qc(who("qc"), id, "agree", "").ok());  // already reviewed
  {
    std::lock_guard lock(seen_mu_);
    EXPECT_NE(std::find(seen_.begin(), seen_.end(), "critical_sent"), seen_.end());
  }
}

TEST_F(ReadingQueueTest, overdue_tasks_escalate_once_and_priority_can_be_raised_with_a_reason) {
  std::int64_t id = task_for(study("ta", "DX", "CHEST", "", "2026-11-22T08:00:00.000Z"));
  auto t = queue_->task(who("rad1"), id);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(queue_->overdue(*t));
  EXPECT_FALSE(queue_->near_due(*t));
  now_ = *storage::parse_iso8601("2026-11-23T03:00:00Z");  // 19 h in: within the last 25 %
  EXPECT_TRUE(queue_->near_due(*queue_->task(who("rad1"), id)));
  EXPECT_FALSE(queue_->raise_priority(who("doc-a"), id, Priority::urgent, "").ok());
  ASSERT_TRUE(queue_->raise_priority(who("doc-a"), id, Priority::urgent, "patient worsening").ok());
  t = queue_->task(who("rad1"), id);
  EXPECT_EQ(t->priority, static_cast<int>(Priority::urgent));
  EXPECT_EQ(t->due_at, "2026-11-22T10:00:00.000Z");
  EXPECT_TRUE(queue_->overdue(*t));
  EXPECT_FALSE(queue_->raise_priority(who("doc-a"), id, Priority::routine, "lower").ok());
  EXPECT_FALSE(queue_->raise_priority(who("doc-b"), id, Priority::stat, "not mine").ok());
  ASSERT_TRUE(queue_->escalate_now().ok());
  ASSERT_TRUE(queue_->escalate_now().ok());
  auto events = queue_->events(who("rad1"), id);
  int escalations = 0;
  for (const auto& e : *events) escalations += e.type == "escalated" ? 1 : 0;
  EXPECT_EQ(escalations, 1);
  reading::WorklistFilter overdue;
  overdue.overdue = true;
  EXPECT_EQ(queue_->worklist(who("rad1"), overdue)->second, 1);
}

TEST_F(ReadingQueueTest, priors_come_from_every_member_institution_for_the_same_person) {
  std::string old_a = study("ta", "CT", "HEAD", "", "2026-10-01T08:00:00.000Z", "P77", "");
  std::string old_b =
      study("tb", "CT", "HEAD", "", "2026-09-01T08:00:00.000Z", "110101199001011234", "CN-ID");
  std::string unrelated = study("tb", "CT", "HEAD", "", "2026-09-01T08:00:00.000Z", "P77", "");
  (void)unrelated;
  // The same township A patient, identified by the national ID this time.
  std::string now_a =
      study("ta", "CT", "HEAD", "", "2026-11-22T08:00:00.000Z", "110101199001011234", "CN-ID");
  std::int64_t id = task_for(now_a);
  // The lead does not read township B yet: its study matches, but is not shown — an
  // identifier is only a suggestion, never a grant of access.
  auto hidden = queue_->priors(who("rad1"), id);
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  EXPECT_TRUE(hidden->empty());
  ASSERT_TRUE(accounts_->add_reading_service({"lead", "tb", "imaging"}).ok());
  auto priors = queue_->priors(who("rad1"), id);
  ASSERT_TRUE(priors.ok()) << priors.error().message;
  std::set<std::string> uids;
  for (const auto& p : *priors) uids.insert(p.study_uid);
  EXPECT_EQ(uids, (std::set<std::string>{old_b}));
  std::int64_t first = task_for(old_a);
  auto none = queue_->priors(who("rad1"), first);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());  // P77 at township B is another person
}

// The issuer a device sends is not trusted across members (many fill it with their software's
// name): only the consortium's national issuer makes one person of two members' records, the
// same rule as the patient's record. Within one member the ID is the person's, whatever issuer.
TEST_F(ReadingQueueTest, priors_follow_the_patient_record_rule_not_the_senders_issuer) {
  ASSERT_TRUE(accounts_->add_reading_service({"lead", "tb", "imaging"}).ok());
  std::string same_member =
      study("ta", "CT", "HEAD", "", "2026-10-01T08:00:00.000Z", "P88", "TA-PACS");
  std::string other_person =
      study("tb", "CT", "HEAD", "", "2026-09-01T08:00:00.000Z", "P88", "HIS");
  std::string now_a = study("ta", "CT", "HEAD", "", "2026-11-22T08:00:00.000Z", "P88", "HIS");
  auto priors = queue_->priors(who("rad1"), task_for(now_a));
  ASSERT_TRUE(priors.ok()) << priors.error().message;
  std::set<std::string> uids;
  for (const auto& p : *priors) uids.insert(p.study_uid);
  EXPECT_EQ(uids, (std::set<std::string>{same_member}));
  EXPECT_FALSE(uids.count(other_person));
}

}  // namespace
}  // namespace yilian::reading
