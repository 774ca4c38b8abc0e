// The edge's side of the back channel: the clinic's reports, critical results, consults,
// referrals and accounts pulled from the hub (GET /api/edge/v1/sync), kept in the edge's own
// database, and the acknowledgements made at the edge pushed back.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "hub_client.h"
#include "yilian/common/principal.h"
#include "yilian/edge/node.h"
#include "yilian/edge/protocol.h"
#include "yilian/reading/queue_settings.h"
#include "yilian/storage/sql.h"

namespace yilian::edge {

using nlohmann::json;
namespace sql = storage::sql;

namespace {

const std::string kTus = "Tus-Resumable: " + std::string(kTusVersion);

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::int64_t num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
}

// A consult or a referral as the hub sent it, replacing what was kept (the hub sends the whole
// current state).
Status upsert_notice(sql::Db& db, const char* kind, const json& i, const std::string& now) {
  const bool consult = kind[0] == 'c';
  return sql::run(
      db,
      "INSERT INTO edge_notices(kind, hub_id, patient_id, patient_name, topic, urgency, status, "
      "question, answer, counterpart, slot_date, discharge_summary, follow_up_plan, created_at, "
      "updated_at, received_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
      "?14, ?15, ?16) ON CONFLICT(kind, hub_id) DO UPDATE SET patient_id = excluded.patient_id, "
      "patient_name = excluded.patient_name, topic = excluded.topic, urgency = excluded.urgency, "
      "status = excluded.status, question = excluded.question, answer = excluded.answer, "
      "counterpart = excluded.counterpart, slot_date = excluded.slot_date, discharge_summary = "
      "excluded.discharge_summary, follow_up_plan = excluded.follow_up_plan, updated_at = "
      "excluded.updated_at, received_at = excluded.received_at WHERE edge_notices.updated_at != "
      "excluded.updated_at",
      [&](sql::Stmt& st) {
        st.bind(1, std::string(kind));
        st.bind(2, num(i, "id"));
        st.bind(3, str(i, "patientId"));
        st.bind(4, str(i, "patientName"));
        st.bind(5, str(i, consult ? "specialty" : "direction"));
        st.bind(6, str(i, "urgency"));
        st.bind(7, str(i, "status"));
        st.bind(8, str(i, consult ? "question" : "reason"));
        // A declined or cancelled consult says why instead of an opinion.
        std::string answer = str(i, consult ? "opinion" : "answer");
        if (answer.empty() && consult) answer = str(i, "reason");
        st.bind(9, answer);
        st.bind(10, str(i, consult ? "specialist" : "otherInstitution"));
        st.bind(11, str(i, "slotDate"));
        st.bind(12, str(i, "dischargeSummary"));
        st.bind(13, str(i, "followUpPlan"));
        st.bind(14, str(i, "createdAt"));
        st.bind(15, str(i, "updatedAt"));
        st.bind(16, now);
      });
}

}  // namespace

Status EdgeNode::sync_accounts(const json& accounts) {
  identity::Accounts& acc = *options_.accounts;
  const std::string code(kLocalInstitution);
  auto inst = acc.find_institution(code);
  if (!inst.ok()) return inst.error();
  if (!*inst) {
    auto put = acc.put_institution({0, code, "this clinic", "township", "", {}, {}});
    if (!put.ok()) return put.error();
  }
  const std::string now = storage::to_iso8601(options_.clock());
  std::set<std::string> listed;
  for (const json& a : accounts) {
    if (!a.is_object()) continue;
    identity::NewUser u;
    u.username = str(a, "username");
    u.display_name = str(a, "displayName");
    u.institution_code = code;
    u.roles = roles_from_string(str(a, "roles")).value_or(0);
    u.password_hash = str(a, "passwordHash");
    if (u.username.empty() || u.roles == 0 || u.password_hash.empty()) continue;
    listed.insert(u.username);
    const bool disabled = a.value("disabled", false);
    auto known = acc.find_user(u.username);
    if (!known.ok()) return known.error();
    if (!*known) {
      if (auto added = acc.add_user(u, now); !added.ok()) return added.error();
      if (disabled)
        if (Status s = acc.set_disabled(u.username, true, now); !s) return s;
      continue;
    }
    const identity::UserInfo& k = **known;
    if (k.display_name != u.display_name || k.roles != u.roles || k.institution_code != code) {
      if (auto updated = acc.update_user(u, now); !updated.ok()) return updated.error();
    }
    auto login = acc.login_record(u.username);
    if (!login.ok()) return login.error();
    if (*login && (*login)->password_hash != u.password_hash) {
      if (Status s = acc.set_password(u.username, u.password_hash, now); !s) return s;
    }
    if (k.disabled != disabled)
      if (Status s = acc.set_disabled(u.username, disabled, now); !s) return s;
  }
  // Accounts the hub no longer lists for the clinic (removed or moved) sign in no more here.
  auto users = acc.users();
  if (!users.ok()) return users.error();
  for (const identity::UserInfo& u : *users) {
    if (u.institution_code == code && !u.disabled && !listed.count(u.username))
      if (Status s = acc.set_disabled(u.username, true, now); !s) return s;
  }
  return Status::Ok();
}

Status EdgeNode::sync_back_channel(HubClient& hub) {
  // Acknowledgements made here first, so that the pull below brings the hub's record of them.
  std::vector<std::pair<std::int64_t, std::string>> acks;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT hub_id, acknowledged_by FROM edge_inbox WHERE kind = 'critical' AND ack_pending = "
        "1",
        [](sql::Stmt&) {}, [&](sql::Stmt& st) { acks.emplace_back(st.int64(0), st.text(1)); });
  });
  if (!s) return s;
  for (const auto& ack : acks) {
    const std::int64_t id = ack.first;  // (clang 14 lambdas take no structured bindings)
    const std::string& by = ack.second;
    auto r =
        hub.call("POST", "/api/edge/v1/critical-results/" + std::to_string(id) + "/acknowledge",
                 {kTus, "Content-Type: application/json"}, json{{"by", by}}.dump());
    if (!r.ok()) return r.error();
    if (r->status >= 500) return hub_error(*r);
    if (r->status != 200) {
      // Refused for good (acknowledged already, no longer this user's): the hub's record wins.
      spdlog::warn("edge: acknowledgement of critical result {} by {}: {}", id, by,
                   hub_error(*r).message);
    }
    if (Status w = storage::write(db_,
                                  [&](sql::Db& db) {
                                    return sql::run(db,
                                                    "UPDATE edge_inbox SET ack_pending = 0 WHERE "
                                                    "kind = 'critical' AND hub_id = ?1",
                                                    [&](sql::Stmt& st) { st.bind(1, id); });
                                  });
        !w)
      return w;
  }
  for (int page = 0; page < 50; ++page) {
    std::int64_t after = 0;
    if (Status q = storage::read(db_,
                                 [&](sql::Db& db) {
                                   return sql::query(
                                       db,
                                       "SELECT coalesce(MAX(hub_id), 0) FROM edge_inbox "
                                       "WHERE kind = 'report'",
                                       [](sql::Stmt&) {},
                                       [&](sql::Stmt& st) { after = st.int64(0); });
                                 });
        !q)
      return q;
    auto r = hub.call("GET", "/api/edge/v1/sync?after=" + std::to_string(after), {kTus});
    if (!r.ok()) return r.error();
    if (r->status != 200) return hub_error(*r);
    auto j = json::parse(r->body, nullptr, false);
    if (!j.is_object()) return make_error(Errc::unavailable, "the hub's sync answer is not JSON");
    if (options_.accounts && j["accounts"].is_array())
      if (Status a = sync_accounts(j["accounts"]); !a) return a;
    // The hub's priority rules: STAT decided here as the hub decides it. Rules the edge cannot
    // take (a newer hub's) leave the ones it has.
    if (j.contains("priorityRules")) {
      std::lock_guard lock(mu_);
      auto rules = std::make_shared<reading::QueueRules>(*rules_);
      if (Status r = reading::apply_queue_setting(*rules, "priority_rules", j["priorityRules"]);
          r) {
        rules_ = std::move(rules);
        status_.rules_from_hub = true;
      } else {
        spdlog::warn("edge: the hub's priority rules: {}", r.error().message);
      }
    }
    const std::string now = storage::to_iso8601(options_.clock());
    if (Status w = storage::write(
            db_,
            [&](sql::Db& db) -> Status {
              for (const json& i : j.value("reports", json::array())) {
                if (!i.is_object()) continue;
                if (Status q = sql::run(
                        db,
                        "INSERT INTO edge_inbox(kind, hub_id, study_uid, patient_id, patient_name, "
                        "modalities, description, study_date, report_kind, findings, impression, "
                        "critical, author, created_at, received_at) VALUES('report', ?1, ?2, ?3, "
                        "?4, "
                        "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT(kind, hub_id) DO "
                        "NOTHING",
                        [&](sql::Stmt& st) {
                          st.bind(1, num(i, "id"));
                          st.bind(2, str(i, "studyInstanceUid"));
                          st.bind(3, str(i, "patientId"));
                          st.bind(4, str(i, "patientName"));
                          st.bind(5, str(i, "modalities"));
                          st.bind(6, str(i, "description"));
                          st.bind(7, str(i, "studyDate"));
                          st.bind(8, str(i, "kind"));
                          st.bind(9, str(i, "findings"));
                          st.bind(10, str(i, "impression"));
                          st.bind(11, std::int64_t{i.value("critical", false) ? 1 : 0});
                          st.bind(12, str(i, "author"));
                          st.bind(13, str(i, "createdAt"));
                          st.bind(14, now);
                        });
                    !q)
                  return q;
              }
              for (const json& i : j.value("critical", json::array())) {
                if (!i.is_object()) continue;
                if (Status q = sql::run(
                        db,
                        "INSERT INTO edge_inbox(kind, hub_id, study_uid, patient_id, patient_name, "
                        "modalities, impression, critical, created_at, acknowledged_by, "
                        "acknowledged_at, received_at) VALUES('critical', ?1, ?2, ?3, ?4, ?5, ?6, "
                        "1, "
                        "?7, ?8, ?9, ?10) ON CONFLICT(kind, hub_id) DO UPDATE SET acknowledged_by "
                        "= "
                        "excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at "
                        "WHERE "
                        "edge_inbox.ack_pending = 0",
                        [&](sql::Stmt& st) {
                          st.bind(1, num(i, "id"));
                          st.bind(2, str(i, "studyInstanceUid"));
                          st.bind(3, str(i, "patientId"));
                          st.bind(4, str(i, "patientName"));
                          st.bind(5, str(i, "modalities"));
                          st.bind(6, str(i, "impression"));
                          st.bind(7, str(i, "createdAt"));
                          st.bind(8, str(i, "acknowledgedBy"));
                          st.bind(9, str(i, "acknowledgedAt"));
                          st.bind(10, now);
                        });
                    !q)
                  return q;
              }
              for (const char* kind : {"consult", "referral"}) {
                const bool consult = kind[0] == 'c';
                for (const json& i : j.value(consult ? "consults" : "referrals", json::array())) {
                  if (!i.is_object() || num(i, "id") <= 0) continue;
                  if (Status q = upsert_notice(db, kind, i, now); !q) return q;
                }
              }
              return Status::Ok();
            });
        !w)
      return w;
    {
      std::lock_guard lock(mu_);
      last_sync_ = now;
    }
    if (!j.value("more", false)) break;
  }
  return Status::Ok();
}

Result<std::vector<InboxItem>> EdgeNode::inbox() const {
  std::vector<InboxItem> out;
  Status s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT kind, hub_id, study_uid, patient_id, patient_name, modalities, description, "
        "study_date, report_kind, findings, impression, critical, author, created_at, "
        "acknowledged_by, acknowledged_at, ack_pending FROM edge_inbox "
        "ORDER BY kind = 'critical' AND acknowledged_at = '' DESC, created_at DESC LIMIT 500",
        [](sql::Stmt&) {},
        [&](sql::Stmt& st) {
          InboxItem i;
          i.kind = st.text(0);
          i.hub_id = st.int64(1);
          i.study_uid = st.text(2);
          i.patient_id = st.text(3);
          i.patient_name = st.text(4);
          i.modalities = st.text(5);
          i.description = st.text(6);
          i.study_date = st.text(7);
          i.report_kind = st.text(8);
          i.findings = st.text(9);
          i.impression = st.text(10);
          i.critical = st.int64(11) != 0;
          i.author = st.text(12);
          i.created_at = st.text(13);
          i.acknowledged_by = st.text(14);
          i.acknowledged_at = st.text(15);
          i.ack_pending = st.int64(16) != 0;
          out.push_back(std::move(i));
        });
  });
  if (!s) return s.error();
  s = storage::read(db_, [&](sql::Db& db) {
    return sql::query(
        db,
        "SELECT kind, hub_id, patient_id, patient_name, topic, urgency, status, question, answer, "
        "counterpart, slot_date, discharge_summary, follow_up_plan, updated_at FROM edge_notices "
        "ORDER BY updated_at DESC LIMIT 500",
        [](sql::Stmt&) {},
        [&](sql::Stmt& st) {
          InboxItem i;
          i.kind = st.text(0);
          i.hub_id = st.int64(1);
          i.patient_id = st.text(2);
          i.patient_name = st.text(3);
          i.description = st.text(4);
          i.urgency = st.text(5);
          i.status = st.text(6);
          i.findings = st.text(7);
          i.impression = st.text(8);
          i.author = st.text(9);
          i.slot_date = st.text(10);
          i.discharge_summary = st.text(11);
          i.follow_up_plan = st.text(12);
          i.created_at = st.text(13);
          out.push_back(std::move(i));
        });
  });
  if (!s) return s.error();
  // Open critical results first, then everything newest first.
  std::stable_sort(out.begin(), out.end(), [](const InboxItem& a, const InboxItem& b) {
    const bool oa = a.kind == "critical" && a.acknowledged_at.empty();
    const bool ob = b.kind == "critical" && b.acknowledged_at.empty();
    if (oa != ob) return oa;
    return a.created_at > b.created_at;
  });
  return out;
}

Result<bool> EdgeNode::acknowledge_critical(std::int64_t hub_id, const std::string& username) {
  int changed = 0;
  const std::string now = storage::to_iso8601(options_.clock());
  Status s = storage::write(db_, [&](sql::Db& db) {
    return sql::run(
        db,
        "UPDATE edge_inbox SET acknowledged_by = ?2, acknowledged_at = ?3, ack_pending = 1 "
        "WHERE kind = 'critical' AND hub_id = ?1 AND acknowledged_at = ''",
        [&](sql::Stmt& st) {
          st.bind(1, hub_id);
          st.bind(2, username);
          st.bind(3, now);
        },
        &changed);
  });
  if (!s) return s.error();
  if (changed > 0) {
    sync_now_ = true;  // the uploader sends it at its next turn
    cv_.notify_all();
  }
  return changed > 0;
}

std::string EdgeNode::last_sync() const {
  std::lock_guard lock(mu_);
  return last_sync_;
}

}  // namespace yilian::edge
