#include "emergency_cases.h"

#include <spdlog/spdlog.h>

#include "case_view.h"
#include "yilian/teleconsult/emergency_rules.h"

namespace yilian::teleconsult::hub_detail {

void EmergencyCases::task_event(const reading::TaskRow& t, const std::string& type,
                                const std::string& detail) {
  // Suspected STEMI opens a chest-pain case; a STAT stroke CT a stroke case (emergency_rules).
  auto trigger = case_trigger({type, t.priority, t.modality, t.priority_reason, detail});
  if (!trigger) return;
  auto c = open_for_task(t, trigger->kind, trigger->source, trigger->reason, trigger->point);
  if (!c.ok()) {
    spdlog::error("teleconsult: no {} case for task {}: {}", trigger->kind, t.id,
                  c.error().message);
  }
}

Result<CaseRow> EmergencyCases::open_for_task(const reading::TaskRow& t, const std::string& kind,
                                              const std::string& source, const std::string& reason,
                                              const std::string& point) {
  CaseRow c;
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
  auto row = store_.open_case(c, existed);
  if (!row.ok()) return row.error();
  if (!existed) {
    // When the study reached the hub is the first time point the system knows itself.
    TimePointRow tp{0, point, t.received_at, "system", now(), "study received"};
    if (Status s = store_.record_time_point(row->id, tp); !s) return s.error();
    publish(row->id, true);
  }
  return row;
}

void EmergencyCases::to_followers(std::int64_t case_id, const std::string& text, bool local) {
  if (auto room = followers_.find(case_id); room != followers_.end()) {
    for (std::uint64_t conn : room->second) out_.send(conn, text);
  }
  if (!local) out_.relay({{"k", "case"}, {"id", case_id}, {"t", text}});
}

void EmergencyCases::publish(std::int64_t case_id, bool opened, bool local) {
  auto row = store_.get_case(case_id);
  if (!row.ok() || !row->has_value()) return;
  const CaseRow c = **row;
  if (opened) alert(c);
  if (!opened && !local && !c.acknowledged_at.empty() && alerts_closed_.insert(case_id).second) {
    // Acknowledged: the alert cards of everyone else it reached close (once per case and node).
    if (auto alerted = store_.alerts(case_id); alerted.ok()) {
      std::vector<std::int64_t> users;
      for (const AlertRow& a : *alerted) users.push_back(a.user_id);
      notifier_.close_alerts(case_id, users,
                             {{"case", case_id},
                              {"acknowledgedBy", c.acknowledged_by},
                              {"acknowledgedAt", c.acknowledged_at}});
    }
  }
  if (c.status != "open") alerts_closed_.erase(case_id);
  if (local && !followers_.count(case_id)) return;
  auto view = case_view(store_, c, clock_(), targets_);
  if (!view.ok()) return;
  to_followers(case_id, proto::make("case", {{"case", *view}}), local);
}

// Intervals that have just passed their target are announced once, to the case's followers
// and, as a notification, to everyone who may see the case.
void EmergencyCases::check_clocks(bool announce) {
  auto open = store_.open_cases();
  if (!open.ok()) return;
  const storage::TimePoint at = clock_();
  const bool push = at >= next_push_;
  if (push) next_push_ = at + std::chrono::seconds(30);
  for (const CaseRow& c : *open) {
    if (announce && escalation_due(c, at, escalate_after_)) escalate(c);
    if (!announce) {
      if (push && followers_.count(c.id)) publish(c.id, false, /*local=*/true);
      continue;
    }
    auto records = store_.time_points(c.id);
    if (!records.ok()) continue;
    for (const auto& s : evaluate(c.kind, current_points(*records), at, targets_)) {
      if (s.status != "breached" || !announced_breaches_.insert({c.id, s.spec.name}).second)
        continue;
      const json breach = {{"case", c.id},
                           {"kind", c.kind},
                           {"interval", s.spec.name},
                           {"targetMinutes", s.spec.target_minutes},
                           {"minutes", s.minutes ? json(*s.minutes) : json(nullptr)},
                           {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}}};
      to_followers(c.id, proto::make("case.breach", breach), /*local=*/false);
      notifier_.notify([&c](const Principal& p) { return may_see_case(p, c); }, "breach", breach);
    }
    if (push && followers_.count(c.id)) publish(c.id, false, /*local=*/true);
  }
}

namespace {

json alert_payload(const CaseRow& c) {
  return {{"case", c.id},
          {"kind", c.kind},
          {"institution", c.institution_code},
          {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}},
          {"source", c.source},
          {"reason", c.reason}};
}

}  // namespace

void EmergencyCases::alert(const CaseRow& c) {
  const std::string service(alert_service(c.kind));
  auto shifts = store_.on_call(c.institution_id, service, now());
  if (!shifts.ok()) {
    spdlog::error("teleconsult: on-call roster of case {} unreadable: {}", c.id,
                  shifts.error().message);
  }
  const ShiftRow* primary = nullptr;
  if (shifts.ok()) {
    for (const ShiftRow& s : *shifts) {
      if (s.role == "primary") {
        primary = &s;
        break;
      }
    }
  }
  json payload = alert_payload(c);
  if (!primary) {  // nobody on call: everyone who may see the case, at once
    notifier_.notify([&c](const Principal& p) { return may_see_case(p, c); }, "emergency", payload);
    return;
  }
  const std::string at = now();
  if (Status s = store_.set_alert_service(c.id, service); !s) {
    spdlog::error("teleconsult: case {}: {}", c.id, s.error().message);
  }
  if (Status s = store_.record_alert(c.id, primary->user_id, "on_call", at); !s) {
    spdlog::error("teleconsult: case {}: {}", c.id, s.error().message);
  }
  const std::int64_t on_call = primary->user_id;
  // The on-call primary gets the alert to acknowledge first (ahead of any fan-out), then the
  // case's own clinicians learn that it is open.
  json alert = payload;
  alert["stage"] = "on_call";
  alert["service"] = service;
  alert["escalateAfterSeconds"] = escalate_after_.count();
  notifier_.notify([on_call](const Principal& p) { return p.user_id == on_call; }, "alert", alert);
  notifier_.notify(
      [&c, on_call](const Principal& p) {
        return p.user_id != on_call && p.institution_id == c.institution_id && may_see_case(p, c);
      },
      "emergency", payload);
  spdlog::info("teleconsult: case {} alerted {} on call for {}", c.id, primary->username, service);
}

void EmergencyCases::escalate(const CaseRow& c) {
  const std::string at = now();
  auto shifts = store_.on_call(c.institution_id, c.alert_service, at);
  auto already = store_.alerts(c.id);
  if (!shifts.ok() || !already.ok()) return;
  std::set<std::int64_t> backups, serving, alerted;
  for (const ShiftRow& s : *shifts) {
    serving.insert(s.institution_id);
    if (s.role == "backup") backups.insert(s.user_id);
  }
  for (const AlertRow& a : *already) alerted.insert(a.user_id);
  auto whom = [&](const Principal& p) {
    if (alerted.count(p.user_id)) return false;
    if (backups.count(p.user_id)) return may_see_case(p, c);
    return in_escalation_group(p, c) && serving.count(p.institution_id) > 0;
  };
  // Recorded before it is sent: the case shows whom the escalation reached.
  notifier_.for_each_user(whom, [&](const Principal& p) {
    if (Status s = store_.record_alert(c.id, p.user_id, "escalation", at); !s) {
      spdlog::error("teleconsult: case {}: {}", c.id, s.error().message);
    }
  });
  if (Status s = store_.mark_escalated(c.id, at); !s) {
    spdlog::error("teleconsult: case {}: {}", c.id, s.error().message);
    return;
  }
  json payload = alert_payload(c);
  payload["stage"] = "escalation";
  payload["service"] = c.alert_service;
  notifier_.notify(whom, "alert", payload);
  spdlog::warn("teleconsult: case {} alert not acknowledged in {} s: escalated", c.id,
               escalate_after_.count());
  publish(c.id, false);
}

Result<json> EmergencyCases::acknowledge(const Principal& p, std::int64_t case_id) {
  auto row = store_.get_case(case_id);
  if (!row.ok()) return row.error();
  if (!row->has_value() || !may_see_case(p, **row)) {
    return make_error(Errc::not_found, "no emergency case you may see has this id");
  }
  auto first = acknowledge_alert(store_, p, **row, clock_());
  if (!first.ok()) return first.error();
  publish(case_id, false);
  auto fresh = store_.get_case(case_id);
  if (!fresh.ok() || !fresh->has_value()) return make_error(Errc::internal, "case vanished");
  return case_view(store_, **fresh, clock_(), targets_);
}

Result<json> EmergencyCases::follow(std::uint64_t conn, const Principal& p, std::int64_t case_id) {
  auto row = store_.get_case(case_id);
  if (!row.ok()) return row.error();
  if (!row->has_value() || !may_see_case(p, **row)) {
    return make_error(Errc::not_found, "no emergency case you may follow has this id");
  }
  auto view = case_view(store_, **row, clock_(), targets_);
  if (!view.ok()) return view.error();
  followers_[case_id].insert(conn);
  return *view;
}

void EmergencyCases::unfollow(std::uint64_t conn, std::int64_t case_id) {
  if (auto it = followers_.find(case_id); it != followers_.end()) {
    it->second.erase(conn);
    if (it->second.empty()) followers_.erase(it);
  }
}

void EmergencyCases::forget(std::uint64_t conn) {
  for (auto it = followers_.begin(); it != followers_.end();) {
    it->second.erase(conn);
    it = it->second.empty() ? followers_.erase(it) : std::next(it);
  }
}

}  // namespace yilian::teleconsult::hub_detail
