// Notifications (schema v6): one row per user, kept until that user acknowledges it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/storage/database.h"

namespace yilian::teleconsult {

struct NotificationRow {
  std::int64_t id = 0, user_id = 0;
  std::string kind, payload, created_at;
};

class NotificationStore {
 public:
  // `db` must hold the migrated consortium schema.
  explicit NotificationStore(storage::Database& db);
  ~NotificationStore();
  NotificationStore(const NotificationStore&) = delete;
  NotificationStore& operator=(const NotificationStore&) = delete;

  // Notifications: one row per user, kept until that user acknowledges it.
  Result<std::int64_t> notify(std::int64_t user_id, const std::string& kind,
                              const std::string& payload, std::string_view now);
  // The user's unacknowledged notifications, newest first: at most `limit`, only those with an
  // id below `before` when it is positive (paging back through a backlog).
  Result<std::vector<NotificationRow>> pending_notifications(std::int64_t user_id, int limit,
                                                             std::int64_t before = 0);
  Result<std::int64_t> count_pending_notifications(std::int64_t user_id);
  // False when it is not that user's or was acknowledged already.
  Result<bool> acknowledge(std::int64_t id, std::int64_t user_id, std::string_view now);
  // Acknowledges every pending notification of the user up to and including `up_to`;
  // how many that was.
  Result<std::int64_t> acknowledge_up_to(std::int64_t user_id, std::int64_t up_to,
                                         std::string_view now);

 private:
  storage::Database& db_;
};

}  // namespace yilian::teleconsult
