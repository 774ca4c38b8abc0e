#include "yilian/teleconsult/referral_store.h"

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

ReferralStore::ReferralStore(Database& db) : db_(db) {}
ReferralStore::~ReferralStore() = default;

namespace {

constexpr const char* kReferralColumns = R"sql(
  r.id, r.direction, r.urgency, r.patient_id, r.patient_name, r.from_institution,
  r.to_institution, f.code, t.code, r.requested_by, r.reason, r.status, r.answer, r.slot_date,
  r.discharge_summary, r.follow_up_plan, r.studies, r.created_at, r.updated_at,
  r.answer_due_at, coalesce(r.escalated_at, '')
FROM referrals r JOIN institutions f ON f.id = r.from_institution
JOIN institutions t ON t.id = r.to_institution
)sql";

ReferralRow read_referral(const sql::Stmt& st) {
  ReferralRow r;
  r.id = st.int64(0);
  r.direction = st.text(1);
  r.urgency = st.text(2);
  r.patient_id = st.text(3);
  r.patient_name = st.text(4);
  r.from_institution = st.int64(5);
  r.to_institution = st.int64(6);
  r.from_code = st.text(7);
  r.to_code = st.text(8);
  r.requested_by = st.text(9);
  r.reason = st.text(10);
  r.status = st.text(11);
  r.answer = st.text(12);
  r.slot_date = st.text(13);
  r.discharge_summary = st.text(14);
  r.follow_up_plan = st.text(15);
  r.studies = st.text(16);
  r.created_at = st.text(17);
  r.updated_at = st.text(18);
  r.answer_due_at = st.text(19);
  r.escalated_at = st.text(20);
  return r;
}

// YYYY-MM-DD plus `days`.
std::string add_days(const std::string& date, int days) {
  auto t = parse_iso8601(date + "T00:00:00Z");
  if (!t) return date;
  return to_iso8601(*t + std::chrono::hours(24 * days)).substr(0, 10);
}

}  // namespace

Result<ReferralRow> ReferralStore::create_referral(const ReferralRow& r) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::int64_t id = 0;
  if (Status s = query(
          tx.conn(),
          "INSERT INTO referrals(direction, urgency, patient_id, patient_name, from_institution, "
          "to_institution, requested_by, reason, status, discharge_summary, follow_up_plan, "
          "studies, created_at, updated_at, answer_due_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
          "?8, 'requested', ?9, ?10, ?11, ?12, ?12, ?13) RETURNING id",
          [&](sql::Stmt& st) {
            st.bind(1, r.direction);
            st.bind(2, r.urgency);
            st.bind(3, r.patient_id);
            st.bind(4, r.patient_name);
            st.bind(5, r.from_institution);
            st.bind(6, r.to_institution);
            st.bind(7, r.requested_by);
            st.bind(8, r.reason);
            st.bind(9, r.discharge_summary);
            st.bind(10, r.follow_up_plan);
            st.bind(11, r.studies);
            st.bind(12, r.created_at);
            st.bind(13, r.answer_due_at);
          },
          [&](sql::Stmt& st) { id = st.int64(0); });
      !s)
    return s.error();
  if (Status s = run(tx.conn(),
                     "INSERT INTO referral_events(referral_id, at, type, actor, detail) "
                     "VALUES(?1, ?2, 'requested', ?3, ?4)",
                     [&](sql::Stmt& st) {
                       st.bind(1, id);
                       st.bind(2, r.created_at);
                       st.bind(3, r.requested_by);
                       st.bind(4, r.direction + ", " + r.urgency);
                     });
      !s)
    return s.error();
  auto row = row_by_id(tx.conn(), kReferralColumns, "r", id, read_referral);
  if (!row.ok()) return row.error();
  if (Status s = tx.commit(); !s) return s.error();
  return **row;
}

Result<std::optional<ReferralRow>> ReferralStore::get_referral(std::int64_t id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  return row_by_id(rd->conn(), kReferralColumns, "r", id, read_referral);
}

Result<std::vector<ReferralRow>> ReferralStore::referrals(
    const std::vector<std::int64_t>& institutions, const std::string& status) {
  std::vector<ReferralRow> out;
  const std::string ids = id_list(institutions);
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kReferralColumns + " WHERE (r.from_institution IN (" + ids +
              ") OR r.to_institution IN (" + ids + "))" +
              (status.empty() ? "" : " AND r.status = :status") +
              " ORDER BY CASE r.urgency WHEN 'urgent' THEN 0 ELSE 1 END, r.id DESC LIMIT 500",
          [&](sql::Stmt& st) { st.bind_named(":status", status); },
          [&](sql::Stmt& st) { out.push_back(read_referral(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ReferralRow>> ReferralStore::patient_referrals(
    std::string_view patient_id, const std::vector<std::int64_t>& from_institutions) {
  std::vector<ReferralRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kReferralColumns +
              " WHERE r.patient_id = ?1 AND r.from_institution IN (" + id_list(from_institutions) +
              ") ORDER BY r.id DESC LIMIT " + std::to_string(kPatientListMost),
          [&](sql::Stmt& st) { st.bind(1, patient_id); },
          [&](sql::Stmt& st) { out.push_back(read_referral(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<std::int64_t>> ReferralStore::referring_institutions(
    std::string_view patient_id, const std::vector<std::int64_t>& to_institutions) {
  std::vector<std::int64_t> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT DISTINCT from_institution FROM referrals WHERE patient_id = ?1 AND "
          "to_institution IN (" +
              id_list(to_institutions) + ") AND status NOT IN ('rejected', 'cancelled')",
          [&](sql::Stmt& st) { st.bind(1, patient_id); },
          [&](sql::Stmt& st) { out.push_back(st.int64(0)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ReferralStore::ReferralCount>> ReferralStore::referral_counts(
    std::string_view from, std::string_view to) {
  std::vector<ReferralCount> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT f.code, t.code, r.direction, r.status, count(*) FROM referrals r "
          "JOIN institutions f ON f.id = r.from_institution "
          "JOIN institutions t ON t.id = r.to_institution "
          "WHERE r.created_at >= ?1 AND r.created_at < ?2 "
          "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
          [&](sql::Stmt& st) {
            st.bind(1, from);
            st.bind(2, to);
          },
          [&](sql::Stmt& st) {
            out.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.int64(4)});
          });
      !s)
    return s.error();
  return out;
}

Result<ReferralRow> ReferralStore::change_referral(
    std::int64_t id, const std::function<Result<ReferralChange>(const ReferralRow&)>& decide,
    std::string_view now) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  auto load = [&] { return row_by_id(tx.conn(), kReferralColumns, "r", id, read_referral); };
  auto current = load();
  if (!current.ok()) return current.error();
  if (!current->has_value()) return make_error(Errc::not_found, "no such referral");
  auto c = decide(**current);
  if (!c.ok()) return c.error();
  std::string slot = (*current)->slot_date;
  if (c->take_slot) {
    // The receiving institution's daily referral quota (10 when none is set).
    std::int64_t daily = 10;
    if (Status s = query(
            tx.conn(), "SELECT daily FROM referral_quotas WHERE institution_id = ?1",
            [&](sql::Stmt& st) { st.bind(1, (*current)->to_institution); },
            [&](sql::Stmt& st) { daily = st.int64(0); });
        !s)
      return s.error();
    slot.clear();
    for (int d = 0; d < c->slot_days && slot.empty(); ++d) {
      const std::string day = add_days(c->slot_from, d);
      std::int64_t used = 0;
      if (Status s = query(
              tx.conn(),
              "SELECT count(*) FROM referrals WHERE to_institution = ?1 AND slot_date = ?2 AND "
              "status IN ('scheduled','arrived','completed')",
              [&](sql::Stmt& st) {
                st.bind(1, (*current)->to_institution);
                st.bind(2, day);
              },
              [&](sql::Stmt& st) { used = st.int64(0); });
          !s)
        return s.error();
      if (used < daily) slot = day;
    }
    if (slot.empty()) {
      return make_error(Errc::conflict, "no referral slot left in the next " +
                                            std::to_string(c->slot_days) + " days");
    }
  }
  if (Status s = run(tx.conn(),
                     "UPDATE referrals SET status = ?2, answer = ?3, slot_date = ?4, "
                     "updated_at = ?5 WHERE id = ?1",
                     [&](sql::Stmt& st) {
                       st.bind(1, id);
                       st.bind(2, c->status);
                       st.bind(3, c->answer.value_or((*current)->answer));
                       st.bind(4, slot);
                       st.bind(5, now);
                     });
      !s)
    return s.error();
  if (Status s = run(tx.conn(),
                     "INSERT INTO referral_events(referral_id, at, type, actor, detail) "
                     "VALUES(?1, ?2, ?3, ?4, ?5)",
                     [&](sql::Stmt& st) {
                       st.bind(1, id);
                       st.bind(2, now);
                       st.bind(3, c->type);
                       st.bind(4, c->actor);
                       st.bind(5, c->take_slot ? "slot " + slot : c->detail);
                     });
      !s)
    return s.error();
  auto row = load();
  if (!row.ok()) return row.error();
  if (Status s = tx.commit(); !s) return s.error();
  return **row;
}

Result<std::vector<ConsultEvent>> ReferralStore::referral_events(std::int64_t id) {
  std::vector<ConsultEvent> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT referral_id, at, type, actor, detail FROM referral_events "
          "WHERE referral_id = ?1 ORDER BY id",
          [&](sql::Stmt& st) { st.bind(1, id); },
          [&](sql::Stmt& st) {
            out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4)});
          });
      !s)
    return s.error();
  return out;
}

Status ReferralStore::set_referral_quota(std::int64_t institution_id, int daily) {
  return write(db_, [&](sql::Db& db) {
    return run(db,
               "INSERT INTO referral_quotas(institution_id, daily) VALUES(?1, ?2) "
               "ON CONFLICT(institution_id) DO UPDATE SET daily = excluded.daily",
               [&](sql::Stmt& st) {
                 st.bind(1, institution_id);
                 st.bind(2, std::int64_t{daily});
               });
  });
}

Result<std::vector<ReferralRow>> ReferralStore::escalate_referrals(std::string_view now) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::vector<ReferralRow> out;
  if (Status s = query(
          tx.conn(),
          std::string("SELECT ") + kReferralColumns +
              " WHERE r.status = 'requested' AND r.escalated_at IS NULL AND r.answer_due_at < ?1",
          [&](sql::Stmt& st) { st.bind(1, now); },
          [&](sql::Stmt& st) { out.push_back(read_referral(st)); });
      !s)
    return s.error();
  for (ReferralRow& r : out) {
    r.escalated_at = std::string(now);
    if (Status s = run(tx.conn(), "UPDATE referrals SET escalated_at = ?2 WHERE id = ?1",
                       [&](sql::Stmt& st) {
                         st.bind(1, r.id);
                         st.bind(2, now);
                       });
        !s)
      return s.error();
    if (Status s = run(tx.conn(),
                       "INSERT INTO referral_events(referral_id, at, type, actor, detail) "
                       "VALUES(?1, ?2, 'escalated', 'system', 'no answer by ' || ?3)",
                       [&](sql::Stmt& st) {
                         st.bind(1, r.id);
                         st.bind(2, now);
                         st.bind(3, r.answer_due_at);
                       });
        !s)
      return s.error();
  }
  if (Status s = tx.commit(); !s) return s.error();
  return out;
}

}  // namespace yilian::teleconsult
