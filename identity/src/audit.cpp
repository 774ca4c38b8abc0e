#include "yilian/identity/audit.h"

#include "yilian/common/text.h"

#include "yilian/identity/crypto.h"

namespace yilian::identity {
namespace {

constexpr std::string_view kGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Length-prefixed fields: no separator inside a value can make two records hash alike.
void field(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
  out += ';';
}

}  // namespace

AuditEvent event_for(const Principal& p, std::string address) {
  AuditEvent e;
  e.actor = p.username;
  e.actor_institution = p.institution_code;
  e.address = std::move(address);
  return e;
}

std::string audit_hash(const identity::AuditRecord& r) {
  std::string buf;
  field(buf, std::to_string(r.seq));
  for (const std::string* f : {&r.at, &r.actor, &r.actor_institution, &r.address, &r.action,
                               &r.object_type, &r.object_id, &r.outcome, &r.detail, &r.prev_hash}) {
    field(buf, *f);
  }
  return sha256_hex(buf);
}

Result<std::unique_ptr<Auditor>> Auditor::open(identity::AuditLog& log, storage::Clock clock) {
  std::unique_ptr<Auditor> a(new Auditor(log, std::move(clock)));
  auto last = log.last();
  if (!last.ok()) return last.error();
  if (last->has_value()) {
    a->last_seq_ = (*last)->seq;
    a->last_hash_ = (*last)->hash;
  } else {
    a->last_hash_ = std::string(kGenesis);
  }
  return a;
}

Status Auditor::record(const AuditEvent& e) {
  // Whatever a caller passes (a member's bytes, a 1 MB username), a record is valid UTF-8 of
  // bounded size: the trail can neither be grown without bound nor stop a JSON reader.
  identity::AuditRecord r{0,
                          {},
                          clip_utf8(e.actor, 128),
                          clip_utf8(e.actor_institution, 64),
                          clip_utf8(e.address, 64),
                          clip_utf8(e.action, 64),
                          clip_utf8(e.object_type, 64),
                          clip_utf8(e.object_id, 256),
                          clip_utf8(e.outcome, 32),
                          clip_utf8(e.detail, 2048),
                          {},
                          {}};
  std::unique_lock lock(mu_);
  r.at = storage::to_iso8601(clock_());  // under the lock: times follow the sequence
  if (!gathering_) gathering_ = std::make_shared<Batch>();
  std::shared_ptr<Batch> mine = gathering_;
  mine->records.push_back(std::move(r));
  // Leader and followers: whoever finds no write under way writes everything gathered so far,
  // the others wait for the write that holds their record.
  while (!mine->done) {
    if (writing_) {
      written_.wait(lock);
      continue;
    }
    std::shared_ptr<Batch> batch = std::move(gathering_);  // new records gather anew
    writing_ = true;
    std::int64_t seq = last_seq_;
    std::string hash = last_hash_;
    lock.unlock();
    Status s = write(log_, batch->records, seq, hash);
    lock.lock();
    last_seq_ = seq;
    last_hash_ = std::move(hash);
    writing_ = false;
    batch->done = true;
    batch->status = s;
    written_.notify_all();
  }
  if (mine->status && anchor_sink_) {
    const storage::TimePoint now = clock_();
    if (!anchored_at_ || now - *anchored_at_ >= anchor_every_) {
      anchored_at_ = now;
      (void)anchor_sink_({last_seq_, last_hash_, storage::to_iso8601(now)});
    }
  }
  return mine->status;
}

Status Auditor::write(identity::AuditLog& log, std::vector<identity::AuditRecord>& records,
                      std::int64_t& last_seq, std::string& last_hash) {
  // Several nodes append to one chain: records whose places another node took first (a
  // sequence number is taken) continue from the newest record instead.
  constexpr int kAttempts = 50;
  for (int attempt = 0;; ++attempt) {
    std::int64_t seq = last_seq;
    std::string prev = last_hash;
    for (identity::AuditRecord& r : records) {
      r.seq = ++seq;
      r.prev_hash = prev;
      r.hash = audit_hash(r);
      prev = r.hash;
    }
    Status s = log.append(records);
    if (s) break;
    if (s.error().code != Errc::conflict || attempt + 1 == kAttempts) return s;
    auto last = log.last();
    if (!last.ok()) return last.error();
    if (!last->has_value() || (*last)->seq <= last_seq) return s;  // not a lost race
    last_seq = (*last)->seq;
    last_hash = (*last)->hash;
  }
  last_seq = records.back().seq;
  last_hash = records.back().hash;
  return Status::Ok();
}

Result<ChainReport> Auditor::verify() {
  std::lock_guard lock(mu_);
  return verify_chain(log_);
}

void Auditor::anchor_with(std::function<Status(const AuditAnchor&)> sink,
                          std::chrono::seconds every) {
  std::lock_guard lock(mu_);
  anchor_sink_ = std::move(sink);
  anchor_every_ = every;
  anchored_at_.reset();
}

AuditAnchor Auditor::head() {
  std::lock_guard lock(mu_);
  return {last_seq_, last_hash_, storage::to_iso8601(clock_())};
}

Result<ChainReport> verify_chain(identity::AuditLog& log,
                                 const std::optional<AuditAnchor>& anchor) {
  ChainReport report;
  std::string prev(kGenesis);
  std::int64_t expected_seq = 1;
  Status s = log.scan([&](const identity::AuditRecord& r) {
    ++report.records;
    auto fail = [&](std::string why) {
      report.intact = false;
      report.first_bad_seq = r.seq;
      report.problem = std::move(why);
      return false;
    };
    if (r.seq != expected_seq) {
      return fail("record " + std::to_string(expected_seq) + " is missing");
    }
    if (r.prev_hash != prev) return fail("does not follow the previous record");
    if (audit_hash(r) != r.hash) return fail("its contents were changed");
    if (anchor && r.seq == anchor->seq && r.hash != anchor->hash) {
      return fail("it differs from the head anchored at " + anchor->anchored_at);
    }
    prev = r.hash;
    ++expected_seq;
    return true;
  });
  if (!s) return s.error();
  if (report.intact && anchor && report.records < anchor->seq) {
    report.intact = false;
    report.first_bad_seq = report.records + 1;
    report.problem = "the chain ends at record " + std::to_string(report.records) +
                     " but reached record " + std::to_string(anchor->seq) + " at " +
                     anchor->anchored_at + ": its newest records were removed";
  }
  return report;
}

}  // namespace yilian::identity
