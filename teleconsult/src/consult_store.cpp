#include "yilian/teleconsult/consult_store.h"

#include "store_util.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "yilian/storage/clock.h"
#include "yilian/storage/sql.h"

namespace yilian::teleconsult {

namespace sql = storage::sql;
using storage::Database;
using storage::parse_iso8601;
using storage::SchemaStep;
using storage::to_iso8601;
using storage::write;
namespace {

// A message's client id, NULL when the client gave none (never matched as a resend).
void bind_client_id(sql::Stmt& st, int i, const std::string& client_id) {
  if (client_id.empty()) {
    st.bind_null(i);
  } else {
    st.bind(i, client_id);
  }
}

using sql::id_list;
using sql::query;
using sql::run;
using sql::text_list;

constexpr const char* kConsultColumns = R"sql(
  c.id, c.institution_id, i.code, c.requester_id, r.username, c.patient_id, c.patient_name,
  c.question, c.urgency, c.specialty, c.status, coalesce(c.assignee_id, 0),
  coalesce(a.username, ''), c.reason, coalesce(c.opinion, ''), coalesce(c.opinion_sha256, ''),
  coalesce(c.concluded_at, ''), c.created_at, c.updated_at, c.last_seq, c.view_version,
  coalesce(c.view_driver, 0), c.view_state
FROM consults c
JOIN institutions i ON i.id = c.institution_id
JOIN users r ON r.id = c.requester_id
LEFT JOIN users a ON a.id = c.assignee_id
)sql";

ConsultRow read_consult(const sql::Stmt& st) {
  ConsultRow c;
  c.id = st.int64(0);
  c.institution_id = st.int64(1);
  c.institution_code = st.text(2);
  c.requester_id = st.int64(3);
  c.requester = st.text(4);
  c.patient_id = st.text(5);
  c.patient_name = st.text(6);
  c.question = st.text(7);
  c.urgency = st.text(8);
  c.specialty = st.text(9);
  c.status = st.text(10);
  c.assignee_id = st.int64(11);
  c.assignee = st.text(12);
  c.reason = st.text(13);
  c.opinion = st.text(14);
  c.opinion_sha256 = st.text(15);
  c.concluded_at = st.text(16);
  c.created_at = st.text(17);
  c.updated_at = st.text(18);
  c.last_seq = st.int64(19);
  c.view_version = st.int64(20);
  c.view_driver = st.int64(21);
  c.view_state = st.text(22);
  return c;
}

Error no_consult() { return make_error(Errc::not_found, "no such consult"); }

}  // namespace

ConsultStore::ConsultStore(Database& db) : db_(db) {}
ConsultStore::~ConsultStore() = default;

Status ConsultStore::write_event(sql::Db& db, const ConsultEvent& e) {
  return run(db,
             "INSERT INTO consult_events(consult_id, at, type, actor, detail) "
             "VALUES(?1, ?2, ?3, ?4, ?5)",
             [&](sql::Stmt& st) {
               st.bind(1, e.consult_id);
               st.bind(2, e.at);
               st.bind(3, e.type);
               st.bind(4, e.actor);
               st.bind(5, e.detail);
             });
}

Result<ConsultRow> ConsultStore::create(const NewConsult& c, std::string_view now,
                                        const std::string& actor) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  std::int64_t id = 0;
  if (Status s = query(
          tx.conn(),
          "INSERT INTO consults(institution_id, requester_id, patient_id, patient_name, question, "
          "urgency, specialty, status, assignee_id, created_at, updated_at) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'requested', ?8, ?9, ?9) RETURNING id",
          [&](sql::Stmt& st) {
            st.bind(1, c.institution_id);
            st.bind(2, c.requester_id);
            st.bind(3, c.patient_id);
            st.bind(4, c.patient_name);
            st.bind(5, c.question);
            st.bind(6, c.urgency);
            st.bind(7, c.specialty);
            if (c.assignee_id) {
              st.bind(8, c.assignee_id);
            } else {
              st.bind_null(8);
            }
            st.bind(9, now);
          },
          [&](sql::Stmt& st) { id = st.int64(0); });
      !s)
    return s.error();
  for (const ConsultAttachment& a : c.attachments) {
    if (Status s =
            run(tx.conn(),
                "INSERT OR IGNORE INTO consult_attachments(consult_id, kind, ref, study_uid) "
                "VALUES(?1, ?2, ?3, ?4)",
                [&](sql::Stmt& st) {
                  st.bind(1, id);
                  st.bind(2, a.kind);
                  st.bind(3, a.ref);
                  st.bind(4, a.study_uid);
                });
        !s)
      return s.error();
  }
  if (Status s = run(tx.conn(),
                     "INSERT INTO consult_participants(consult_id, user_id, role) "
                     "VALUES(?1, ?2, 'requester')",
                     [&](sql::Stmt& st) {
                       st.bind(1, id);
                       st.bind(2, c.requester_id);
                     });
      !s)
    return s.error();
  if (Status s = write_event(
          tx.conn(), {id, std::string(now), "requested", actor, c.urgency + ", " + c.specialty});
      !s)
    return s.error();
  auto row = get_on(tx.conn(), id);
  if (!row.ok()) return row.error();
  if (Status s = tx.commit(); !s) return s.error();
  return **row;
}

Result<std::optional<ConsultRow>> ConsultStore::get_on(sql::Db& db, std::int64_t id) {
  return row_by_id(db, kConsultColumns, "c", id, read_consult);
}

Result<std::optional<ConsultRow>> ConsultStore::get(std::int64_t id) {
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  return get_on(rd->conn(), id);
}

Result<std::vector<ConsultRow>> ConsultStore::list(const ConsultFilter& f) {
  std::string where;
  if (f.participant) {
    where = "c.id IN (SELECT consult_id FROM consult_participants WHERE user_id = " +
            std::to_string(f.participant) + ")";
  }
  if (!f.open_specialties.empty() && !f.open_institutions.empty()) {
    std::string open = "(c.status = 'requested' AND c.specialty IN (" +
                       text_list(f.open_specialties) + ") AND c.institution_id IN (" +
                       id_list(f.open_institutions) + ") AND (c.assignee_id IS NULL OR " +
                       "c.assignee_id = " + std::to_string(f.open_for_user) + "))";
    where = where.empty() ? open : "(" + where + " OR " + open + ")";
  }
  if (where.empty()) return std::vector<ConsultRow>{};
  if (!f.status.empty()) where += " AND c.status = :status";
  std::vector<ConsultRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kConsultColumns + " WHERE " + where +
              " ORDER BY CASE c.urgency WHEN 'emergency' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, "
              "c.id DESC LIMIT :limit OFFSET :offset",
          [&](sql::Stmt& st) {
            st.bind_named(":status", f.status);
            st.bind_named(":limit", f.limit);
            st.bind_named(":offset", f.offset);
          },
          [&](sql::Stmt& st) { out.push_back(read_consult(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ConsultAttachment>> ConsultStore::attachments(std::int64_t id) {
  std::vector<ConsultAttachment> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT kind, ref, study_uid FROM consult_attachments WHERE consult_id = ?1 "
          "ORDER BY kind, ref",
          [&](sql::Stmt& st) { st.bind(1, id); },
          [&](sql::Stmt& st) {
            out.push_back({st.text(0), st.text(1), st.text(2)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ConsultParticipant>> ConsultStore::participants(std::int64_t id) {
  std::vector<ConsultParticipant> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT p.user_id, u.username, p.role, p.delivered_seq, p.read_seq "
          "FROM consult_participants p JOIN users u ON u.id = p.user_id "
          "WHERE p.consult_id = ?1 ORDER BY p.role DESC, u.username",
          [&](sql::Stmt& st) { st.bind(1, id); },
          [&](sql::Stmt& st) {
            out.push_back({st.int64(0), st.text(1), st.text(2), st.int64(3), st.int64(4)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<std::int64_t>> ConsultStore::consulting_institutions(std::string_view patient_id,
                                                                        std::int64_t user_id) {
  std::vector<std::int64_t> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT DISTINCT c.institution_id FROM consults c JOIN consult_participants p ON "
          "p.consult_id = c.id WHERE c.patient_id = ?1 AND p.user_id = ?2 AND "
          "c.status NOT IN ('declined', 'cancelled')",
          [&](sql::Stmt& st) {
            st.bind(1, patient_id);
            st.bind(2, user_id);
          },
          [&](sql::Stmt& st) { out.push_back(st.int64(0)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ConsultRow>> ConsultStore::patient_consults(
    std::string_view patient_id, const std::vector<std::int64_t>& institutions) {
  std::vector<ConsultRow> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          std::string("SELECT ") + kConsultColumns +
              " WHERE c.patient_id = ?1 AND c.institution_id IN (" + id_list(institutions) +
              ") ORDER BY c.id DESC LIMIT " + std::to_string(kPatientListMost),
          [&](sql::Stmt& st) { st.bind(1, patient_id); },
          [&](sql::Stmt& st) { out.push_back(read_consult(st)); });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ConsultEvent>> ConsultStore::events(std::int64_t id) {
  std::vector<ConsultEvent> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT consult_id, at, type, actor, detail FROM consult_events "
          "WHERE consult_id = ?1 ORDER BY id",
          [&](sql::Stmt& st) { st.bind(1, id); },
          [&](sql::Stmt& st) {
            out.push_back({st.int64(0), st.text(1), st.text(2), st.text(3), st.text(4)});
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<ConsultAnnotation>> ConsultStore::annotations(std::int64_t id) {
  std::vector<ConsultAnnotation> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT a.id, a.author_id, u.username, a.at, a.body FROM consult_annotations a "
          "JOIN users u ON u.id = a.author_id WHERE a.consult_id = ?1 ORDER BY a.id",
          [&](sql::Stmt& st) { st.bind(1, id); },
          [&](sql::Stmt& st) {
            out.push_back({st.int64(0), st.int64(1), st.text(2), st.text(3), st.text(4)});
          });
      !s)
    return s.error();
  return out;
}

Result<ConsultRow> ConsultStore::change(
    std::int64_t id, const std::function<Result<ConsultChange>(const ConsultRow&)>& decide,
    std::string_view now) {
  Database::Write tx(db_);
  if (Status s = tx.begin(); !s) return s.error();
  auto current = get_on(tx.conn(), id);
  if (!current.ok()) return current.error();
  if (!current->has_value()) return no_consult();
  auto c = decide(**current);
  if (!c.ok()) return c.error();
  const std::int64_t assignee = c->assignee_id.value_or((*current)->assignee_id);
  if (Status s = run(tx.conn(),
                     "UPDATE consults SET status = ?2, assignee_id = ?3, reason = ?4, "
                     "opinion = ?5, opinion_sha256 = ?6, concluded_at = ?7, updated_at = ?8 "
                     "WHERE id = ?1",
                     [&](sql::Stmt& st) {
                       st.bind(1, id);
                       st.bind(2, c->status);
                       if (assignee) {
                         st.bind(3, assignee);
                       } else {
                         st.bind_null(3);
                       }
                       st.bind(4, c->reason.value_or((*current)->reason));
                       auto opt = [&st](int i, const std::string& v) {
                         if (v.empty()) {
                           st.bind_null(i);
                         } else {
                           st.bind(i, v);
                         }
                       };
                       opt(5, c->opinion.value_or((*current)->opinion));
                       opt(6, c->opinion_sha256.value_or((*current)->opinion_sha256));
                       opt(7, c->concluded_at.value_or((*current)->concluded_at));
                       st.bind(8, now);
                     });
      !s)
    return s.error();
  if (assignee && assignee != (*current)->assignee_id && c->status != "requested") {
    if (Status s = run(tx.conn(),
                       "INSERT OR IGNORE INTO consult_participants(consult_id, user_id, role) "
                       "VALUES(?1, ?2, 'specialist')",
                       [&](sql::Stmt& st) {
                         st.bind(1, id);
                         st.bind(2, assignee);
                       });
        !s)
      return s.error();
  }
  ConsultEvent e = c->event;
  e.consult_id = id;
  e.at = std::string(now);
  if (Status s = write_event(tx.conn(), e); !s) return s.error();
  auto row = get_on(tx.conn(), id);
  if (!row.ok()) return row.error();
  if (Status s = tx.commit(); !s) return s.error();
  return **row;
}

// Each operation of a batch is a nested write of the batch's own (rolled back alone if it
// fails).
template <typename F>
auto ConsultStore::Batch::in_savepoint(F&& f) -> decltype(f()) {
  Database::Write op(db_);
  if (Status s = op.begin(); !s) return s.error();
  ++operations_;
  auto r = f();
  if (r.ok()) {
    if (Status s = op.commit(); !s) return s.error();
  }
  return r;
}

Result<ChatMessage> ConsultStore::Batch::append_message(ChatMessage m, bool& duplicate) {
  std::vector<ChatMessage> one;
  one.push_back(std::move(m));
  auto out = append_messages(std::move(one));
  duplicate = out.front().duplicate;
  return std::move(out.front().message);
}

std::vector<ConsultStore::Batch::Appended> ConsultStore::Batch::append_messages(
    std::vector<ChatMessage> ms) {
  std::vector<Appended> out;
  out.reserve(ms.size());
  if (write_.conn().dialect() != sql::Dialect::postgres) {
    for (ChatMessage& m : ms) {
      bool duplicate = false;
      auto r = append_one(std::move(m), duplicate);
      out.push_back({std::move(r), duplicate});
    }
    return out;
  }
  auto all = in_savepoint([&] { return append_all(ms); });
  if (all.ok()) return std::move(all).value();
  if (ms.size() == 1) {
    out.push_back({all.error(), false});
    return out;
  }
  // One of them failed the statement (a resend twice in one batch, a message too long): each
  // on its own, so that the others are stored.
  for (ChatMessage& m : ms) {
    auto one = in_savepoint([&] { return append_all({m}); });
    if (one.ok()) {
      out.push_back(std::move(one->front()));
    } else {
      out.push_back({one.error(), false});
    }
  }
  return out;
}

// SQLite: the resend check, the next seq and the insert, one statement each (no round trips).
Result<ChatMessage> ConsultStore::Batch::append_one(ChatMessage m, bool& duplicate) {
  duplicate = false;
  return in_savepoint([&]() -> Result<ChatMessage> {
    if (!m.client_id.empty()) {
      std::optional<ChatMessage> prior;
      if (Status s = query(
              write_.conn(),
              "SELECT seq, at, text, attachments FROM consult_messages "
              "WHERE consult_id = ?1 AND author_id = ?2 AND client_id = ?3",
              [&](sql::Stmt& st) {
                st.bind(1, m.consult_id);
                st.bind(2, m.author_id);
                st.bind(3, m.client_id);
              },
              [&](sql::Stmt& st) {
                ChatMessage p = m;
                p.seq = st.int64(0);
                p.at = st.text(1);
                p.text = st.text(2);
                p.attachments = st.text(3);
                prior = p;
              });
          !s)
        return s.error();
      if (prior) {
        duplicate = true;
        return *prior;
      }
    }
    bool found = false;
    if (Status s = query(
            write_.conn(),
            "UPDATE consults SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
            [&](sql::Stmt& st) { st.bind(1, m.consult_id); },
            [&](sql::Stmt& st) {
              m.seq = st.int64(0);
              found = true;
            });
        !s)
      return s.error();
    if (!found) return no_consult();
    if (Status s = run(write_.conn(),
                       "INSERT INTO consult_messages(consult_id, seq, author_id, client_id, at, "
                       "text, attachments) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                       [&](sql::Stmt& st) {
                         st.bind(1, m.consult_id);
                         st.bind(2, m.seq);
                         st.bind(3, m.author_id);
                         bind_client_id(st, 4, m.client_id);
                         st.bind(5, m.at);
                         st.bind(6, m.text);
                         st.bind(7, m.attachments);
                       });
        !s)
      return s.error();
    return m;
  });
}

Result<std::vector<std::int64_t>> ConsultStore::Batch::lock_consults(std::vector<std::int64_t> ids,
                                                                     bool wait) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  if (write_.conn().dialect() != sql::Dialect::postgres || ids.empty()) return ids;
  const std::string array = "{" + id_list(ids) + "}";
  std::vector<std::int64_t> taken;
  Status s = in_savepoint([&] {
    return query(
        write_.conn(),
        wait ? "SELECT id FROM consults WHERE id = ANY(CAST(?1 AS BIGINT[])) ORDER BY id "
               "FOR NO KEY UPDATE"
             : "SELECT id FROM consults WHERE id = ANY(CAST(?1 AS BIGINT[])) ORDER BY id "
               "FOR NO KEY UPDATE SKIP LOCKED",
        [&](sql::Stmt& st) { st.bind(1, array); },
        [&](sql::Stmt& st) { taken.push_back(st.int64(0)); });
  });
  if (!s) return s.error();
  return taken;
}

// PostgreSQL: every message's resend check, the consults' next seqs and the inserts in one
// statement (one round trip for the whole batch; the consults' rows stay locked until the
// batch commits). Seqs are given per consult in the messages' order.
Result<std::vector<ConsultStore::Batch::Appended>> ConsultStore::Batch::append_all(
    const std::vector<ChatMessage>& ms) {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const ChatMessage& m = ms[i];
    rows.push_back(
        {{"i", i},
         {"c", m.consult_id},
         {"a", m.author_id},
         {"k", m.client_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.client_id)},
         {"t", m.at},
         {"x", m.text},
         {"y", m.attachments}});
  }
  std::string input;
  try {
    input = rows.dump();
  } catch (const nlohmann::json::exception&) {
    return make_error(Errc::invalid_argument, "a chat message is not valid UTF-8");
  }
  std::vector<std::optional<Appended>> found(ms.size());
  Status s = query(
      write_.conn(),
      "WITH input AS (SELECT * FROM json_to_recordset(CAST(?1 AS JSON)) "
      "AS u(i INTEGER, c BIGINT, a BIGINT, k TEXT, t TEXT, x TEXT, y TEXT)), "
      "prior AS (SELECT input.i, m.seq, m.at, m.text, m.attachments FROM input "
      "JOIN consult_messages m ON m.consult_id = input.c AND m.author_id = input.a "
      "AND m.client_id = input.k), "
      "fresh AS (SELECT input.*, row_number() OVER (PARTITION BY input.c ORDER BY input.i) AS n "
      "FROM input WHERE NOT EXISTS (SELECT 1 FROM prior WHERE prior.i = input.i)), "
      "counts AS (SELECT c, count(*) AS total FROM fresh GROUP BY c), "
      "next AS (UPDATE consults SET last_seq = last_seq + counts.total FROM counts "
      "WHERE consults.id = counts.c RETURNING consults.id, consults.last_seq - counts.total "
      "AS base), "
      "numbered AS (SELECT fresh.*, next.base + fresh.n AS seq FROM fresh "
      "JOIN next ON next.id = fresh.c), "
      "added AS (INSERT INTO consult_messages(consult_id, seq, author_id, client_id, at, text, "
      "attachments) SELECT c, seq, a, k, t, x, y FROM numbered) "
      "SELECT i, 0, seq, '', '', '' FROM numbered "
      "UNION ALL SELECT i, 1, seq, at, text, attachments FROM prior",
      [&](sql::Stmt& st) { st.bind(1, input); },
      [&](sql::Stmt& st) {
        const auto i = static_cast<std::size_t>(st.int64(0));
        if (i >= ms.size()) return;
        ChatMessage m = ms[i];
        m.seq = st.int64(2);
        const bool duplicate = st.int64(1) == 1;
        if (duplicate) {
          m.at = st.text(3);
          m.text = st.text(4);
          m.attachments = st.text(5);
        }
        found[i] = Appended{std::move(m), duplicate};
      });
  if (!s) return s.error();
  std::vector<Appended> out;
  out.reserve(ms.size());
  for (auto& f : found) {
    if (f) {
      out.push_back(std::move(*f));
    } else {
      out.push_back({no_consult(), false});
    }
  }
  return out;
}

Result<std::pair<std::int64_t, std::int64_t>> ConsultStore::Batch::receipt(std::int64_t consult,
                                                                           std::int64_t user,
                                                                           std::int64_t delivered,
                                                                           std::int64_t read) {
  return in_savepoint([&]() -> Result<std::pair<std::int64_t, std::int64_t>> {
    std::optional<std::pair<std::int64_t, std::int64_t>> out;
    if (Status s = query(
            write_.conn(),
            "UPDATE consult_participants SET delivered_seq = max(delivered_seq, ?3, ?4), "
            "read_seq = max(read_seq, ?4) WHERE consult_id = ?1 AND user_id = ?2 "
            "RETURNING delivered_seq, read_seq",
            [&](sql::Stmt& st) {
              st.bind(1, consult);
              st.bind(2, user);
              st.bind(3, delivered);
              st.bind(4, read);
            },
            [&](sql::Stmt& st) { out = std::make_pair(st.int64(0), st.int64(1)); });
        !s)
      return s.error();
    if (!out) return make_error(Errc::permission_denied, "not a participant of this consult");
    return *out;
  });
}

Result<std::int64_t> ConsultStore::Batch::save_view(std::int64_t consult, std::int64_t driver,
                                                    const std::string& state) {
  return in_savepoint([&]() -> Result<std::int64_t> {
    std::optional<std::int64_t> version;
    if (Status s = query(
            write_.conn(),
            "UPDATE consults SET view_version = view_version + 1, view_driver = ?2, "
            "view_state = ?3 WHERE id = ?1 RETURNING view_version",
            [&](sql::Stmt& st) {
              st.bind(1, consult);
              st.bind(2, driver);
              st.bind(3, state);
            },
            [&](sql::Stmt& st) { version = st.int64(0); });
        !s)
      return s.error();
    if (!version) return no_consult();
    return *version;
  });
}

Result<std::int64_t> ConsultStore::Batch::add_annotation(std::int64_t consult, std::int64_t author,
                                                         std::string_view at,
                                                         const std::string& body) {
  return in_savepoint([&]() -> Result<std::int64_t> {
    std::int64_t id = 0;
    if (Status s = query(
            write_.conn(),
            "INSERT INTO consult_annotations(consult_id, author_id, at, body) "
            "VALUES(?1, ?2, ?3, ?4) RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, consult);
              st.bind(2, author);
              st.bind(3, at);
              st.bind(4, body);
            },
            [&](sql::Stmt& st) { id = st.int64(0); });
        !s)
      return s.error();
    return id;
  });
}

ConsultStore::Batch::Batch(Database& db) : db_(db), write_(db) {}
ConsultStore::Batch::~Batch() = default;

Status ConsultStore::Batch::commit() {
  if (done_) return Status::Ok();
  done_ = true;
  return write_.commit();
}

Result<std::unique_ptr<ConsultStore::Batch>> ConsultStore::begin_batch() {
  std::unique_ptr<Batch> b(new Batch(db_));
  if (Status s = b->write_.begin(); !s) return s.error();
  return b;
}

Result<std::vector<ChatMessage>> ConsultStore::messages(std::int64_t consult,
                                                        std::int64_t after_seq,
                                                        std::int64_t limit) {
  std::vector<ChatMessage> out;
  auto rd = db_.read();
  if (!rd.ok()) return rd.error();
  if (Status s = query(
          rd->conn(),
          "SELECT m.consult_id, m.seq, m.author_id, u.username, coalesce(m.client_id, ''), m.at, "
          "m.text, m.attachments FROM consult_messages m JOIN users u ON u.id = m.author_id "
          "WHERE m.consult_id = ?1 AND m.seq > ?2 ORDER BY m.seq LIMIT ?3",
          [&](sql::Stmt& st) {
            st.bind(1, consult);
            st.bind(2, after_seq);
            st.bind(3, limit);
          },
          [&](sql::Stmt& st) {
            out.push_back({st.int64(0), st.int64(1), st.int64(2), st.text(3), st.text(4),
                           st.text(5), st.text(6), st.text(7)});
          });
      !s)
    return s.error();
  return out;
}

}  // namespace yilian::teleconsult
