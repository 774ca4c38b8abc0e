// Notifications: stored per user (the REST inbox pages them), pushed at once to the user's open
// connections, the newest few replayed when the user connects. Hub thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "hub_internal.h"
#include "yilian/common/principal.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/clock.h"
#include "yilian/teleconsult/consult_store.h"
#include "yilian/teleconsult/hub.h"
#include "yilian/teleconsult/notification_store.h"
#include "yilian/teleconsult/referral_store.h"

namespace yilian::teleconsult::hub_detail {

class Notifier {
 public:
  Notifier(NotificationStore& store, const HubSources& sources, Outbox& out, storage::Clock clock)
      : store_(store), sources_(sources), out_(out), clock_(std::move(clock)) {}

  // Stores a notification of `kind` for every enabled user `who` selects and pushes it to
  // their open connections.
  void notify(const std::function<bool(const Principal&)>& who, const std::string& kind,
              const nlohmann::json& payload);
  // Calls `each` for every enabled user `who` selects.
  void for_each_user(const std::function<bool(const Principal&)>& who,
                     const std::function<void(const Principal&)>& each);
  // The newest pending notifications of `user`, to a connection that has just said hello.
  void replay_pending(std::uint64_t conn, std::int64_t user);
  // Marks one as acknowledged; false when `user` has no pending notification with this id.
  Result<bool> acknowledge(std::int64_t id, std::int64_t user);
  // Once someone acknowledged an emergency case's alert, the others it reached have nothing
  // left to answer: their pending `alert` notifications of the case are acknowledged and their
  // open connections (here and on other nodes) get `alert.closed` with `about`.
  void close_alerts(std::int64_t case_id, const std::vector<std::int64_t>& users,
                    const nlohmann::json& about);

  // What each event tells whom.
  void consult_requested(const ConsultRow& c);
  void referral(const ReferralRow& r, const std::string& kind);
  // A STAT task's readers; a critical result's requesting institution.
  void task_event(const reading::TaskRow& t, const std::string& type);

 private:
  NotificationStore& store_;
  const HubSources& sources_;
  Outbox& out_;
  storage::Clock clock_;
};

}  // namespace yilian::teleconsult::hub_detail
