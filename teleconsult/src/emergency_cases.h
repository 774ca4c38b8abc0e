// Emergency cases on the live hub: a reading-queue event that emergency_rules names a trigger
// (a suspected STEMI, a STAT stroke CT) opens a case and alerts everyone who may see it;
// followers of a case get its state and clocks; an interval that passes its target is
// announced once. Hub thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "hub_internal.h"
#include "notifier.h"
#include "yilian/common/principal.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/clock.h"
#include "yilian/teleconsult/case_store.h"

namespace yilian::teleconsult::hub_detail {

class EmergencyCases {
 public:
  EmergencyCases(CaseStore& store, Notifier& notifier, Outbox& out, storage::Clock clock,
                 std::chrono::seconds escalate_after, CaseTargets targets)
      : store_(store),
        notifier_(notifier),
        out_(out),
        clock_(std::move(clock)),
        escalate_after_(escalate_after),
        targets_(std::move(targets)) {}

  // A reading-queue event about task `t`: opens the case its trigger names, once.
  void task_event(const reading::TaskRow& t, const std::string& type, const std::string& detail);
  // A case was opened (alert everyone who may see it) or changed: its followers get its state,
  // on every node unless `local`.
  void publish(std::int64_t case_id, bool opened, bool local = false);
  // Every 30 s this node's followers get the running clocks; with `announce` (one node of the
  // cluster), intervals that have just passed their target are announced once and alerts not
  // acknowledged in time escalate.
  void check_clocks(bool announce);
  // `p` acknowledges a case's alert (emergency_rules.h); the case's view, or not_found when `p`
  // may not see it.
  Result<nlohmann::json> acknowledge(const Principal& p, std::int64_t case_id);
  // `text` to the followers of a case on this node and, unless `local`, on the others.
  void to_followers(std::int64_t case_id, const std::string& text, bool local);

  // `conn` of `p` follows a case: its current view, or not_found when `p` may not see it.
  Result<nlohmann::json> follow(std::uint64_t conn, const Principal& p, std::int64_t case_id);
  void unfollow(std::uint64_t conn, std::int64_t case_id);
  void forget(std::uint64_t conn);  // the connection closed

 private:
  Result<CaseRow> open_for_task(const reading::TaskRow& t, const std::string& kind,
                                const std::string& source, const std::string& reason,
                                const std::string& point);
  std::string now() const { return storage::to_iso8601(clock_()); }
  // A new case's alert: to the on-call primary of its service, or to everyone who may see it.
  void alert(const CaseRow& c);
  void escalate(const CaseRow& c);

  CaseStore& store_;
  Notifier& notifier_;
  Outbox& out_;
  storage::Clock clock_;
  std::chrono::seconds escalate_after_;
  CaseTargets targets_;
  std::map<std::int64_t, std::set<std::uint64_t>> followers_;  // case -> connections
  std::set<std::pair<std::int64_t, std::string>> announced_breaches_;
  // Open cases whose alerts this node has closed after their acknowledgement (once is enough;
  // forgotten when the case closes).
  std::set<std::int64_t> alerts_closed_;
  storage::TimePoint next_push_{};
};

}  // namespace yilian::teleconsult::hub_detail
