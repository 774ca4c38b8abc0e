#include "yilian/edge/uploads.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <zstd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "yilian/common/text.h"
#include "yilian/edge/protocol.h"
#include "yilian/identity/crypto.h"
#include "yilian/identity/rest.h"
#include "yilian/pacs/dicomweb.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/sql.h"

namespace yilian::edge {

using http::Request;
using http::Response;
using nlohmann::json;
namespace sql = storage::sql;

struct UploadRow {
  std::string id;
  std::int64_t institution_id = 0, user_id = 0;
  std::uint64_t length = 0, received = 0;
  std::string content_type, encoding, state, result, created_at;
};

class UploadService {
 public:
  UploadService(storage::Database& db, pacs::Ingestor& ingestor, identity::AuthService& auth,
                UploadServiceOptions options)
      : db_(db), ingestor_(ingestor), auth_(auth), options_(std::move(options)) {}

  Response create(const Request& req);
  Response head(const Request& req);
  Response patch(const Request& req);
  // The request's body written at `offset` of upload `id` (a PATCH, or the first chunk of a
  // creation-with-upload): 204 with the new Upload-Offset, or the error answer.
  Response write_chunk(const Request& req, const std::string& id, std::uint64_t offset);
  Response status(const Request& req);
  // GET /api/admin/edge-transfers: each edge node's uploads as the hub holds them.
  Response transfers(const Request& req);
  // Drops the unfinished uploads untouched for longer than the expiry (their rows, then their
  // files) and upload files the index does not know that are as old; at most hourly unless
  // `now` is asked for. Returns how many went.
  std::size_t expire(bool now = false);

 private:
  // When an upload touched at `at` (ISO 8601) expires, as an HTTP date.
  std::string expires_header(const std::string& at) const;
  std::filesystem::path file_of(const std::string& id) const {
    return options_.dir / (id + ".part");
  }
  // The upload `id` of the request's edge node (another node's is not found).
  Result<std::optional<UploadRow>> find(const Request& req, const std::string& id);
  // Appends `bytes` at `offset` of the upload's file and syncs it.
  Status append(const std::string& id, std::uint64_t offset, std::string_view bytes);
  // Ingests the whole bundle; the outcome of every instance, as JSON.
  Result<json> ingest(const Request& req, const UploadRow& row);
  std::shared_ptr<std::mutex> lock_of(const std::string& id);

  storage::Database& db_;
  pacs::Ingestor& ingestor_;
  identity::AuthService& auth_;
  UploadServiceOptions options_;
  std::mutex locks_mu_;
  std::map<std::string, std::weak_ptr<std::mutex>> locks_;  // one PATCH at a time per upload
  std::mutex expire_mu_;
  std::optional<storage::TimePoint> last_expired_;
};

namespace {

// Largest bundle once the edge's transport compression is undone.
constexpr unsigned long long kMaxUnpackedBytes = 1ull << 30;

Response tus(Response r) {
  r.headers.emplace_back("Tus-Resumable", std::string(kTusVersion));
  return r;
}

Response tus_error(int status, std::string_view message) {
  return tus(Response::error(status, message));
}

bool edge_principal(const Request& req) {
  return req.principal && req.principal->username.rfind(identity::kEdgeUserPrefix, 0) == 0;
}

std::string edge_name(const Principal& p) {
  return p.username.substr(identity::kEdgeUserPrefix.size());
}

Status write_all(int fd, std::string_view bytes, std::uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errno == ENOSPC ? Errc::out_of_space : Errc::io,
                        std::string("writing an upload: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return Status::Ok();
}

// RFC 9110's IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(storage::TimePoint t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

}  // namespace

std::string UploadService::expires_header(const std::string& at) const {
  auto t = storage::parse_iso8601(at);
  return http_date((t ? *t : std::chrono::system_clock::now()) + options_.expiry);
}

std::size_t UploadService::expire(bool now) {
  std::lock_guard guard(expire_mu_);
  const auto clock = storage::parse_iso8601(auth_.now());
  if (!clock) return 0;
  if (!now && last_expired_ && *clock - *last_expired_ < std::chrono::hours(1)) return 0;
  last_expired_ = *clock;
  const auto cutoff_at = *clock - options_.expiry;
  const std::string cutoff = storage::to_iso8601(cutoff_at);
  std::vector<std::string> stale;
  std::set<std::string> known;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db, "SELECT id, state, updated_at FROM edge_uploads", [](sql::Stmt&) {},
        [&](sql::Stmt& st) {
          known.insert(st.text(0));
          if (st.text(1) == "receiving" && st.text(2) < cutoff) stale.push_back(st.text(0));
        });
  });
  if (!s) {
    spdlog::warn("edge uploads: cannot look for expired uploads: {}", s.error().message);
    return 0;
  }
  std::size_t dropped = 0;
  for (const std::string& id : stale) {
    // Under the upload's lock, and only if nothing touched it since: a PATCH that got in
    // first keeps it.
    auto lock = lock_of(id);
    std::lock_guard upload_guard(*lock);
    int gone = 0;
    Status d = storage::write(db_, [&](sql::Db& db) {
      Status r = sql::run(db,
                          "DELETE FROM edge_uploads WHERE id = ?1 AND state = 'receiving' "
                          "AND updated_at < ?2",
                          [&](sql::Stmt& st) {
                            st.bind(1, id);
                            st.bind(2, cutoff);
                          });
      gone = db.changes();
      return r;
    });
    if (!d) {
      spdlog::warn("edge uploads: cannot drop expired upload {}: {}", id, d.error().message);
      continue;
    }
    if (gone == 0) continue;
    std::error_code ec;
    std::filesystem::remove(file_of(id), ec);
    ++dropped;
    spdlog::info("edge uploads: dropped upload {}, unfinished and untouched since before {}", id,
                 cutoff);
  }
  // Files of creations whose row was never written (a crash in between).
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.dir, ec)) {
    const auto& p = e.path();
    if (p.extension() != ".part" || known.count(p.stem().string())) continue;
    std::error_code tec;
    const auto written = std::filesystem::last_write_time(p, tec);
    if (tec) continue;
    const auto age = std::filesystem::file_time_type::clock::now() - written;
    if (age < options_.expiry) continue;
    if (std::filesystem::remove(p, tec)) ++dropped;
  }
  return dropped;
}

std::shared_ptr<std::mutex> UploadService::lock_of(const std::string& id) {
  std::lock_guard lock(locks_mu_);
  for (auto it = locks_.begin(); it != locks_.end();) {
    it = it->second.expired() ? locks_.erase(it) : std::next(it);
  }
  auto& weak = locks_[id];
  auto m = weak.lock();
  if (!m) {
    m = std::make_shared<std::mutex>();
    weak = m;
  }
  return m;
}

Result<std::optional<UploadRow>> UploadService::find(const Request& req, const std::string& id) {
  std::optional<UploadRow> row;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT id, institution_id, user_id, length, received, content_type, state, result, "
        "created_at, encoding FROM edge_uploads WHERE id = ?1 AND user_id = ?2",
        [&](sql::Stmt& st) {
          st.bind(1, id);
          st.bind(2, req.principal->user_id);
        },
        [&](sql::Stmt& st) {
          UploadRow r;
          r.id = st.text(0);
          r.institution_id = st.int64(1);
          r.user_id = st.int64(2);
          r.length = static_cast<std::uint64_t>(st.int64(3));
          r.received = static_cast<std::uint64_t>(st.int64(4));
          r.content_type = st.text(5);
          r.state = st.text(6);
          r.result = st.text(7);
          r.created_at = st.text(8);
          r.encoding = st.text(9);
          row = std::move(r);
        });
  });
  if (!s) return s.error();
  return row;
}

Response UploadService::create(const Request& req) {
  if (req.header("tus-resumable") != kTusVersion) {
    Response r = tus_error(412, "Tus-Resumable: 1.0.0 is required");
    r.headers.emplace_back("Tus-Version", std::string(kTusVersion));
    return r;
  }
  auto length = parse_size(req.header("upload-length"), kMaxUploadBytes);
  if (!length) {
    return tus_error(
        req.header("upload-length").empty() ? 400 : 413,
        "Upload-Length must be a size of at most " + std::to_string(kMaxUploadBytes) + " bytes");
  }
  auto meta = parse_metadata(req.header("upload-metadata"));
  if (!meta.ok()) return tus_error(400, meta.error().message);
  const std::string content_type = (*meta)["content-type"];
  if (ascii_lower(content_type).rfind("multipart/related", 0) != 0) {
    return tus_error(415, "Upload-Metadata content-type must be multipart/related (a bundle)");
  }
  if (*length == 0) return tus_error(400, "an empty upload carries no instance");
  // tus creation-with-upload: the first chunk comes with the creation (one round trip less per
  // bundle; a small bundle, an ECG, is created, stored and answered in one request).
  if (!req.body.empty() && ascii_lower(req.content_type) != "application/offset+octet-stream")
    return tus_error(415,
                     "a creation with upload takes Content-Type: application/offset+octet-stream");
  if (req.body.size() > *length) return tus_error(400, "the chunk goes past Upload-Length");
  if (req.body.size() > kMaxChunkBytes) return tus_error(413, "a chunk is at most 16 MiB");
  const std::string encoding = (*meta)["encoding"];
  if (!encoding.empty() && encoding != kEncodingZstd && encoding != kEncodingZstdShuffle2)
    return tus_error(415, "Upload-Metadata encoding must be zstd, zstd-shuffle2 or absent");
  expire();
  const std::string id = identity::random_hex(16);
  const std::string now = auth_.now();
  {
    const int fd = ::open(file_of(id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Response::from_error(make_error(Errc::io, "cannot create an upload file"));
    ::close(fd);
  }
  if (Status s = storage::fsync_path(options_.dir, true); !s)
    return Response::from_error(s.error());
  Status s = storage::write(db_, [&](sql::Db& db) {
    return sql::run(db,
                    "INSERT INTO edge_uploads(id, institution_id, user_id, length, metadata, "
                    "content_type, encoding, state, created_at, updated_at) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?8, 'receiving', ?7, ?7)",
                    [&](sql::Stmt& st) {
                      st.bind(1, id);
                      st.bind(2, req.principal->institution_id);
                      st.bind(3, req.principal->user_id);
                      st.bind(4, static_cast<std::int64_t>(*length));
                      st.bind(5, req.header("upload-metadata"));
                      st.bind(6, content_type);
                      st.bind(7, now);
                      st.bind(8, encoding);
                    });
  });
  if (!s) {
    std::error_code ec;
    std::filesystem::remove(file_of(id), ec);
    return Response::from_error(s.error());
  }
  Response r = tus(Response::json(201, json_text(json{{"id", id}, {"length", *length}})));
  r.headers.emplace_back("Location", "/api/edge/v1/uploads/" + id);
  r.headers.emplace_back("Upload-Expires", expires_header(now));
  if (!req.body.empty()) {
    // The upload exists either way: a failed first chunk is sent again by PATCH at its offset.
    Response written = write_chunk(req, id, 0);
    if (written.status != 204) return written;
    for (auto& h : written.headers)  // its new Upload-Offset
      if (h.first == "Upload-Offset") r.headers.push_back(std::move(h));
  }
  return r;
}

Response UploadService::head(const Request& req) {
  auto row = find(req, req.params.at("id"));
  if (!row.ok()) return Response::from_error(row.error());
  if (!*row) return tus_error(404, "no such upload of this edge node");
  Response r = tus(Response::json(200, ""));
  r.content_type = "application/json";
  r.headers.emplace_back("Upload-Offset", std::to_string((*row)->received));
  r.headers.emplace_back("Upload-Length", std::to_string((*row)->length));
  return r;
}

Status UploadService::append(const std::string& id, std::uint64_t offset, std::string_view bytes) {
  const int fd = ::open(file_of(id).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::io, "the upload's file is gone");
  // Bytes past the offset are from a chunk that was never acknowledged: they go.
  Status s = ::ftruncate(fd, static_cast<off_t>(offset)) == 0
                 ? write_all(fd, bytes, offset)
                 : Status(make_error(Errc::io, "cannot truncate an upload file"));
  if (s.ok() && ::fdatasync(fd) != 0) s = make_error(Errc::io, "cannot sync an upload file");
  ::close(fd);
  return s;
}

Result<json> UploadService::ingest(const Request& req, const UploadRow& row) {
  std::string body;
  {
    const int fd = ::open(file_of(row.id).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::io, "the upload's file is gone");
    body.resize(row.length);
    std::size_t got = 0;
    while (got < body.size()) {
      const ssize_t n = ::pread(fd, body.data() + got, body.size() - got, static_cast<off_t>(got));
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got != body.size()) return make_error(Errc::io, "the upload's file is short");
  }
  json results = json::array();
  if (row.encoding == kEncodingZstd || row.encoding == kEncodingZstdShuffle2) {
    // The edge's transport compression: at most kMaxUnpackedBytes, declared in the frame.
    const unsigned long long size = ZSTD_getFrameContentSize(body.data(), body.size());
    std::string unpacked;
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > kMaxUnpackedBytes) {
      results.push_back(
          {{"status", "rejected"}, {"message", "not a zstd frame of a declared size up to 1 GiB"}});
      return results;
    }
    unpacked.resize(size);
    const std::size_t n =
        ZSTD_decompress(unpacked.data(), unpacked.size(), body.data(), body.size());
    if (ZSTD_isError(n) || n != size) {
      results.push_back({{"status", "rejected"},
                         {"message", std::string("the zstd bundle does not decompress: ") +
                                         (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short")}});
      return results;
    }
    body.swap(unpacked);
  }
  auto parts = pacs::split_multipart(row.content_type, body);
  if (!parts.ok()) {
    results.push_back({{"status", "rejected"}, {"message", parts.error().message}});
    return results;
  }
  std::vector<pacs::IngestOutcome> outcomes(parts->size());
  std::atomic<std::size_t> next{0};
  const pacs::Sender sender{"", req.principal->institution_id, {}};
  auto work = [&] {
    for (std::size_t i = next++; i < parts->size(); i = next++) {
      const pacs::BodyPart& part = (*parts)[i];
      if (ascii_lower(part.content_type).rfind("application/dicom", 0) != 0) {
        outcomes[i].status = pacs::IngestStatus::rejected;
        outcomes[i].reason = pacs::IngestReason::not_dicom;
        outcomes[i].message = "part is not application/dicom";
        continue;
      }
      std::string unshuffled;
      std::string_view bytes = part.bytes;
      if (row.encoding == kEncodingZstdShuffle2) {
        unshuffled = unshuffle2(part.bytes);
        bytes = unshuffled;
      }
      outcomes[i] = ingestor_.ingest_bytes(bytes, sender);
    }
  };
  {
    std::vector<std::thread> threads;
    const std::size_t n =
        std::min<std::size_t>(std::max(1u, options_.ingest_threads), parts->size());
    for (std::size_t t = 1; t < n; ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
  }
  std::map<std::string, int> by_status;
  std::string studies;
  std::set<std::string> arrived;  // studies with an instance new at the hub
  for (const pacs::IngestOutcome& o : outcomes) {
    if (o.status == pacs::IngestStatus::stored && !o.study_instance_uid.empty())
      arrived.insert(o.study_instance_uid);
    json j{{"sopInstanceUid", o.sop_instance_uid},
           {"study", o.study_instance_uid},
           {"status", pacs::ingest_status_name(o.status)}};
    if (!o.message.empty()) j["message"] = o.message;
    results.push_back(std::move(j));
    ++by_status[pacs::ingest_status_name(o.status)];
    if (!o.study_instance_uid.empty() && studies.find(o.study_instance_uid) == std::string::npos)
      studies += (studies.empty() ? "" : " ") + o.study_instance_uid;
  }
  std::string detail;
  for (const auto& [k, v] : by_status)
    detail += (detail.empty() ? "" : ", ") + std::to_string(v) + " " + k;
  if (options_.study_arriving) {
    for (const std::string& uid : arrived) options_.study_arriving(uid);
  }
  auth_.audit(req, "edge.upload.store", "upload", row.id,
              by_status.count("refused") ? "denied" : "ok",
              detail + (studies.empty() ? "" : " (study " + studies + ")"));
  return results;
}

Response UploadService::patch(const Request& req) {
  const std::string& id = req.params.at("id");
  if (req.header("tus-resumable") != kTusVersion)
    return tus_error(412, "Tus-Resumable: 1.0.0 is required");
  if (ascii_lower(req.content_type) != "application/offset+octet-stream")
    return tus_error(415, "PATCH takes Content-Type: application/offset+octet-stream");
  auto offset = parse_size(req.header("upload-offset"), kMaxUploadBytes);
  if (!offset) return tus_error(400, "Upload-Offset must be given, as a size");
  return write_chunk(req, id, *offset);
}

Response UploadService::write_chunk(const Request& req, const std::string& id,
                                    std::uint64_t offset) {
  auto lock = lock_of(id);
  std::lock_guard guard(*lock);
  auto found = find(req, id);
  if (!found.ok()) return Response::from_error(found.error());
  if (!*found) return tus_error(404, "no such upload of this edge node");
  UploadRow row = std::move(**found);
  auto answer = [](std::uint64_t at) {
    Response r = tus(Response::json(204, ""));
    r.headers.emplace_back("Upload-Offset", std::to_string(at));
    return r;
  };
  if (offset != row.received) {
    Response r = tus_error(409, "Upload-Offset " + std::to_string(offset) +
                                    " is not the upload's offset " + std::to_string(row.received));
    r.headers.emplace_back("Upload-Offset", std::to_string(row.received));
    return r;
  }
  if (row.state == "stored") {
    if (!req.body.empty()) return tus_error(400, "the upload is complete");
    return answer(row.received);
  }
  if (req.body.size() > row.length - row.received)
    return tus_error(400, "the chunk goes past Upload-Length");
  if (req.body.size() > kMaxChunkBytes) return tus_error(413, "a chunk is at most 16 MiB");
  if (Status s = append(id, row.received, req.body); !s) return Response::from_error(s.error());
  const std::uint64_t received = row.received + req.body.size();
  std::string result;
  if (received == row.length) {
    auto outcomes = ingest(req, row);
    if (!outcomes.ok()) return Response::from_error(outcomes.error());
    result = json_text(*outcomes);
  }
  Status s = storage::write(db_, [&](sql::Db& db) {
    return sql::run(db,
                    "UPDATE edge_uploads SET received = ?2, updated_at = ?3, result = ?4, "
                    "state = CASE WHEN ?2 = length THEN 'stored' ELSE state END WHERE id = ?1",
                    [&](sql::Stmt& st) {
                      st.bind(1, id);
                      st.bind(2, static_cast<std::int64_t>(received));
                      st.bind(3, auth_.now());
                      st.bind(4, result);
                    });
  });
  if (!s) return Response::from_error(s.error());
  if (received == row.length) {
    std::error_code ec;
    std::filesystem::remove(file_of(id), ec);
    return answer(received);
  }
  Response r = answer(received);
  r.headers.emplace_back("Upload-Expires", expires_header(auth_.now()));
  return r;
}

Response UploadService::status(const Request& req) {
  auto row = find(req, req.params.at("id"));
  if (!row.ok()) return Response::from_error(row.error());
  if (!*row) return tus_error(404, "no such upload of this edge node");
  const UploadRow& r = **row;
  json j{{"id", r.id},       {"length", r.length},        {"offset", r.received},
         {"state", r.state}, {"createdAt", r.created_at}, {"results", json::array()}};
  if (!r.result.empty()) {
    auto parsed = json::parse(r.result, nullptr, false);
    if (!parsed.is_discarded()) j["results"] = std::move(parsed);
  }
  return tus(Response::json(200, json_text(j)));
}

Response UploadService::transfers(const Request& req) {
  if (auto no = identity::refuse_non_admin(auth_, req, "edge.transfers.list", "edge")) return *no;
  auto edges = auth_.edge_credentials();
  if (!edges.ok()) return Response::from_error(edges.error());
  struct Totals {
    std::int64_t receiving = 0, received = 0, length = 0, stored_day = 0;
    std::string last;
  };
  std::map<std::int64_t, Totals> by_user;
  const auto clock = storage::parse_iso8601(auth_.now());
  const std::string day_ago = storage::to_iso8601(
      (clock ? *clock : std::chrono::system_clock::now()) - std::chrono::hours(24));
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT user_id, "
        "SUM(CASE WHEN state = 'receiving' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN state = 'receiving' THEN received ELSE 0 END), "
        "SUM(CASE WHEN state = 'receiving' THEN length ELSE 0 END), "
        "SUM(CASE WHEN state = 'stored' AND updated_at >= ?1 THEN 1 ELSE 0 END), "
        "MAX(updated_at) FROM edge_uploads GROUP BY user_id",
        [&](sql::Stmt& st) { st.bind(1, day_ago); },
        [&](sql::Stmt& st) {
          by_user[st.int64(0)] =
              Totals{st.int64(1), st.int64(2), st.int64(3), st.int64(4), st.text(5)};
        });
  });
  if (!s) return Response::from_error(s.error());
  json list = json::array();
  for (const auto& c : *edges) {
    auto user = auth_.accounts().find_user(c.username);
    if (!user.ok()) return Response::from_error(user.error());
    Totals t;
    if (*user) {
      if (auto it = by_user.find((*user)->id); it != by_user.end()) t = it->second;
    }
    list.push_back({{"name", c.name},
                    {"institution", c.institution_code},
                    {"revoked", c.revoked},
                    {"lastTransferAt", t.last.empty() ? json(nullptr) : json(t.last)},
                    {"receiving", t.receiving},
                    {"receivingBytes", t.received},
                    {"receivingLength", t.length},
                    {"storedLastDay", t.stored_day}});
  }
  auth_.audit(req, "edge.transfers.list", "edge", "", "ok",
              std::to_string(list.size()) + " edge nodes");
  return Response::json(200, json_text(json{{"edges", list}}));
}

Result<std::shared_ptr<UploadService>> register_upload_routes(http::Router& router,
                                                              storage::Database& db,
                                                              pacs::Ingestor& ingestor,
                                                              identity::AuthService& auth,
                                                              UploadServiceOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return make_error(Errc::io, "cannot make " + options.dir.string() + ": " + ec.message());
  auto service = std::make_shared<UploadService>(db, ingestor, auth, options);
  service->expire(true);  // what expired while the hub was down
  // Only edge credentials reach /api/edge/ (the gate in identity/auth.cpp); this is the second
  // look, so no route here ever serves a user's session.
  auto edge_only = [](auto f) {
    return [f](const Request& req) {
      if (!edge_principal(req)) return Response::error(403, "edge nodes only");
      return f(req);
    };
  };
  router.add("GET", "/api/edge/v1/whoami", edge_only([](const Request& req) {
               const Principal& p = *req.principal;
               return Response::json(200, json_text(json{{"name", edge_name(p)},
                                                         {"username", p.username},
                                                         {"institution", p.institution_code}}));
             }));
  router.add("OPTIONS", "/api/edge/v1/uploads", edge_only([](const Request&) {
               Response r = tus(Response::json(204, ""));
               r.headers.emplace_back("Tus-Version", std::string(kTusVersion));
               r.headers.emplace_back("Tus-Extension", "creation,creation-with-upload,expiration");
               r.headers.emplace_back("Tus-Max-Size", std::to_string(kMaxUploadBytes));
               return r;
             }));
  router.add("POST", "/api/edge/v1/uploads",
             edge_only([service](const Request& req) { return service->create(req); }));
  router.add("HEAD", "/api/edge/v1/uploads/{id}",
             edge_only([service](const Request& req) { return service->head(req); }));
  router.add("PATCH", "/api/edge/v1/uploads/{id}",
             edge_only([service](const Request& req) { return service->patch(req); }));
  // tus's X-HTTP-Method-Override: a PATCH sent as POST (for clients that cannot send PATCH).
  router.add("POST", "/api/edge/v1/uploads/{id}", edge_only([service](const Request& req) {
               if (ascii_lower(req.header("x-http-method-override")) != "patch")
                 return tus_error(405, "POST to an upload needs X-HTTP-Method-Override: PATCH");
               return service->patch(req);
             }));
  router.add("GET", "/api/edge/v1/uploads/{id}",
             edge_only([service](const Request& req) { return service->status(req); }));
  // For the consortium office (a user's session; /api/edge/ takes edge credentials only).
  router.add("GET", "/api/admin/edge-transfers",
             [service](const Request& req) { return service->transfers(req); });
  router.add("POST", "/api/edge/v1/studies/{uid}/complete",
             edge_only([complete = options.study_complete, &auth](const Request& req) {
               if (!complete) return Response::error(503, "the reading queue is not running");
               const std::string& uid = req.params.at("uid");
               auto n = complete(*req.principal, uid);
               auth.audit(req, "edge.study.complete", "study", uid, n.ok() ? "ok" : "failed",
                          n.ok() ? std::to_string(*n) + " reading tasks" : n.error().message);
               if (!n.ok()) return Response::from_error(n.error());
               return Response::json(200, json_text(json{{"study", uid}, {"tasks", *n}}));
             }));
  return service;
}

}  // namespace yilian::edge
