#include "notifier.h"

#include <spdlog/spdlog.h>

#include <map>

#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/referral_rules.h"

namespace yilian::teleconsult::hub_detail {

void Notifier::notify(const std::function<bool(const Principal&)>& who, const std::string& kind,
                      const json& payload) {
  const std::string at = storage::to_iso8601(clock_());
  std::map<std::int64_t, std::string> sent;  // user -> message
  for_each_user(who, [&](const Principal& p) {
    auto id = store_.notify(p.user_id, kind, json_text(payload), at);
    if (!id.ok()) {
      spdlog::error("teleconsult: notification for {} not stored: {}", p.username,
                    id.error().message);
      return;
    }
    sent[p.user_id] = proto::make("notification",
                                  {{"id", *id}, {"kind", kind}, {"at", at}, {"payload", payload}});
  });
  out_.each_user_connection([&](std::uint64_t conn, const Principal& p) {
    if (auto it = sent.find(p.user_id); it != sent.end()) out_.send(conn, it->second);
  });
  if (sent.empty()) return;
  json to_users = json::object();  // the same frames to the users' connections on other nodes
  for (const auto& [user, text] : sent) to_users[std::to_string(user)] = text;
  out_.relay({{"k", "users"}, {"m", std::move(to_users)}});
}

void Notifier::for_each_user(const std::function<bool(const Principal&)>& who,
                             const std::function<void(const Principal&)>& each) {
  if (!sources_.users) return;
  auto users = sources_.users();
  if (!users.ok()) {
    spdlog::error("teleconsult: cannot list users to notify: {}", users.error().message);
    return;
  }
  for (const Principal& p : *users) {
    if (who(p)) each(p);
  }
}

// Only the newest few are replayed: a user back after a long absence must not get thousands of
// frames at connect (the welcome says how many are pending; the rest are paged over REST).
void Notifier::replay_pending(std::uint64_t conn, std::int64_t user) {
  auto pending = store_.pending_notifications(user, kNotificationsReplayedAtHello);
  if (!pending.ok()) return;
  for (auto it = pending->rbegin(); it != pending->rend(); ++it) {
    const NotificationRow& n = *it;
    out_.send(conn,
              proto::make("notification", {{"id", n.id},
                                           {"kind", n.kind},
                                           {"at", n.created_at},
                                           {"payload", json::parse(n.payload, nullptr, false)}}));
  }
}

Result<bool> Notifier::acknowledge(std::int64_t id, std::int64_t user) {
  return store_.acknowledge(id, user, storage::to_iso8601(clock_()));
}

void Notifier::close_alerts(std::int64_t case_id, const std::vector<std::int64_t>& users,
                            const json& about) {
  const std::string at = storage::to_iso8601(clock_());
  const std::string frame = proto::make("alert.closed", about);
  std::map<std::int64_t, std::string> sent;
  for (std::int64_t user : users) {
    auto pending = store_.pending_notifications(user, 500);
    if (!pending.ok()) continue;
    for (const NotificationRow& n : *pending) {
      if (n.kind != "alert") continue;
      const json p = json::parse(n.payload, nullptr, false);
      if (!p.is_object() || p.value("case", std::int64_t{0}) != case_id) continue;
      if (auto done = store_.acknowledge(n.id, user, at); done.ok() && *done) sent[user] = frame;
    }
  }
  if (sent.empty()) return;
  out_.each_user_connection([&](std::uint64_t conn, const Principal& p) {
    if (auto it = sent.find(p.user_id); it != sent.end()) out_.send(conn, it->second);
  });
  json to_users = json::object();
  for (const auto& [user, text] : sent) to_users[std::to_string(user)] = text;
  out_.relay({{"k", "users"}, {"m", std::move(to_users)}});
}

void Notifier::consult_requested(const ConsultRow& c) {
  notify([&c](const Principal& p) { return may_take(p, c); }, "consult_request",
         {{"consult", c.id},
          {"urgency", c.urgency},
          {"specialty", c.specialty},
          {"institution", c.institution_code},
          {"requester", c.requester},
          {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}}});
}

void Notifier::referral(const ReferralRow& r, const std::string& kind) {
  notify(
      [&r](const Principal& p) {
        return works_at(p, r.from_institution) || works_at(p, r.to_institution);
      },
      kind,
      {{"referral", r.id},
       {"status", r.status},
       {"direction", r.direction},
       {"urgency", r.urgency},
       {"from", r.from_code},
       {"to", r.to_code},
       {"slotDate", r.slot_date.empty() ? json(nullptr) : json(r.slot_date)},
       {"patient", {{"id", r.patient_id}, {"name", r.patient_name}}}});
}

void Notifier::task_event(const reading::TaskRow& t, const std::string& type) {
  const json about = {{"task", t.id},
                      {"studyInstanceUid", t.study_uid},
                      {"institution", t.institution_code},
                      {"modalities", t.modality},
                      {"patient", {{"id", t.patient_id}, {"name", t.patient_name}}},
                      {"reason", t.priority_reason}};
  if (type == "routed" && t.priority == 0) {
    // Readers who would claim this task (the queue's own rule, identity/policy.h).
    notify(
        [&t](const Principal& p) {
          return identity::reads_task(p, {t.institution_id, t.is_ecg, t.service});
        },
        "stat_task", about);
  }
  if (type == "critical_sent") {
    notify(
        [&t](const Principal& p) {
          return p.institution_id == t.institution_id && identity::has_clinical_role(p);
        },
        "critical_result", about);
  }
}

}  // namespace yilian::teleconsult::hub_detail
