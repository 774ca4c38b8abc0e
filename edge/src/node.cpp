#include "yilian/edge/node.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include <zstd.h>

#include <ctime>

#include "hub_client.h"
#include "yilian/edge/protocol.h"
#include "yilian/identity/crypto.h"
#include "yilian/pacs/dicom_file.h"
#include "yilian/storage/sql.h"

namespace yilian::edge {

namespace sql = storage::sql;
using nlohmann::json;

struct EdgeNode::Bundle {
  std::int64_t id = 0;
  std::string study_uid;
  int priority = 2;
  std::string file;
  std::uint64_t length = 0;
  std::string content_type;
  std::int64_t instances = 0;
  std::string upload_url;
  std::string encoding;  // kEncodingZstd, kEncodingZstdShuffle2 or empty
};

namespace {

constexpr const char* kTusHeader = "Tus-Resumable: 1.0.0";

bool is_ecg_class(std::string_view sop_class) {
  // Waveform storage: 12-lead, general and ambulatory ECG, and the other waveforms of 9.x.
  return sop_class.rfind("1.2.840.10008.5.1.4.1.1.9.", 0) == 0;
}

}  // namespace

EdgeNode::EdgeNode(storage::Database& db, pacs::Index& index, storage::BlobStore& blobs,
                   EdgeOptions options)
    : db_(db),
      index_(index),
      blobs_(blobs),
      options_(std::move(options)),
      rules_(std::make_shared<const reading::QueueRules>(options_.rules)) {
  chunk_size_ = options_.chunk_bytes;
}

EdgeNode::~EdgeNode() { stop(); }

void EdgeNode::studies_committed(const std::vector<std::string>& studies) {
  {
    std::lock_guard lock(mu_);
    pending_.insert(studies.begin(), studies.end());
  }
  cv_.notify_all();
}

Status EdgeNode::start() {
  std::error_code ec;
  std::filesystem::create_directories(options_.outbox_dir, ec);
  if (ec) return make_error(Errc::io, "cannot make " + options_.outbox_dir.string());
  // Every stored study: an instance stored just before a crash may not have been queued.
  auto institutions = index_.institutions();
  if (!institutions.ok()) return institutions.error();
  pacs::StudyScope everything;
  for (const auto& i : *institutions) everything.institutions.push_back(i.id);
  for (std::int64_t offset = 0;; offset += 500) {
    auto page = index_.list_studies(everything, 500, offset);
    if (!page.ok()) return page.error();
    for (const auto& s : page->studies) pending_.insert(s.study_instance_uid);
    if (page->studies.size() < 500) break;
  }
  // Bundle files no ready bundle refers to were being written when the edge stopped.
  std::set<std::string> referred;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db, "SELECT file FROM edge_bundles WHERE state = 'ready'", [](sql::Stmt&) {},
        [&](sql::Stmt& st) { referred.insert(st.text(0)); });
  });
  if (!s) return s;
  for (const auto& entry : std::filesystem::directory_iterator(options_.outbox_dir, ec)) {
    if (!referred.count(entry.path().string())) std::filesystem::remove(entry.path(), ec);
  }
  thread_ = std::thread([this] { run(); });
  builder_ = std::thread([this] { build_ahead(); });
  if (options_.ingest) priors_ = std::thread([this] { pull_priors_loop(); });
  return Status::Ok();
}

void EdgeNode::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  priors_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (builder_.joinable()) builder_.join();
  if (priors_.joinable()) priors_.join();
}

void EdgeNode::build_ahead() {
  // The next bundle is built while the current one is on the link, so the link does not wait
  // for the bundle's reading, compression and sync between two uploads.
  bool again = false;
  while (again || wait_for(std::chrono::milliseconds(250))) {
    again = false;
    std::lock_guard build(build_mu_);
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    if (!enqueue_pending()) continue;
    std::int64_t ready = 0;
    if (!storage::read(db_, [&](sql::Db& db) {
          return sql::query(
              db, "SELECT COUNT(*) FROM edge_bundles WHERE state = 'ready'", [](sql::Stmt&) {},
              [&](sql::Stmt& st) { ready = st.int64(0); });
        }))
      continue;
    if (ready >= 2) continue;  // the one on the link and the next
    auto built = build_bundle();
    if (!built.ok()) {
      spdlog::debug("edge: building ahead: {}", built.error().message);
      continue;
    }
    again = *built;
  }
}

bool EdgeNode::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

RoutineCap EdgeNode::current_routine_cap() const {
  const std::time_t t = std::chrono::system_clock::to_time_t(options_.clock());
  std::tm local{};
  localtime_r(&t, &local);
  return routine_cap(options_.routine_schedule, options_.routine_bytes_per_second,
                     local.tm_hour * 60 + local.tm_min);
}

void EdgeNode::set_error(const Error& e) {
  std::lock_guard lock(mu_);
  status_.link_up = false;
  status_.last_error = e.message;
}

EdgeStatus EdgeNode::status() const {
  EdgeStatus out;
  {
    std::lock_guard lock(mu_);
    out = status_;
  }
  out.routine_cap = current_routine_cap();
  (void)storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db, "SELECT state, COUNT(*) FROM edge_outbox GROUP BY state", [](sql::Stmt&) {},
        [&](sql::Stmt& st) {
          const std::string state = st.text(0);
          const auto n = static_cast<std::uint64_t>(st.int64(1));
          if (state == "queued") out.queued = n;
          if (state == "bundled") out.in_bundles = n;
          if (state == "sent") out.sent = n;
          if (state == "failed") out.failed = n;
        });
  });
  return out;
}

Result<std::vector<StudyProgress>> EdgeNode::queue() const {
  const EdgeStatus st = status();
  const std::string since = storage::to_iso8601(options_.clock() - std::chrono::hours(24));
  std::vector<StudyProgress> out;
  double wire_per_byte = 1;  // transport bytes per stored byte, from the bundles sent
  Status s = storage::read(db_, [&](sql::Db& db) -> Status {
    if (Status q = sql::query(
            db,
            // With the index's own row of each study (the same database), in one query.
            "SELECT o.study_uid, MIN(o.priority), COUNT(*), SUM(o.state = 'sent'), "
            "SUM(o.state = 'failed'), SUM(o.size_bytes), SUM(CASE WHEN o.state IN ('queued', "
            "'bundled') THEN o.size_bytes ELSE 0 END), MIN(o.queued_at), "
            "coalesce(MAX(o.sent_at), ''), EXISTS(SELECT 1 FROM edge_completions c WHERE "
            "c.study_uid = o.study_uid), coalesce(MAX(s.modalities), ''), "
            "coalesce(MAX(s.description), ''), coalesce(MAX(s.study_date), ''), "
            "coalesce(MAX(s.study_time), '') FROM edge_outbox o LEFT JOIN studies s ON "
            "s.study_uid = o.study_uid GROUP BY o.study_uid HAVING SUM(o.state <> 'sent') > 0 OR "
            "MAX(o.sent_at) >= ?1 ORDER BY SUM(o.state IN ('queued', 'bundled')) = 0, "
            "MIN(o.priority), MIN(o.queued_at), o.study_uid LIMIT 500",
            [&](sql::Stmt& q) { q.bind(1, since); },
            [&](sql::Stmt& q) {
              StudyProgress p;
              p.study_uid = q.text(0);
              p.priority = static_cast<int>(q.int64(1));
              p.instances = static_cast<std::uint64_t>(q.int64(2));
              p.sent = static_cast<std::uint64_t>(q.int64(3));
              p.failed = static_cast<std::uint64_t>(q.int64(4));
              p.bytes = static_cast<std::uint64_t>(q.int64(5));
              p.bytes_left = static_cast<std::uint64_t>(q.int64(6));
              p.queued_at = q.text(7);
              p.sent_at = q.text(8);
              p.complete = q.int64(9) != 0;
              p.modalities = q.text(10);
              p.description = q.text(11);
              p.study_date = q.text(12);
              p.study_time = q.text(13);
              out.push_back(std::move(p));
            });
        !q)
      return q;
    std::map<std::string, StudyProgress*> by_uid;
    for (auto& p : out) by_uid[p.study_uid] = &p;
    if (Status q = sql::query(
            db,
            "SELECT study_uid, sop_instance_uid, outcome FROM edge_outbox WHERE state = 'failed' "
            "ORDER BY study_uid, sort_key LIMIT 2000",
            [](sql::Stmt&) {},
            [&](sql::Stmt& q) {
              auto it = by_uid.find(q.text(0));
              if (it != by_uid.end() && it->second->failures.size() < 5)
                it->second->failures.push_back(q.text(1) + ": " + q.text(2));
            });
        !q)
      return q;
    return sql::query(
        db,
        "SELECT coalesce(SUM(b.length), 0), coalesce((SELECT SUM(size_bytes) FROM edge_outbox o "
        "WHERE o.bundle_id IN (SELECT id FROM edge_bundles WHERE state = 'done')), 0) FROM "
        "edge_bundles b WHERE b.state = 'done'",
        [](sql::Stmt&) {},
        [&](sql::Stmt& q) {
          if (q.int64(1) > 0)
            wire_per_byte = static_cast<double>(q.int64(0)) / static_cast<double>(q.int64(1));
        });
  });
  if (!s) return s.error();
  // Times to the hub, in sending order: a study's own bytes after those of the ones before it.
  if (st.link_up && st.bytes_per_second > 0) {
    double ahead = 0;
    for (StudyProgress& p : out) {
      if (p.bytes_left == 0) continue;
      if (p.priority > 0 && st.routine_cap.held) continue;
      double rate = st.bytes_per_second;
      if (p.priority > 0 && st.routine_cap.bytes_per_second > 0)
        rate = std::min(rate, static_cast<double>(st.routine_cap.bytes_per_second));
      ahead += static_cast<double>(p.bytes_left) * wire_per_byte;
      p.eta_seconds = ahead / rate;
    }
  }
  return out;
}

int EdgeNode::study_priority(const pacs::StudyDetail& study, const pacs::InstanceLocation& first) {
  if (is_ecg_class(first.sop_class_uid)) return 0;
  for (const auto& s : study.series) {
    if (s.modality == "ECG") return 0;
  }
  reading::StudyFacts facts;
  std::shared_ptr<const reading::QueueRules> rules;
  {
    std::lock_guard lock(mu_);
    rules = rules_;
    facts.institution = status_.institution;  // as the hub's rules name the clinic
  }
  facts.modalities = study.study.modalities;
  facts.description = study.study.study_description;
  for (const auto& s : study.series) {
    if (s.body_part.empty()) continue;
    facts.body_parts += (facts.body_parts.empty() ? "" : "\\") + s.body_part;
  }
  if (auto attrs = pacs::read_instance_attributes(blobs_.blob_path(first.blob_key)); attrs.ok()) {
    facts.procedure = attrs->procedure;
    facts.indication = attrs->indication;
    facts.requested_priority = attrs->requested_priority;
  }
  return static_cast<int>(reading::decide_priority(*rules, facts).priority);
}

Status EdgeNode::enqueue_study(const std::string& study_uid) {
  // A prior pulled from the hub is the hub's already.
  bool prior = false;
  if (Status s = storage::read(db_,
                               [&](sql::Db& db) {
                                 return sql::query(
                                     db, "SELECT 1 FROM edge_priors WHERE study_uid = ?1",
                                     [&](sql::Stmt& st) { st.bind(1, study_uid); },
                                     [&](sql::Stmt&) { prior = true; });
                               });
      !s)
    return s;
  if (prior) return Status::Ok();
  auto detail = index_.get_study(study_uid);
  if (!detail.ok()) return detail.error();
  if (!*detail) return Status::Ok();
  struct Row {
    std::string sop, key, sort_key;
    std::int64_t size = 0;
  };
  std::vector<Row> rows;
  std::optional<pacs::InstanceLocation> first;
  for (const auto& series : (*detail)->series) {
    auto instances = index_.series_instances(series.series_instance_uid);
    if (!instances.ok()) return instances.error();
    for (const auto& i : *instances) {
      if (!first) first = i;
      char sort[64];
      std::snprintf(sort, sizeof sort, "%010" PRId64 ".%010" PRId64 ".",
                    std::max<std::int64_t>(0, series.series_number.value_or(0)),
                    std::max<std::int64_t>(0, i.instance_number.value_or(0)));
      std::error_code ec;
      const auto size = std::filesystem::file_size(blobs_.blob_path(i.blob_key), ec);
      rows.push_back({i.sop_instance_uid, i.blob_key, sort + i.sop_instance_uid,
                      ec ? 0 : static_cast<std::int64_t>(size)});
    }
  }
  if (rows.empty()) return Status::Ok();
  const int priority = study_priority(**detail, *first);
  const std::string now = storage::to_iso8601(options_.clock());
  return storage::write(db_, [&](sql::Db& db) -> Status {
    int added = 0;
    for (const Row& r : rows) {
      int changed = 0;
      if (Status s = sql::run(
              db,
              "INSERT OR IGNORE INTO edge_outbox(sop_instance_uid, study_uid, blob_key, "
              "size_bytes, priority, sort_key, state, queued_at) "
              "VALUES(?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7)",
              [&](sql::Stmt& st) {
                st.bind(1, r.sop);
                st.bind(2, study_uid);
                st.bind(3, r.key);
                st.bind(4, r.size);
                st.bind(5, static_cast<std::int64_t>(priority));
                st.bind(6, r.sort_key);
                st.bind(7, now);
              },
              &changed);
          !s)
        return s;
      added += changed;
    }
    if (added == 0) return Status::Ok();
    // New instances of a study said complete: it is said again once they are sent.
    return sql::run(db, "DELETE FROM edge_completions WHERE study_uid = ?1",
                    [&](sql::Stmt& st) { st.bind(1, study_uid); });
  });
}

Status EdgeNode::enqueue_pending() {
  std::set<std::string> studies;
  {
    std::lock_guard lock(mu_);
    studies.swap(pending_);
  }
  for (auto it = studies.begin(); it != studies.end(); ++it) {
    if (Status s = enqueue_study(*it); !s) {
      std::lock_guard lock(mu_);
      pending_.insert(it, studies.end());  // tried again on the next turn
      return s;
    }
  }
  return Status::Ok();
}

Result<bool> EdgeNode::build_bundle() {
  std::string study;
  std::int64_t priority = 2;
  struct Item {
    std::string sop, key;
    std::int64_t size = 0;
  };
  std::vector<Item> items;
  Status s = storage::read(db_, [&](sql::Db& db) -> Status {
    if (Status q = sql::query(
            db,
            "SELECT study_uid, priority FROM edge_outbox WHERE state = 'queued' "
            "ORDER BY priority, queued_at, study_uid LIMIT 1",
            [](sql::Stmt&) {},
            [&](sql::Stmt& st) {
              study = st.text(0);
              priority = st.int64(1);
            });
        !q)
      return q;
    if (study.empty()) return Status::Ok();
    return sql::query(
        db,
        "SELECT sop_instance_uid, blob_key, size_bytes FROM edge_outbox "
        "WHERE state = 'queued' AND study_uid = ?1 ORDER BY sort_key",
        [&](sql::Stmt& st) { st.bind(1, study); },
        [&](sql::Stmt& st) {
          items.push_back({st.text(0), st.text(1), st.int64(2)});
        });
  });
  if (!s) return s.error();
  if (items.empty()) return false;
  std::vector<std::pair<Item, std::string>> parts;
  std::vector<std::pair<std::string, std::string>> unreadable;  // sop, why
  std::uint64_t bytes = 0;
  for (const Item& item : items) {
    if (parts.size() >= options_.bundle_instances) break;
    if (!parts.empty() && bytes + static_cast<std::uint64_t>(item.size) > options_.bundle_bytes)
      break;
    auto content = blobs_.read(item.key);
    if (!content.ok()) {
      unreadable.emplace_back(item.sop, content.error().message);
      continue;
    }
    bytes += content->size();
    parts.emplace_back(item, std::move(*content));
  }
  // The parts as they are, and byte-shuffled (16-bit pixels compress better so).
  std::vector<std::string> shuffled;
  shuffled.reserve(parts.size());
  for (const auto& p : parts) shuffled.push_back(shuffle2(p.second));
  std::string boundary;
  for (int attempt = 0; attempt < 8; ++attempt) {
    boundary = "yilian-edge-" + identity::random_hex(16);
    bool clash = false;
    for (std::size_t i = 0; i < parts.size() && !clash; ++i)
      clash = parts[i].second.find("--" + boundary) != std::string::npos ||
              shuffled[i].find("--" + boundary) != std::string::npos;
    if (!clash) break;
  }
  BundleWriter writer(boundary);
  auto frame = [&](auto part_bytes) {
    std::string out;
    out.reserve(bytes + parts.size() * 128 + 64);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      out += writer.part_head();
      out += part_bytes(i);
      out += BundleWriter::part_end();
    }
    out += writer.finish();
    return out;
  };
  std::string body = frame([&](std::size_t i) -> const std::string& { return parts[i].second; });
  // Lossless transport compression, zstd level 3 of the bundle as is or of its shuffled parts,
  // whichever is smaller: the hub gets the same bytes back. Kept only when it saves something
  // (already-compressed objects do not shrink).
  std::string encoding;
  if (!parts.empty()) {
    auto pack = [](const std::string& in) {
      std::string packed(ZSTD_compressBound(in.size()), '\0');
      const std::size_t n = ZSTD_compress(packed.data(), packed.size(), in.data(), in.size(), 3);
      packed.resize(ZSTD_isError(n) ? 0 : n);
      return packed;
    };
    std::string plain = pack(body);
    std::string mixed =
        pack(frame([&](std::size_t i) -> const std::string& { return shuffled[i]; }));
    const bool use_mixed = !mixed.empty() && (plain.empty() || mixed.size() < plain.size());
    std::string& best = use_mixed ? mixed : plain;
    if (!best.empty() && best.size() < body.size() - body.size() / 20) {
      body.swap(best);
      encoding = use_mixed ? kEncodingZstdShuffle2 : kEncodingZstd;
    }
  }
  const std::filesystem::path file =
      options_.outbox_dir / ("bundle-" + identity::random_hex(8) + ".part");
  if (!parts.empty()) {
    if (Status w = storage::write_file_durably(file, body); !w) return w.error();
  }
  const std::string now = storage::to_iso8601(options_.clock());
  Status w = storage::write(db_, [&](sql::Db& db) -> Status {
    for (const auto& entry : unreadable) {
      if (Status r = sql::run(db,
                              "UPDATE edge_outbox SET state = 'failed', outcome = ?2 "
                              "WHERE sop_instance_uid = ?1",
                              [&](sql::Stmt& st) {
                                st.bind(1, entry.first);
                                st.bind(2, "unreadable at the edge: " + entry.second);
                              });
          !r)
        return r;
    }
    if (parts.empty()) return Status::Ok();
    std::int64_t id = 0;
    if (Status r = sql::query(
            db,
            "INSERT INTO edge_bundles(study_uid, priority, file, length, content_type, "
            "encoding, instances, state, created_at) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?8, ?6, 'ready', ?7) RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, study);
              st.bind(2, priority);
              st.bind(3, file.string());
              st.bind(4, static_cast<std::int64_t>(body.size()));
              st.bind(5, writer.content_type());
              st.bind(6, static_cast<std::int64_t>(parts.size()));
              st.bind(7, now);
              st.bind(8, encoding);
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !r)
      return r;
    std::vector<std::string> uids;
    for (const auto& p : parts) uids.push_back(p.first.sop);
    return sql::run(db,
                    "UPDATE edge_outbox SET state = 'bundled', bundle_id = ?1 "
                    "WHERE sop_instance_uid IN (" +
                        sql::text_list(uids) + ")",
                    [&](sql::Stmt& st) { st.bind(1, id); });
  });
  if (!w) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
    return w.error();
  }
  return true;
}

Result<std::optional<EdgeNode::Bundle>> EdgeNode::next_bundle() {
  std::optional<Bundle> out;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT id, study_uid, priority, file, length, content_type, instances, upload_url, "
        "encoding FROM edge_bundles WHERE state = 'ready' ORDER BY priority, id LIMIT 1",
        [](sql::Stmt&) {},
        [&](sql::Stmt& st) {
          Bundle b;
          b.id = st.int64(0);
          b.study_uid = st.text(1);
          b.priority = static_cast<int>(st.int64(2));
          b.file = st.text(3);
          b.length = static_cast<std::uint64_t>(st.int64(4));
          b.content_type = st.text(5);
          b.instances = st.int64(6);
          b.upload_url = st.text(7);
          b.encoding = st.text(8);
          out = std::move(b);
        });
  });
  if (!s) return s.error();
  return out;
}

bool EdgeNode::urgent_waiting(int than_priority) {
  if (Status s = enqueue_pending(); !s) return false;
  bool found = false;
  (void)storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT 1 FROM edge_outbox WHERE state = 'queued' AND priority < ?1 UNION ALL "
        "SELECT 1 FROM edge_bundles WHERE state = 'ready' AND priority < ?1 LIMIT 1",
        [&](sql::Stmt& st) { st.bind(1, static_cast<std::int64_t>(than_priority)); },
        [&](sql::Stmt&) { found = true; });
  });
  return found;
}

Result<bool> EdgeNode::send(Bundle& b) {
  HubClient& hub = *client_;
  std::uint64_t offset = 0;
  const int fd = ::open(b.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::io, "the bundle file " + b.file + " is gone");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::string chunk;
  if (b.upload_url.empty()) {
    std::map<std::string, std::string> pairs = {{"content-type", b.content_type},
                                                {"study", b.study_uid},
                                                {"instances", std::to_string(b.instances)},
                                                {"priority", std::to_string(b.priority)}};
    if (!b.encoding.empty()) pairs["encoding"] = b.encoding;
    const std::string meta = format_metadata(pairs);
    // The first chunk goes with the creation (tus creation-with-upload): a round trip less per
    // bundle, and an ECG's bundle is created and stored in one request. Unless the routine
    // schedule holds it back now: then only the creation.
    const bool held = b.priority > 0 && current_routine_cap().held;
    const std::uint64_t first = held ? 0 : std::min<std::uint64_t>(chunk_size_, b.length);
    chunk.resize(first);
    if (first > 0 && ::pread(fd, chunk.data(), first, 0) != static_cast<ssize_t>(first))
      return make_error(Errc::io, "cannot read the bundle file " + b.file);
    std::vector<std::string> headers = {kTusHeader, "Upload-Length: " + std::to_string(b.length),
                                        "Upload-Metadata: " + meta};
    if (first > 0) headers.push_back("Content-Type: application/offset+octet-stream");
    auto r = hub.call("POST", "/api/edge/v1/uploads", headers, chunk);
    if (!r.ok()) return r.error();
    if (r->status != 201 || r->header("location").empty()) return hub_error(*r);
    b.upload_url = r->header("location");
    if (auto at = parse_size(r->header("upload-offset"), b.length)) {
      offset = *at;
      std::lock_guard lock(mu_);
      status_.bytes_sent += offset;
    }
    if (Status s = storage::write(db_,
                                  [&](sql::Db& db) {
                                    return sql::run(
                                        db, "UPDATE edge_bundles SET upload_url = ?2 WHERE id = ?1",
                                        [&](sql::Stmt& st) {
                                          st.bind(1, b.id);
                                          st.bind(2, b.upload_url);
                                        });
                                  });
        !s)
      return s.error();
  } else {
    auto r = hub.call("HEAD", b.upload_url, {kTusHeader});
    if (!r.ok()) return r.error();
    if (r->status == 404) {
      // The hub no longer has it (its data were reset): the bundle is sent again whole.
      spdlog::warn("edge: the hub lost upload {}; sending the bundle again", b.upload_url);
      if (Status s = storage::write(
              db_,
              [&](sql::Db& db) {
                return sql::run(db, "UPDATE edge_bundles SET upload_url = '' WHERE id = ?1",
                                [&](sql::Stmt& st) { st.bind(1, b.id); });
              });
          !s)
        return s.error();
      return false;
    }
    if (r->status != 200) return hub_error(*r);
    auto at = parse_size(r->header("upload-offset"), b.length);
    if (!at) return make_error(Errc::internal, "the hub's Upload-Offset is not one");
    offset = *at;
    if (offset > 0) {
      std::lock_guard lock(mu_);
      ++status_.resumes;
    }
  }
  {
    std::lock_guard lock(mu_);
    status_.link_up = true;
    status_.current_study = b.study_uid;
    status_.current_priority = b.priority;
    status_.current_offset = offset;
    status_.current_length = b.length;
  }
  const auto started = std::chrono::steady_clock::now();
  std::uint64_t sent_here = 0;
  while (offset < b.length) {
    if (b.priority > 0 && urgent_waiting(b.priority)) {
      std::lock_guard lock(mu_);
      ++status_.preempted;
      return false;
    }
    RoutineCap cap;
    if (b.priority > 0) {
      cap = current_routine_cap();
      if (cap.held) {
        // The schedule holds routine traffic now; a STAT object still goes at once (above).
        if (!wait_for(std::chrono::seconds(1))) return false;
        continue;
      }
    }
    std::uint64_t n = std::min<std::uint64_t>(chunk_size_, b.length - offset);
    // Under a cap a chunk is at most a second of it, so that pacing never holds a STAT object
    // back longer than that.
    if (cap.bytes_per_second > 0)
      n = std::min<std::uint64_t>(n, std::max<std::uint64_t>(cap.bytes_per_second, 16u << 10));
    const auto chunk_started = std::chrono::steady_clock::now();
    chunk.resize(n);
    if (::pread(fd, chunk.data(), n, static_cast<off_t>(offset)) != static_cast<ssize_t>(n))
      return make_error(Errc::io, "cannot read the bundle file " + b.file);
    auto r = hub.call("PATCH", b.upload_url,
                      {kTusHeader, "Upload-Offset: " + std::to_string(offset),
                       "Content-Type: application/offset+octet-stream"},
                      chunk);
    if (!r.ok()) {
      chunk_size_ = options_.chunk_bytes;  // the link failed: measured afresh
      return r.error();
    }
    if (r->status != 204 && r->status != 409) return hub_error(*r);
    // 409: the hub holds another offset than this edge thought (an answer lost in a cut).
    auto at = parse_size(r->header("upload-offset"), b.length);
    if (!at) return make_error(Errc::internal, "the hub's Upload-Offset is not one");
    if (r->status == 204) {
      sent_here += n;
      // About a second of what this chunk achieved, round trip included.
      const double took =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - chunk_started).count();
      if (took > 0) {
        chunk_size_ = std::clamp<std::uint64_t>(
            static_cast<std::uint64_t>(static_cast<double>(n) / took), options_.chunk_bytes,
            std::max(options_.chunk_bytes, options_.max_chunk_bytes));
      }
    }
    offset = *at;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    {
      std::lock_guard lock(mu_);
      status_.link_up = true;
      status_.current_offset = offset;
      status_.bytes_sent += r->status == 204 ? n : 0;
      if (elapsed > 0) status_.bytes_per_second = static_cast<double>(sent_here) / elapsed;
    }
    if (cap.bytes_per_second > 0) {
      // Paced chunk by chunk (the cap may change with the time of day); a STAT object waiting
      // ends the pause.
      const auto until =
          chunk_started +
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
              std::chrono::duration<double>(static_cast<double>(n) /
                                            static_cast<double>(cap.bytes_per_second)));
      while (std::chrono::steady_clock::now() < until && !urgent_waiting(b.priority)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (!wait_for(
                std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(200))))
          return false;
      }
    }
  }
  auto r = hub.call("GET", b.upload_url, {kTusHeader});
  if (!r.ok()) return r.error();
  if (r->status != 200) return hub_error(*r);
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || j.value("state", "") != "stored")
    return make_error(Errc::unavailable, "the hub has not stored the upload yet");
  if (Status s = finish(b, r->body); !s) return s.error();
  return true;
}

Status EdgeNode::finish(const Bundle& b, const std::string& results_json) {
  std::map<std::string, std::pair<std::string, std::string>> outcome;  // sop -> status, why
  auto j = json::parse(results_json, nullptr, false);
  if (j.is_object() && j.contains("results") && j["results"].is_array()) {
    for (const auto& item : j["results"]) {
      if (!item.is_object()) continue;
      outcome[item.value("sopInstanceUid", "")] = {item.value("status", ""),
                                                   item.value("message", "")};
    }
  }
  std::vector<std::string> sops;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db, "SELECT sop_instance_uid FROM edge_outbox WHERE bundle_id = ?1",
        [&](sql::Stmt& st) { st.bind(1, b.id); },
        [&](sql::Stmt& st) { sops.push_back(st.text(0)); });
  });
  if (!s) return s;
  const std::string now = storage::to_iso8601(options_.clock());
  std::uint64_t failed = 0;
  s = storage::write(db_, [&](sql::Db& db) -> Status {
    for (const std::string& sop : sops) {
      auto it = outcome.find(sop);
      const std::string status = it == outcome.end() ? "missing" : it->second.first;
      const std::string why = it == outcome.end() ? "not in the hub's answer" : it->second.second;
      const char* q =
          status == "stored" || status == "duplicate" || status == "conflict"
              ? "UPDATE edge_outbox SET state = 'sent', outcome = ?2, sent_at = ?3 "
                "WHERE sop_instance_uid = ?1"
          : status == "failed"
              // The hub could not store it (its disk, a shutdown): queued again.
              ? "UPDATE edge_outbox SET state = 'queued', bundle_id = NULL, outcome = ?2 "
                "WHERE sop_instance_uid = ?1 AND ?3 <> ''"
              : "UPDATE edge_outbox SET state = 'failed', outcome = ?2 WHERE sop_instance_uid = ?1 "
                "AND ?3 <> ''";
      if (status != "stored" && status != "duplicate" && status != "conflict") ++failed;
      if (Status r = sql::run(db, q,
                              [&](sql::Stmt& st) {
                                st.bind(1, sop);
                                st.bind(2, why.empty() ? status : status + ": " + why);
                                st.bind(3, now);
                              });
          !r)
        return r;
    }
    return sql::run(db,
                    "UPDATE edge_bundles SET state = 'done', sent = length, done_at = ?2 "
                    "WHERE id = ?1",
                    [&](sql::Stmt& st) {
                      st.bind(1, b.id);
                      st.bind(2, now);
                    });
  });
  if (!s) return s;
  std::error_code ec;
  std::filesystem::remove(b.file, ec);
  std::lock_guard lock(mu_);
  ++status_.bundles_sent;
  status_.current_study.clear();
  status_.current_offset = status_.current_length = 0;
  if (failed > 0) {
    status_.last_error = std::to_string(failed) + " instances of study " + b.study_uid +
                         " were not stored by the hub (see the queue)";
  }
  return Status::Ok();
}

Status EdgeNode::announce_complete() {
  std::vector<std::string> studies;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT study_uid FROM edge_outbox o WHERE NOT EXISTS(SELECT 1 FROM edge_completions c "
        "WHERE c.study_uid = o.study_uid) GROUP BY study_uid "
        "HAVING SUM(CASE WHEN state IN ('queued', 'bundled') THEN 1 ELSE 0 END) = 0 "
        "AND SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) > 0",
        [](sql::Stmt&) {}, [&](sql::Stmt& st) { studies.push_back(st.text(0)); });
  });
  if (!s) return s;
  const auto now = options_.clock();
  for (const std::string& uid : studies) {
    auto detail = index_.get_study(uid);
    if (!detail.ok()) return detail.error();
    if (!*detail) continue;
    auto last = storage::parse_iso8601((*detail)->study.last_received_at);
    if (last && now - *last < options_.stable) continue;
    auto r = client_->call("POST", "/api/edge/v1/studies/" + uid + "/complete", {}, "");
    if (!r.ok()) return r.error();
    if (r->status >= 500) return hub_error(*r);
    if (r->status != 200) spdlog::warn("edge: study {} complete: {}", uid, reason_of(*r));
    if (Status w = storage::write(
            db_,
            [&](sql::Db& db) {
              return sql::run(db,
                              "INSERT OR IGNORE INTO edge_completions(study_uid, sent_at) "
                              "VALUES(?1, ?2)",
                              [&](sql::Stmt& st) {
                                st.bind(1, uid);
                                st.bind(2, storage::to_iso8601(now));
                              });
            });
        !w)
      return w;
  }
  return Status::Ok();
}

void EdgeNode::run() {
  client_ =
      std::make_unique<HubClient>(options_.hub_url, options_.credential, options_.hub_ca_file);
  std::chrono::milliseconds backoff{250};
  bool known = false;  // the hub has told who this edge is
  auto next_sync = std::chrono::steady_clock::now();
  auto next_purge = next_sync;
  auto failed = [&](const Error& e) {
    set_error(e);
    spdlog::warn("edge: {}", e.message);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    return wait_for(backoff);
  };
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    if (!known) {
      auto r = client_->call("GET", "/api/edge/v1/whoami", {});
      if (!r.ok() || r->status != 200) {
        if (!failed(r.ok() ? hub_error(*r) : r.error())) break;
        continue;
      }
      auto j = json::parse(r->body, nullptr, false);
      std::lock_guard lock(mu_);
      status_.institution = j.is_object() ? j.value("institution", "") : "";
      status_.link_up = true;
      status_.last_error.clear();
      known = true;
    }
    // The back channel, every sync period (and at once after an acknowledgement made here).
    // Its failures do not hold the uploads back: they are shown, and tried again next period.
    if (const auto now = std::chrono::steady_clock::now();
        now >= next_sync || sync_now_.exchange(false)) {
      next_sync = now + options_.sync_period;
      if (Status s = sync_back_channel(*client_); !s) {
        set_error(s.error());
        spdlog::warn("edge: back channel: {}", s.error().message);
      }
    }
    // Studies kept past their days leave the edge (checked a few times per kept period, at
    // most hourly).
    if (const auto now = std::chrono::steady_clock::now(); now >= next_purge) {
      next_purge =
          now + std::min<std::chrono::milliseconds>(
                    std::chrono::hours(1), std::chrono::milliseconds(static_cast<std::int64_t>(
                                               std::max(options_.keep_days, 1e-6) * 8'640'000.0)));
      if (auto purged = purge_expired(); !purged.ok())
        spdlog::warn("edge: removing studies kept past their days: {}", purged.error().message);
    }
    std::unique_lock build(build_mu_);
    if (Status s = enqueue_pending(); !s) {
      build.unlock();
      if (!failed(s.error())) break;
      continue;
    }
    auto top = next_bundle();
    if (!top.ok()) {
      build.unlock();
      if (!failed(top.error())) break;
      continue;
    }
    std::optional<int> queued;
    (void)storage::read(db_, [&](sql::Db& db) {
      return sql::query(
          db, "SELECT MIN(priority) FROM edge_outbox WHERE state = 'queued'", [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            if (!st.is_null(0)) queued = static_cast<int>(st.int64(0));
          });
    });
    if (queued && (!*top || *queued < (*top)->priority)) {
      auto built = build_bundle();
      if (!built.ok()) {
        build.unlock();
        if (!failed(built.error())) break;
        continue;
      }
      top = next_bundle();
      if (!top.ok()) continue;
    }
    build.unlock();
    if (!*top) {
      if (Status s = announce_complete(); !s) {
        if (!failed(s.error())) break;
        continue;
      }
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500),
                   [this] { return stopping_ || !pending_.empty() || sync_now_; });
      continue;
    }
    auto sent = send(**top);
    if (!sent.ok()) {
      if (sent.error().code == Errc::permission_denied) known = false;
      if (!failed(sent.error())) break;
      continue;
    }
    backoff = std::chrono::milliseconds(250);
    {
      std::lock_guard lock(mu_);
      status_.link_up = true;
    }
  }
  client_.reset();
}

}  // namespace yilian::edge
