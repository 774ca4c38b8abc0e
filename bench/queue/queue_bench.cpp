// Reading-queue benchmark: N tasks in the embedded SQLite store (or a PostgreSQL database),
// R concurrent readers each looping claim-next -> final report, spread over one or several
// nodes (each node its own connections, store and queue, as separate `yilian serve`
// processes have). Reports claim-next latency percentiles and tasks/s, then how long a newly
// complete study takes to show in the worklist.
//
// Without --rate the readers claim as fast as they can (the queue's capacity; latency is then
// mostly waiting behind the other readers). With --rate, cycles start on a fixed schedule of
// that many per second in all, whoever is free takes the next, and latency counts from the
// scheduled start (a late start is part of it).
//
//   yilian_bench_queue [--tasks 1000000] [--readers 64] [--claims 20000] [--dir /tmp/x]
//                      [--database postgresql://...] [--nodes 2] [--rate 0]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "schema.h"
#include "yilian/identity/accounts.h"
#include "yilian/pacs/index.h"
#include "yilian/reading/queue_store.h"
#include "yilian/reading/reading_queue.h"

namespace fs = std::filesystem;
using namespace yilian;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
  return v[i];
}

int die(const Error& e) {
  std::fprintf(stderr, "error: %s\n", e.message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t tasks = 1'000'000;
  int readers = 64;
  int claims = 20'000;
  std::string dir = "/tmp/yilian-bench-queue";
  std::string database;
  int nodes = 1;
  double rate = 0;
  CLI::App app{"Reading queue benchmark"};
  app.add_option("--rate", rate, "Cycles started per second in all (0: as fast as possible)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tasks", tasks, "Tasks in the queue");
  app.add_option("--readers", readers, "Concurrent readers");
  app.add_option("--claims", claims, "Claim-next + final report cycles in all");
  app.add_option("--dir", dir, "Scratch directory (emptied)");
  app.add_option("--database", database, "A new, empty PostgreSQL database instead of SQLite");
  app.add_option("--nodes", nodes, "Nodes the readers are spread over (PostgreSQL)")
      ->check(CLI::Range(1, 16));
  CLI11_PARSE(app, argc, argv);
  if (database.empty()) nodes = 1;  // one process owns a SQLite file

  fs::remove_all(dir);
  fs::create_directories(dir);
  auto path = database.empty() ? (fs::path(dir) / "index.sqlite").string() : database;
  auto db = app::open_index_database(path);
  if (!db.ok()) return die(db.error());
  auto index = pacs::Index::open(**db);
  auto accounts = std::make_unique<identity::Accounts>(**db);
  auto store = std::make_unique<reading::QueueStore>(**db);
  identity::Accounts& acc = *accounts;
  for (auto [code, level] : {std::pair{"lead", "lead"}, std::pair{"ta", "township"}}) {
    if (auto r = acc.put_institution({0, code, code, level, "", {}, {}}); !r.ok())
      return die(r.error());
  }
  if (Status s = acc.add_reading_service({"lead", "ta", "imaging"}); !s) return die(s.error());
  std::int64_t ta = (*acc.find_institution("ta"))->id;

  // Studies: tasks are (study, service) pairs, so 100 services per study.
  const std::int64_t studies = std::max<std::int64_t>(1, (tasks + 99) / 100);
  auto t0 = Clock::now();
  {
    pacs::IndexBatch batch;
    for (std::int64_t s = 0; s < studies; ++s) {
      pacs::NewInstance in;
      std::string uid = "1.2.3." + std::to_string(s);
      in.blob_key = "k" + uid;
      in.size_bytes = 1;
      in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
      in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
      in.sop_instance_uid = uid + ".1.1";
      in.series_instance_uid = uid + ".1";
      in.study_instance_uid = uid;
      in.modality = "CT";
      in.patient_id = "P" + std::to_string(s);
      in.institution_id = ta;
      in.received_at = "2026-11-22T00:00:00.000Z";
      batch.instances.push_back(std::move(in));
    }
    if (Status s = index->commit(batch); !s) return die(s.error());
  }
  std::vector<reading::NewTask> rows;
  rows.reserve(static_cast<std::size_t>(tasks));
  for (std::int64_t i = 0; i < tasks; ++i) {
    reading::NewTask t;
    t.study_pk = 1 + i / 100;
    t.service = "s" + std::to_string(i % 100);
    t.institution_id = ta;
    t.modality = "CT";
    t.priority = static_cast<int>(i % 3);
    t.received_at = "2026-11-22T00:00:00.000Z";
    char due[32];  // in the future: the benchmark measures claiming, not escalation
    std::snprintf(due, sizeof due, "2099-11-22T%02d:%02d:00.000Z", static_cast<int>(i % 24),
                  static_cast<int>(i % 60));
    t.due_at = due;
    rows.push_back(std::move(t));
  }
  if (Status s = store->bulk_insert(rows, "2026-11-22T00:00:00.000Z"); !s) return die(s.error());
  rows.clear();
  std::printf("loaded %lld tasks over %lld studies in %.1f s\n", static_cast<long long>(tasks),
              static_cast<long long>(studies), ms(Clock::now() - t0) / 1000);

  std::vector<Principal> principals;
  for (int r = 0; r < readers; ++r) {
    identity::NewUser u;
    u.username = "reader" + std::to_string(r);
    u.institution_code = "lead";
    u.roles = 1u << static_cast<unsigned>(Role::radiologist);
    u.password_hash = "unused";
    auto made = acc.add_user(u, "2026-11-22T00:00:00.000Z");
    if (!made.ok()) return die(made.error());
    std::string token = "t" + std::to_string(r);
    (void)acc.create_session(token, made->id, "2026-11-22T00:00:00.000Z",
                             "2099-01-01T00:00:00.000Z", "");
    principals.push_back(**acc.session_principal(token, "2026-11-22T00:00:00.000Z"));
  }

  reading::EventBus bus;
  reading::QueueRules rules;
  rules.stable = std::chrono::milliseconds(200);
  reading::ReadingQueue queue(
      *store, *index, acc, rules, [] { return std::chrono::system_clock::now(); }, bus);
  // The other nodes: connections, stores and a queue of their own on the same database.
  struct Node {
    std::unique_ptr<storage::Database> db;
    std::unique_ptr<pacs::Index> index;
    std::unique_ptr<identity::Accounts> accounts;
    std::unique_ptr<reading::QueueStore> store;
    reading::EventBus bus;
    std::unique_ptr<reading::ReadingQueue> queue;
  };
  std::vector<std::unique_ptr<Node>> others;
  for (int n = 1; n < nodes; ++n) {
    auto node = std::make_unique<Node>();
    auto ndb = storage::Database::open(path);
    if (!ndb.ok()) return die(ndb.error());
    node->db = std::move(*ndb);
    node->index = pacs::Index::open(*node->db);
    node->accounts = std::make_unique<identity::Accounts>(*node->db);
    node->store = std::make_unique<reading::QueueStore>(*node->db);
    node->queue = std::make_unique<reading::ReadingQueue>(
        *node->store, *node->index, *node->accounts, rules,
        [] { return std::chrono::system_clock::now(); }, node->bus);
    others.push_back(std::move(node));
  }
  auto queue_of = [&](int reader) -> reading::ReadingQueue& {
    const int n = reader % nodes;
    return n == 0 ? queue : *others[static_cast<std::size_t>(n - 1)]->queue;
  };

  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(readers));
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r) {
    threads.emplace_back([&, r] {
      for (int i; (i = next++) < claims;) {
        auto c0 = Clock::now();
        if (rate > 0) {
          c0 = start +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(i / rate));
          std::this_thread::sleep_until(c0);
        }
        auto t = queue_of(r).claim_next(principals[static_cast<std::size_t>(r)]);
        lat[static_cast<std::size_t>(r)].push_back(ms(Clock::now() - c0));
        if (!t.ok() || !t->has_value()) {
          ++failures;
          continue;
        }
        auto rep = queue_of(r).report(principals[static_cast<std::size_t>(r)], (**t).id,
                                      reading::ReportKind::final, "findings", "impression", false);
        if (!rep.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  double secs = ms(Clock::now() - start) / 1000;
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::printf(
      "%d readers on %d node(s) (%s), %d claim-next + final report cycles in %.2f s: "
      "%.0f tasks/s (%s)\n",
      readers, nodes, database.empty() ? "SQLite" : "PostgreSQL", claims, secs, claims / secs,
      rate > 0 ? ("scheduled at " + std::to_string(static_cast<int>(rate)) + "/s").c_str()
               : "as fast as possible");
  std::printf("claim-next latency: p50 %.2f ms  p99 %.2f ms  max %.2f ms  (failures %d)\n",
              pct(all, 50), pct(all, 99), pct(all, 100), failures.load());

  // A new study: complete `stable` after its last instance; how long until its task is in
  // the worklist? The "routed" event is published after the task's row is committed.
  std::mutex seen_mu;
  std::condition_variable seen_cv;
  std::optional<Clock::time_point> routed_at;
  bus.subscribe([&](const reading::TaskEvent& e) {
    if (e.type != "routed") return;
    std::lock_guard lock(seen_mu);
    routed_at = Clock::now();
    seen_cv.notify_all();
  });
  if (Status s = queue.start(); !s) return die(s.error());
  std::vector<double> visible;
  for (int i = 0; i < 20; ++i) {
    std::string uid = "9.9.9." + std::to_string(i);
    pacs::NewInstance in;
    in.blob_key = "k" + uid;
    in.size_bytes = 1;
    in.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    in.sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
    in.sop_instance_uid = uid + ".1.1";
    in.series_instance_uid = uid + ".1";
    in.study_instance_uid = uid;
    in.modality = "CT";
    in.institution_id = ta;
    in.received_at = storage::now_utc_iso8601();
    pacs::IndexBatch b;
    b.instances.push_back(in);
    if (Status s = index->commit(b); !s) return die(s.error());
    {
      std::lock_guard lock(seen_mu);
      routed_at.reset();
    }
    auto touched = Clock::now();
    queue.studies_touched({uid});
    std::unique_lock lock(seen_mu);
    if (!seen_cv.wait_for(lock, std::chrono::seconds(5), [&] { return routed_at.has_value(); })) {
      std::fprintf(stderr, "study %s was not routed within 5 s\n", uid.c_str());
      return 1;
    }
    visible.push_back(ms(*routed_at - (touched + rules.stable)));
  }
  queue.stop();
  std::printf("new study -> task listed, after it became complete: p50 %.1f ms  max %.1f ms\n",
              pct(visible, 50), pct(visible, 100));
  fs::remove_all(dir);
  return failures.load() == 0 ? 0 : 1;
}
