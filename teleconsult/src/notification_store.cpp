#include "yilian/teleconsult/notification_store.h"

#include "store_util.h"

#include <chrono>
#include <limits>

#include "yilian/storage/clock.h"
#include "yilian/storage/sql.h"

namespace yilian::teleconsult {

namespace sql = storage::sql;
using sql::id_list;
using sql::query;
using sql::run;
using sql::text_list;
using storage::Database;
using storage::parse_iso8601;
using storage::SchemaStep;
using storage::to_iso8601;
using storage::write;

NotificationStore::NotificationStore(Database& db) : db_(db) {}
NotificationStore::~NotificationStore() = default;

Result<std::int64_t> NotificationStore::notify(std::int64_t user_id, const std::string& kind,
                                               const std::string& payload, std::string_view now) {
  return write(db_, [&](sql::Db& db) -> Result<std::int64_t> {
    std::int64_t id = 0;
    if (Status s = query(
            db,
            "INSERT INTO notifications(user_id, kind, payload, created_at) VALUES(?1, ?2, ?3, ?4) "
            "RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, user_id);
              st.bind(2, kind);
              st.bind(3, payload);
              st.bind(4, now);
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !s)
      return s.error();
    return id;
  });
}

Result<std::vector<NotificationRow>> NotificationStore::pending_notifications(std::int64_t user_id,
                                                                              int limit,
                                                                              std::int64_t before) {
  std::vector<NotificationRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT id, user_id, kind, payload, created_at FROM notifications "
          "WHERE user_id = ?1 AND acked_at IS NULL AND id < ?2 "
          "ORDER BY id DESC LIMIT ?3",
          [&](sql::Stmt& st) {
            st.bind(1, user_id);
            st.bind(2, before > 0 ? before : std::numeric_limits<std::int64_t>::max());
            st.bind(3, std::int64_t{limit});
          },
          [&](sql::Stmt& st) {
            out.push_back({st.int64(0), st.int64(1), st.text(2), st.text(3), st.text(4)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::int64_t> NotificationStore::count_pending_notifications(std::int64_t user_id) {
  std::int64_t n = 0;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(), "SELECT count(*) FROM notifications WHERE user_id = ?1 AND acked_at IS NULL",
          [&](sql::Stmt& st) { st.bind(1, user_id); }, [&](sql::Stmt& st) { n = st.int64(0); });
      !s)
    return s.error();
  return n;
}

Result<bool> NotificationStore::acknowledge(std::int64_t id, std::int64_t user_id,
                                            std::string_view now) {
  return write(db_, [&](sql::Db& db) -> Result<bool> {
    int changed = 0;
    if (Status s = run(
            db,
            "UPDATE notifications SET acked_at = ?3 "
            "WHERE id = ?1 AND user_id = ?2 AND acked_at IS NULL",
            [&](sql::Stmt& st) {
              st.bind(1, id);
              st.bind(2, user_id);
              st.bind(3, now);
            },
            &changed);
        !s)
      return s.error();
    return changed > 0;
  });
}

Result<std::int64_t> NotificationStore::acknowledge_up_to(std::int64_t user_id, std::int64_t up_to,
                                                          std::string_view now) {
  return write(db_, [&](sql::Db& db) -> Result<std::int64_t> {
    int changed = 0;
    if (Status s = run(
            db,
            "UPDATE notifications SET acked_at = ?3 "
            "WHERE user_id = ?1 AND acked_at IS NULL AND id <= ?2",
            [&](sql::Stmt& st) {
              st.bind(1, user_id);
              st.bind(2, up_to);
              st.bind(3, now);
            },
            &changed);
        !s)
      return s.error();
    return std::int64_t{changed};
  });
}

}  // namespace yilian::teleconsult
