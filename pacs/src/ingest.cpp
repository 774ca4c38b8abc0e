#include "yilian/pacs/ingest.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "yilian/pacs/dicom_file.h"
#include "yilian/storage/clock.h"

namespace yilian::pacs {
namespace fs = std::filesystem;

const char* ingest_status_name(IngestStatus s) {
  switch (s) {
    case IngestStatus::stored:
      return "stored";
    case IngestStatus::duplicate:
      return "duplicate";
    case IngestStatus::conflict:
      return "conflict";
    case IngestStatus::rejected:
      return "rejected";
    case IngestStatus::refused:
      return "refused";
    case IngestStatus::failed:
      return "failed";
  }
  return "failed";
}

namespace {

// The value `key` has in this batch, else what the index says (`lookup`).
template <typename V, typename Lookup>
Result<std::optional<V>> known_or_indexed(const std::unordered_map<std::string, V>& batch,
                                          const std::string& key, Lookup lookup) {
  if (auto it = batch.find(key); it != batch.end()) return std::optional<V>(it->second);
  return lookup();
}

// Reads the data set part of a file (everything after the file meta information).
Result<std::string> read_dataset(const fs::path& p, std::int64_t offset) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(Errc::io, "cannot open " + p.string());
  in.seekg(offset);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(Errc::io, "cannot read " + p.string());
  return out;
}

// Same object? Compares the data sets only: the file meta information records who sent
// it and through which implementation, which may differ for the same object.
Result<bool> same_dataset(const fs::path& a, std::int64_t a_off, const fs::path& b,
                          std::int64_t b_off) {
  std::error_code ec;
  auto sa = fs::file_size(a, ec);
  if (ec) return make_error(Errc::io, "cannot stat " + a.string());
  auto sb = fs::file_size(b, ec);
  if (ec) return make_error(Errc::io, "cannot stat " + b.string());
  if (static_cast<std::int64_t>(sa) - a_off != static_cast<std::int64_t>(sb) - b_off) return false;
  auto da = read_dataset(a, a_off);
  if (!da.ok()) return da.error();
  auto db = read_dataset(b, b_off);
  if (!db.ok()) return db.error();
  return *da == *db;
}

IngestOutcome outcome(IngestStatus st, IngestReason why, const pacs::NewInstance& in,
                      std::string msg = {}) {
  IngestOutcome o;
  o.status = st;
  o.reason = why;
  o.message = std::move(msg);
  o.sop_class_uid = in.sop_class_uid;
  o.sop_instance_uid = in.sop_instance_uid;
  o.study_instance_uid = in.study_instance_uid;
  o.series_instance_uid = in.series_instance_uid;
  return o;
}

}  // namespace

Ingestor::Ingestor(pacs::Index& index, storage::BlobStore& blobs, Options options)
    : index_(index), blobs_(blobs), options_(options) {
  committer_ = std::thread([this] { run_committer(); });
}

Ingestor::~Ingestor() { shutdown(); }

void Ingestor::shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

void Ingestor::count(IngestStatus s) {
  std::lock_guard lock(mu_);
  switch (s) {
    case IngestStatus::stored:
      ++counters_.stored;
      break;
    case IngestStatus::duplicate:
      ++counters_.duplicates;
      break;
    case IngestStatus::conflict:
      ++counters_.conflicts;
      break;
    case IngestStatus::rejected:
    case IngestStatus::refused:
      ++counters_.rejected;
      break;
    case IngestStatus::failed:
      ++counters_.failed;
      break;
  }
}

IngestCounters Ingestor::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::optional<IngestOutcome> Ingestor::no_room(std::uint64_t incoming) {
  if (options_.reserve_bytes == 0) return std::nullopt;
  struct statvfs fs {};
  if (::statvfs(blobs_.root().c_str(), &fs) != 0) return std::nullopt;  // the write will say
  const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free >= options_.reserve_bytes + incoming) return std::nullopt;
  IngestOutcome o;
  o.status = IngestStatus::failed;
  o.reason = IngestReason::disk_full;
  o.message = "out of disk space: " + std::to_string(free >> 20) + " MB free, " +
              std::to_string(options_.reserve_bytes >> 20) +
              " MB kept in reserve; stores resume once there is space";
  return o;
}

IngestOutcome Ingestor::ingest(const std::string& key, const Sender& sender,
                               const Announced& announced) {
  if (auto full = no_room()) {
    (void)blobs_.remove_temp(key);
    count(full->status);
    full->sop_class_uid = announced.sop_class_uid;
    full->sop_instance_uid = announced.sop_instance_uid;
    return *full;
  }
  return ingest_received(key, sender, announced);
}

IngestOutcome Ingestor::ingest_received(const std::string& key, const Sender& sender,
                                        const Announced& announced) {
  auto fail = [&](IngestStatus st, IngestReason why, std::string msg) {
    (void)blobs_.remove_temp(key);
    count(st);
    IngestOutcome o;
    o.status = st;
    o.reason = why;
    o.message = std::move(msg);
    o.sop_class_uid = announced.sop_class_uid;
    o.sop_instance_uid = announced.sop_instance_uid;
    return o;
  };

  auto parsed =
      read_instance_attributes(blobs_.temp_path(key), sender.text.value_or(options_.text));
  if (!parsed.ok()) {
    const bool invalid = parsed.error().code == Errc::invalid_argument;
    return fail(invalid ? IngestStatus::rejected : IngestStatus::failed,
                invalid ? IngestReason::unreadable : IngestReason::storage, parsed.error().message);
  }
  pacs::NewInstance in = std::move(parsed).value();
  if (!announced.sop_class_uid.empty() && announced.sop_class_uid != in.sop_class_uid) {
    return fail(IngestStatus::rejected, IngestReason::class_mismatch,
                "SOP Class UID in data set (" + in.sop_class_uid + ") differs from the request");
  }
  if (!announced.sop_instance_uid.empty() && announced.sop_instance_uid != in.sop_instance_uid) {
    return fail(IngestStatus::rejected, IngestReason::instance_mismatch,
                "SOP Instance UID in data set differs from the request");
  }

  // On the receiving thread (in parallel across senders), from the page cache the parse above
  // filled.
  auto hash = storage::content_hash(blobs_.temp_path(key));
  if (!hash.ok()) return fail(IngestStatus::failed, IngestReason::storage, hash.error().message);
  in.content_hash = std::move(hash).value();
  in.blob_key = key;
  in.calling_ae = sender.calling_ae;
  in.institution_id = sender.institution_id;

  std::future<IngestOutcome> result;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      // fall through below, outside the lock
    } else {
      queue_.push_back(Pending{std::move(in), {}});
      result = queue_.back().done.get_future();
    }
  }
  if (!result.valid()) {
    return fail(IngestStatus::failed, IngestReason::shutting_down, "server is shutting down");
  }
  cv_.notify_one();
  IngestOutcome o = result.get();
  count(o.status);
  return o;
}

IngestOutcome Ingestor::ingest_bytes(std::string_view bytes, const Sender& sender) {
  if (auto full = no_room(bytes.size())) {
    count(full->status);
    return *full;
  }
  std::string key = blobs_.new_key();
  if (Status s = blobs_.write_temp(key, bytes); !s) {
    count(IngestStatus::failed);
    IngestOutcome o;
    o.status = IngestStatus::failed;
    o.reason = IngestReason::storage;
    o.message = s.error().message;
    return o;
  }
  return ingest_received(key, sender, {});  // the room was looked at before the write
}

void Ingestor::run_committer() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    std::deque<Pending> batch;
    while (!queue_.empty() && batch.size() < options_.max_batch) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    ++counters_.batches;
    lock.unlock();
    commit_batch(batch);
    lock.lock();
    // Items deferred by commit_batch go back to the front, in order.
    while (!batch.empty()) {
      queue_.push_front(std::move(batch.back()));
      batch.pop_back();
    }
  }
}

// Decides, publishes, syncs and indexes one batch. Leaves in `batch` only the items it
// deferred to the next round (a second object with the same SOP Instance UID as another
// item of this batch, which must be compared once the first is indexed).
void Ingestor::commit_batch(std::deque<Pending>& batch) {
  const std::string now = storage::to_iso8601(options_.clock());
  pacs::IndexBatch rows;
  std::vector<Pending*> stored, conflicts;
  std::deque<Pending> deferred;
  std::unordered_set<std::string> uids_in_batch;
  std::unordered_map<std::string, std::int64_t> study_owner;  // studies first seen in this batch
  std::unordered_map<std::string, std::string> series_study;  // series -> study, this batch

  auto finish = [&](Pending& p, IngestOutcome o) { p.done.set_value(std::move(o)); };

  for (Pending& p : batch) {
    pacs::NewInstance& in = p.instance;
    in.received_at = now;
    if (uids_in_batch.count(in.sop_instance_uid)) {
      deferred.push_back(std::move(p));
      continue;
    }
    // A sender files studies under its own institution only: another institution's study
    // cannot be added to (or overwritten) from here. A series belongs to one study: a sender
    // reusing a series UID under another study (another institution's, perhaps) is rejected
    // rather than filed into that study.
    auto owner_id = known_or_indexed(study_owner, in.study_instance_uid, [&] {
      return index_.study_institution(in.study_instance_uid);
    });
    auto home = owner_id.ok()
                    ? known_or_indexed(series_study, in.series_instance_uid,
                                       [&] { return index_.series_study(in.series_instance_uid); })
                    : Result<std::optional<std::string>>(owner_id.error());
    std::optional<IngestOutcome> refusal;
    if (!owner_id.ok() || !home.ok()) {
      refusal = outcome(IngestStatus::failed, IngestReason::storage, in,
                        (!owner_id.ok() ? owner_id.error() : home.error()).message);
    } else if (*owner_id && **owner_id != in.institution_id) {
      refusal = outcome(IngestStatus::refused, IngestReason::other_institution, in,
                        "the study belongs to another institution");
    } else if (*home && **home != in.study_instance_uid) {
      refusal = outcome(IngestStatus::rejected, IngestReason::other_study, in,
                        "the Series Instance UID belongs to another study");
    }
    if (refusal) {
      (void)blobs_.remove_temp(in.blob_key);
      finish(p, std::move(*refusal));
      continue;
    }
    study_owner.emplace(in.study_instance_uid, in.institution_id);
    series_study.emplace(in.series_instance_uid, in.study_instance_uid);
    auto existing = index_.find_instance(in.sop_instance_uid);
    if (!existing.ok()) {
      (void)blobs_.remove_temp(in.blob_key);
      finish(p, outcome(IngestStatus::failed, IngestReason::storage, in, existing.error().message));
      continue;
    }
    if (existing->has_value()) {
      const pacs::StoredInstance& old = **existing;
      auto same = same_dataset(blobs_.temp_path(in.blob_key), in.dataset_offset,
                               blobs_.blob_path(old.blob_key), old.dataset_offset);
      if (!same.ok()) {
        (void)blobs_.remove_temp(in.blob_key);
        finish(p, outcome(IngestStatus::failed, IngestReason::storage, in, same.error().message));
        continue;
      }
      if (*same) {
        (void)blobs_.remove_temp(in.blob_key);
        finish(p, outcome(IngestStatus::duplicate, IngestReason::none, in));
        continue;
      }
      if (Status s = blobs_.publish(in.blob_key); !s) {
        (void)blobs_.remove_temp(in.blob_key);
        finish(p, outcome(IngestStatus::failed, IngestReason::storage, in, s.error().message));
        continue;
      }
      rows.conflicts.push_back({in.sop_instance_uid, old.pk, in.blob_key, in.size_bytes,
                                in.calling_ae, in.institution_id, now, in.content_hash});
      conflicts.push_back(&p);
      continue;
    }
    if (Status s = blobs_.publish(in.blob_key); !s) {
      (void)blobs_.remove_temp(in.blob_key);
      finish(p, outcome(IngestStatus::failed, IngestReason::storage, in, s.error().message));
      continue;
    }
    uids_in_batch.insert(in.sop_instance_uid);
    rows.instances.push_back(in);
    stored.push_back(&p);
  }

  // Two flushes per batch, in this order: files and directory entries first, then the
  // index rows that point at them.
  Status st;
  if (!rows.instances.empty() || !rows.conflicts.empty()) {
    st = blobs_.sync();
    if (st.ok()) st = index_.commit(rows);
  }
  if (!st.ok()) {
    // Nothing of this batch is indexed: take its files back out so no half-state remains.
    for (Pending* p : stored) (void)blobs_.remove_blob(p->instance.blob_key);
    for (Pending* p : conflicts) (void)blobs_.remove_blob(p->instance.blob_key);
    for (Pending* p : stored)
      finish(*p,
             outcome(IngestStatus::failed, IngestReason::storage, p->instance, st.error().message));
    for (Pending* p : conflicts)
      finish(*p,
             outcome(IngestStatus::failed, IngestReason::storage, p->instance, st.error().message));
  } else {
    std::vector<std::string> studies;
    for (Pending* p : stored) {
      if (std::find(studies.begin(), studies.end(), p->instance.study_instance_uid) ==
          studies.end())
        studies.push_back(p->instance.study_instance_uid);
    }
    if (options_.on_committed && !studies.empty()) options_.on_committed(studies);
    for (Pending* p : stored)
      finish(*p, outcome(IngestStatus::stored, IngestReason::none, p->instance));
    for (Pending* p : conflicts) {
      finish(*p, outcome(IngestStatus::conflict, IngestReason::different_copy, p->instance,
                         "SOP Instance UID already stored with different content; "
                         "the new object was kept separately"));
    }
  }
  batch = std::move(deferred);
}

Result<RecoveryReport> Ingestor::recover() {
  RecoveryReport report;
  auto removed = blobs_.remove_temp_files();
  if (!removed.ok()) return removed.error();
  report.temp_files_removed = *removed;

  auto indexed = index_.all_blob_keys();
  if (!indexed.ok()) return indexed.error();
  auto on_disk = blobs_.list_keys();
  if (!on_disk.ok()) return on_disk.error();
  std::unordered_set<std::string> indexed_set(indexed->begin(), indexed->end());
  std::unordered_set<std::string> disk_set(on_disk->begin(), on_disk->end());

  std::vector<std::string> missing;
  for (const std::string& k : *indexed) {
    if (!disk_set.count(k)) missing.push_back(k);
  }
  if (Status s = index_.remove_blob_references(missing); !s) return s.error();
  report.missing_files = missing.size();

  // Files published but never indexed: a crash between the rename and the index commit.
  // They were never acknowledged (the answer is sent after the commit) and, since the
  // flush comes after the rename, their contents may not have reached the disk: remove
  // them; the sender did not get a success and sends them again. On a store shared by several
  // nodes only this node's own files are looked at: a neighbour's may be between its rename
  // and its commit right now.
  for (const std::string& k : *on_disk) {
    if (indexed_set.count(k) || !blobs_.owns(k)) continue;
    if (Status s = blobs_.remove_blob(k); !s) return s.error();
    ++report.orphan_files_removed;
  }
  if (report.orphan_files_removed > 0) {
    if (Status s = blobs_.sync(); !s) return s.error();
  }
  return report;
}

}  // namespace yilian::pacs
