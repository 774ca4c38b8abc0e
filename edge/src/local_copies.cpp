// What the clinic keeps at the edge besides its outbound queue: the priors of a patient pulled
// from the hub on a doctor's request (GET /api/edge/v1/priors), and the retention of sent
// studies and pulled priors for EdgeOptions::keep_days.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "hub_client.h"
#include "yilian/common/text.h"
#include "yilian/edge/node.h"
#include "yilian/edge/protocol.h"
#include "yilian/pacs/dicomweb.h"
#include "yilian/storage/sql.h"

namespace yilian::edge {

using nlohmann::json;
namespace sql = storage::sql;

namespace {

const std::string kTus = "Tus-Resumable: " + std::string(kTusVersion);

// RFC 3986 percent-encoding of a query value.
std::string query_escape(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A file mapped read-only, for as long as this lives.
class MappedFile {
 public:
  static Result<MappedFile> open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "cannot open " + path.string());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return make_error(Errc::io, "cannot stat " + path.string());
    }
    MappedFile m;
    m.size_ = static_cast<std::size_t>(st.st_size);
    if (m.size_ > 0) {
      void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return make_error(Errc::io, "cannot map " + path.string());
      }
      m.data_ = static_cast<const char*>(p);
    }
    ::close(fd);
    return m;
  }
  MappedFile(MappedFile&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(o.size_) {}
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  std::string_view bytes() const { return {data_ ? data_ : "", size_}; }

 private:
  MappedFile() = default;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

Status set_request_state(storage::Database& db, std::int64_t id, const std::string& state,
                         std::int64_t studies, std::int64_t instances, const std::string& detail,
                         const std::string& now) {
  return storage::write(db, [&](sql::Db& c) {
    return sql::run(c,
                    "UPDATE edge_prior_requests SET state = ?2, studies = ?3, instances = ?4, "
                    "detail = ?5, done_at = CASE WHEN ?2 IN ('done', 'failed') THEN ?6 ELSE NULL "
                    "END WHERE id = ?1",
                    [&](sql::Stmt& st) {
                      st.bind(1, id);
                      st.bind(2, state);
                      st.bind(3, studies);
                      st.bind(4, instances);
                      st.bind(5, detail);
                      st.bind(6, now);
                    });
  });
}

}  // namespace

Result<std::int64_t> EdgeNode::request_priors(const std::string& patient_id,
                                              const std::string& username) {
  if (!plain_patient_id(patient_id))
    return make_error(Errc::invalid_argument, "patientId must be one patient ID (no wildcards)");
  if (!options_.ingest) return make_error(Errc::unavailable, "this edge stores no priors");
  std::int64_t id = 0;
  const std::string now = storage::to_iso8601(options_.clock());
  Status s = storage::write(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "INSERT INTO edge_prior_requests(patient_id, requested_by, state, requested_at) "
        "VALUES(?1, ?2, 'queued', ?3) RETURNING id",
        [&](sql::Stmt& st) {
          st.bind(1, patient_id);
          st.bind(2, username);
          st.bind(3, now);
        },
        [&](sql::Stmt& st) { id = st.int64(0); });
  });
  if (!s) return s.error();
  priors_cv_.notify_all();
  return id;
}

Result<std::vector<PriorRequest>> EdgeNode::prior_requests() const {
  std::vector<PriorRequest> out;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT id, patient_id, requested_by, state, studies, instances, detail, requested_at, "
        "coalesce(done_at, '') FROM edge_prior_requests ORDER BY id DESC LIMIT 100",
        [](sql::Stmt&) {},
        [&](sql::Stmt& st) {
          PriorRequest r;
          r.id = st.int64(0);
          r.patient_id = st.text(1);
          r.requested_by = st.text(2);
          r.state = st.text(3);
          r.studies = st.int64(4);
          r.instances = st.int64(5);
          r.detail = st.text(6);
          r.requested_at = st.text(7);
          r.done_at = st.text(8);
          out.push_back(std::move(r));
        });
  });
  if (!s) return s.error();
  if (out.empty()) return out;
  // Their studies, in one query (the requests are the newest, ids from out.back() up).
  std::map<std::int64_t, PriorRequest*> by_id;
  for (PriorRequest& r : out) by_id[r.id] = &r;
  s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT request_id, study_uid FROM edge_priors WHERE request_id >= ?1 "
        "ORDER BY request_id, study_uid",
        [&](sql::Stmt& st) { st.bind(1, out.back().id); },
        [&](sql::Stmt& st) {
          if (auto it = by_id.find(st.int64(0)); it != by_id.end())
            it->second->study_uids.push_back(st.text(1));
        });
  });
  if (!s) return s.error();
  return out;
}

void EdgeNode::pull_priors_loop() {
  HubClient hub(options_.hub_url, options_.credential, options_.hub_ca_file);
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
    }
    // The oldest request not done (one left 'pulling' by a stop is taken up again).
    std::optional<PriorRequest> next;
    (void)storage::read(db_, [&](sql::Db& db) {
      return sql::query(
          db,
          "SELECT id, patient_id, requested_by FROM edge_prior_requests WHERE state IN "
          "('queued', 'pulling') ORDER BY id LIMIT 1",
          [](sql::Stmt&) {},
          [&](sql::Stmt& st) {
            next = PriorRequest{};
            next->id = st.int64(0);
            next->patient_id = st.text(1);
            next->requested_by = st.text(2);
          });
    });
    if (!next) {
      std::unique_lock lock(mu_);
      priors_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_; });
      continue;
    }
    Status s = pull_priors(hub, *next);
    if (!s) {
      // The link: tried again a little later. Anything else (refused, no such patient for this
      // doctor): the request fails with the hub's reason, for the doctor to see.
      if (s.error().code == Errc::unavailable) {
        std::unique_lock lock(mu_);
        priors_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_; });
        continue;
      }
      spdlog::warn("edge: priors of {} for {}: {}", next->patient_id, next->requested_by,
                   s.error().message);
      (void)set_request_state(db_, next->id, "failed", 0, 0, s.error().message,
                              storage::to_iso8601(options_.clock()));
    }
  }
}

Status EdgeNode::pull_priors(HubClient& hub, const PriorRequest& req) {
  const std::string by = "&by=" + query_escape(req.requested_by);
  auto list =
      hub.call("GET", "/api/edge/v1/priors?patientId=" + query_escape(req.patient_id) + by, {kTus});
  if (!list.ok()) return list.error();
  if (list->status != 200) return hub_error(*list);
  auto j = json::parse(list->body, nullptr, false);
  if (!j.is_object() || !j.contains("studies") || !j["studies"].is_array())
    return make_error(Errc::unavailable, "the hub's list of priors is not JSON");
  if (Status s = set_request_state(db_, req.id, "pulling", 0, 0, "",
                                   storage::to_iso8601(options_.clock()));
      !s)
    return s;
  std::int64_t studies = 0, instances = 0;
  std::vector<std::string> problems;
  for (const json& study : j["studies"]) {
    if (!study.is_object() || !study.contains("studyInstanceUid") ||
        !study["studyInstanceUid"].is_string())
      continue;
    const std::string uid = study["studyInstanceUid"].get<std::string>();
    if (uid.empty() || uid.size() > 64) continue;
    // Here already: the clinic's own (sent from here), or pulled before.
    auto here = index_.get_study(uid);
    if (!here.ok()) return here.error();
    if (*here) {
      const std::string now = storage::to_iso8601(options_.clock());
      if (Status s = storage::write(db_,
                                    [&](sql::Db& db) {
                                      return sql::run(
                                          db,
                                          "UPDATE edge_priors SET request_id = ?2, pulled_at = ?3 "
                                          "WHERE study_uid = ?1",
                                          [&](sql::Stmt& st) {
                                            st.bind(1, uid);
                                            st.bind(2, req.id);
                                            st.bind(3, now);
                                          });
                                    });
          !s)
        return s;
      ++studies;
      continue;
    }
    // Into a file (a prior CT is hundreds of MB), then read in place (mapped).
    const std::filesystem::path file =
        options_.outbox_dir / ("prior-" + std::to_string(req.id) + ".part");
    struct Remove {
      std::filesystem::path path;
      ~Remove() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
      }
    } remove_file{file};
    auto r = hub.download("/api/edge/v1/priors/" + query_escape(uid) + "?" + by.substr(1), {kTus},
                          file, kMaxPriorBytes + (64u << 20));  // the study, and its headers
    if (!r.ok()) return r.error();
    if (r->status != 200) {
      problems.push_back(uid + ": " + hub_error(*r).message);
      continue;
    }
    auto mapped = MappedFile::open(file);
    if (!mapped.ok()) return mapped.error();
    auto parts = pacs::split_multipart(r->header("content-type"), mapped->bytes());
    if (!parts.ok()) {
      problems.push_back(uid + ": " + parts.error().message);
      continue;
    }
    // Recorded as a prior before it is stored, so that it is never queued back to the hub.
    const std::string now = storage::to_iso8601(options_.clock());
    if (Status s = storage::write(
            db_,
            [&](sql::Db& db) {
              return sql::run(db,
                              "INSERT INTO edge_priors(study_uid, patient_id, request_id, "
                              "pulled_at) VALUES(?1, ?2, ?3, ?4) ON CONFLICT(study_uid) DO "
                              "UPDATE SET request_id = excluded.request_id, pulled_at = "
                              "excluded.pulled_at",
                              [&](sql::Stmt& st) {
                                st.bind(1, uid);
                                st.bind(2, req.patient_id);
                                st.bind(3, req.id);
                                st.bind(4, now);
                              });
            });
        !s)
      return s;
    std::int64_t stored = 0;
    for (const pacs::BodyPart& part : *parts) {
      const pacs::IngestOutcome o = options_.ingest(part.bytes);
      if (o.status == pacs::IngestStatus::stored || o.status == pacs::IngestStatus::duplicate) {
        ++stored;
      } else if (problems.size() < 5) {
        problems.push_back(o.sop_instance_uid + ": " + o.message);
      }
    }
    instances += stored;
    ++studies;
  }
  std::string detail =
      std::to_string(studies) + " studies, " + std::to_string(instances) + " instances pulled";
  for (const std::string& p : problems) detail += "; " + p;
  spdlog::info("edge: priors of {} for {}: {}", req.patient_id, req.requested_by, detail);
  return set_request_state(db_, req.id, "done", studies, instances, detail,
                           storage::to_iso8601(options_.clock()));
}

Result<std::size_t> EdgeNode::purge_expired() {
  if (options_.keep_days <= 0) return std::size_t{0};
  const auto cutoff =
      options_.clock() - std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::duration<double>(options_.keep_days * 86400.0));
  const std::string before = storage::to_iso8601(cutoff);
  // Sent studies: every instance at the hub, the hub told the study is complete, the last sent
  // before the cutoff. Pulled priors: pulled (or asked for again) before it.
  std::vector<std::string> studies;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT o.study_uid FROM edge_outbox o JOIN edge_completions c ON c.study_uid = "
        "o.study_uid GROUP BY o.study_uid HAVING SUM(o.state <> 'sent') = 0 AND "
        "MAX(o.sent_at) < ?1 UNION SELECT study_uid FROM edge_priors WHERE pulled_at < ?1",
        [&](sql::Stmt& st) { st.bind(1, before); },
        [&](sql::Stmt& st) { studies.push_back(st.text(0)); });
  });
  if (!s) return s.error();
  std::size_t removed = 0;
  for (const std::string& uid : studies) {
    std::lock_guard build(build_mu_);  // not while a bundle of it could be built
    auto detail = index_.get_study(uid);
    if (!detail.ok()) return detail.error();
    std::vector<std::string> keys;
    if (*detail) {
      for (const auto& series : (*detail)->series) {
        auto instances = index_.series_instances(series.series_instance_uid);
        if (!instances.ok()) return instances.error();
        for (const auto& i : *instances) keys.push_back(i.blob_key);
      }
    }
    // The index first, so nothing refers to a file that is gone; then the files.
    if (Status r = index_.remove_blob_references(keys); !r) return r.error();
    for (const std::string& k : keys) (void)blobs_.remove_blob(k);
    if (Status w = storage::write(
            db_,
            [&](sql::Db& db) -> Status {
              for (const char* q : {"DELETE FROM edge_outbox WHERE study_uid = ?1",
                                    "DELETE FROM edge_completions WHERE study_uid = ?1",
                                    "DELETE FROM edge_priors WHERE study_uid = ?1"}) {
                if (Status d = sql::run(db, q, [&](sql::Stmt& st) { st.bind(1, uid); }); !d)
                  return d;
              }
              return Status::Ok();
            });
        !w)
      return w.error();
    ++removed;
    spdlog::info("edge: study {} removed after {} days kept", uid, options_.keep_days);
  }
  return removed;
}

}  // namespace yilian::edge
