// The hub's notifications and emergency cases: who is told what, when a queue event opens a
// case, the case clocks.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "case_view.h"
#include "hub_internal.h"
#include "yilian/common/text.h"
#include "yilian/identity/policy.h"
#include "yilian/reading/queue_rules.h"
#include "yilian/teleconsult/consult_rules.h"
#include "yilian/teleconsult/emergency_rules.h"
#include "yilian/teleconsult/hub.h"
#include "yilian/teleconsult/referral_rules.h"

namespace yilian::teleconsult {

using namespace hub_detail;  // NOLINT(google-build-using-namespace)

namespace {

// Readers who would claim this task (the queue's own rule, identity/policy.h).
bool reads(const Principal& p, const reading::TaskRow& t) {
  return identity::reads_task(p, {t.institution_id, t.is_ecg, t.service});
}

}  // namespace

void Hub::notify(const std::function<bool(const Principal&)>& who, const std::string& kind,
                 const json& payload) {
  if (!sources_.users) return;
  auto users = sources_.users();
  if (!users.ok()) {
    spdlog::error("teleconsult: cannot list users to notify: {}", users.error().message);
    return;
  }
  const std::string at = now();
  std::map<std::int64_t, std::string> sent;  // user -> message
  for (const Principal& p : *users) {
    if (!who(p)) continue;
    auto id = stores_.notifications.notify(p.user_id, kind, json_text(payload), at);
    if (!id.ok()) {
      spdlog::error("teleconsult: notification for {} not stored: {}", p.username,
                    id.error().message);
      continue;
    }
    sent[p.user_id] = proto::make("notification",
                                  {{"id", *id}, {"kind", kind}, {"at", at}, {"payload", payload}});
  }
  for (const auto& [conn, c] : conns_) {
    if (!c.who) continue;
    if (auto it = sent.find(c.who->user_id); it != sent.end()) send(conn, it->second);
  }
}

// Only the newest few are replayed: a user back after a long absence must not get thousands of
// frames at connect (the welcome says how many are pending; the rest are paged over REST).
void Hub::send_pending_notifications(std::uint64_t conn, const Conn& c) {
  auto pending =
      stores_.notifications.pending_notifications(c.who->user_id, kNotificationsReplayedAtHello);
  if (!pending.ok()) return;
  for (auto it = pending->rbegin(); it != pending->rend(); ++it) {
    const teleconsult::NotificationRow& n = *it;
    send(conn, proto::make("notification", {{"id", n.id},
                                            {"kind", n.kind},
                                            {"at", n.created_at},
                                            {"payload", json::parse(n.payload, nullptr, false)}}));
  }
}

Result<teleconsult::CaseRow> Hub::open_case_for_task(const reading::TaskRow& t,
                                                     const std::string& kind,
                                                     const std::string& source,
                                                     const std::string& reason,
                                                     const std::string& point) {
  teleconsult::CaseRow c;
  c.kind = kind;
  c.institution_id = t.institution_id;
  c.patient_id = t.patient_id;
  c.patient_name = t.patient_name;
  c.study_uid = t.study_uid;
  c.source = source;
  c.reason = reason;
  c.opened_by = "automated";
  c.opened_at = now();
  bool existed = false;
  auto row = stores_.cases.open_case(c, existed);
  if (!row.ok()) return row.error();
  if (!existed) {
    // When the study reached the hub is the first time point the system knows itself.
    teleconsult::TimePointRow tp{0, point, t.received_at, "system", now(), "study received"};
    if (Status s = stores_.cases.record_time_point(row->id, tp); !s) return s.error();
    publish_case(row->id, true);
  }
  return row;
}

void Hub::handle_task_event(std::int64_t task, const std::string& type, const std::string& detail) {
  if (!sources_.task) return;
  auto row = sources_.task(task);
  if (!row.ok() || !row->has_value()) return;
  const reading::TaskRow t = **row;
  // Open worklists and township screens follow every change of the tasks their user sees.
  const std::string live = proto::make(
      "task", {{"task", t.id},
               {"event", type},
               {"status", t.status},
               {"priority", reading::priority_name(static_cast<reading::Priority>(t.priority))},
               {"claimedBy", t.claimed_by_name}});
  for (const auto& [conn, c] : conns_) {
    if (!c.who) continue;
    const bool own =
        c.who->institution_id == t.institution_id && identity::has_clinical_role(*c.who);
    if (own || reads(*c.who, t)) send(conn, live);
  }
  const json about = {{"task", t.id},
                      {"studyInstanceUid", t.study_uid},
                      {"institution", t.institution_code},
                      {"modalities", t.modality},
                      {"patient", {{"id", t.patient_id}, {"name", t.patient_name}}},
                      {"reason", t.priority_reason}};
  if (type == "routed" && t.priority == 0) {
    notify([&t](const Principal& p) { return reads(p, t); }, "stat_task", about);
  }
  // Suspected STEMI opens a chest-pain case; a STAT stroke CT a stroke case (emergency_rules).
  if (auto trigger = case_trigger({type, t.priority, t.modality, t.priority_reason, detail})) {
    auto c = open_case_for_task(t, trigger->kind, trigger->source, trigger->reason, trigger->point);
    if (!c.ok()) {
      spdlog::error("teleconsult: no {} case for task {}: {}", trigger->kind, task,
                    c.error().message);
    }
  }
  if (type == "critical_sent") {
    notify(
        [&t](const Principal& p) {
          return p.institution_id == t.institution_id && identity::has_clinical_role(p);
        },
        "critical_result", about);
  }
}

void Hub::publish_case(std::int64_t case_id, bool opened) {
  auto row = stores_.cases.get_case(case_id);
  if (!row.ok() || !row->has_value()) return;
  const teleconsult::CaseRow c = **row;
  if (opened) {
    notify([&c](const Principal& p) { return may_see_case(p, c); }, "emergency",
           {{"case", c.id},
            {"kind", c.kind},
            {"institution", c.institution_code},
            {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}},
            {"source", c.source},
            {"reason", c.reason}});
  }
  auto room = case_rooms_.find(case_id);
  if (room == case_rooms_.end()) return;
  auto view = case_view(stores_.cases, c, clock_());
  if (!view.ok()) return;
  const std::string text = proto::make("case", {{"case", *view}});
  for (std::uint64_t conn : room->second) send(conn, text);
}

void Hub::notify_referral(const teleconsult::ReferralRow& r, const std::string& kind) {
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

// Once a second: intervals that have just passed their target are announced once, to the
// case's followers and, as a notification, to everyone who may see the case; every 30 s the
// followers get the running clocks.
void Hub::check_clocks() {
  auto open = stores_.cases.open_cases();
  if (!open.ok()) return;
  const auto steady = clock_();
  const bool push = steady >= next_clock_push_;
  if (push) next_clock_push_ = steady + std::chrono::seconds(30);
  for (const teleconsult::CaseRow& c : *open) {
    auto records = stores_.cases.time_points(c.id);
    if (!records.ok()) continue;
    for (const auto& s : evaluate(c.kind, current_points(*records), clock_())) {
      if (s.status != "breached" || !announced_breaches_.insert({c.id, s.spec.name}).second)
        continue;
      const json breach = {{"case", c.id},
                           {"kind", c.kind},
                           {"interval", s.spec.name},
                           {"targetMinutes", s.spec.target_minutes},
                           {"minutes", s.minutes ? json(*s.minutes) : json(nullptr)},
                           {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}}};
      if (auto room = case_rooms_.find(c.id); room != case_rooms_.end()) {
        for (std::uint64_t conn : room->second) send(conn, proto::make("case.breach", breach));
      }
      notify([&c](const Principal& p) { return may_see_case(p, c); }, "breach", breach);
    }
    if (push && case_rooms_.count(c.id)) publish_case(c.id, false);
  }
}

void Hub::on_ack(std::uint64_t conn, const Conn& c, const proto::Inbound& in) {
  auto done = stores_.notifications.acknowledge(in.target, c.who->user_id, now());
  if (!done.ok() || !*done) {
    send_error(conn, "not_found", "no pending notification of yours has this id", in.ref);
    return;
  }
  send(conn, proto::make("acked", {{"notification", in.target}}));
}

void Hub::on_case_follow(std::uint64_t conn, const Conn& c, const proto::Inbound& in) {
  using proto::Type;
  if (in.type == Type::case_leave) {
    if (auto it = case_rooms_.find(in.target); it != case_rooms_.end()) {
      it->second.erase(conn);
      if (it->second.empty()) case_rooms_.erase(it);
    }
    send(conn, proto::make("case.left", {{"case", in.target}}));
    return;
  }
  auto row = stores_.cases.get_case(in.target);
  if (!row.ok() || !row->has_value() || !may_see_case(*c.who, **row)) {
    audit(c, "case.follow", "emergency_case", in.target, "denied");
    send_error(conn, "not_found", "no emergency case you may follow has this id", in.ref);
    return;
  }
  auto view = case_view(stores_.cases, **row, clock_());
  if (!view.ok()) {
    send_error(conn, "unavailable", view.error().message, in.ref);
    return;
  }
  case_rooms_[in.target].insert(conn);
  audit(c, "case.follow", "emergency_case", in.target, "ok");
  send(conn, proto::make("case", {{"case", *view}}));
  return;
}

}  // namespace yilian::teleconsult
