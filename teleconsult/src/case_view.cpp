#include "case_view.h"

#include <cmath>

#include "yilian/teleconsult/emergency_rules.h"

namespace yilian::teleconsult {

using nlohmann::json;

Result<json> case_view(teleconsult::CaseStore& store, const teleconsult::CaseRow& c,
                       storage::TimePoint now, const CaseTargets& targets) {
  auto records = store.time_points(c.id);
  if (!records.ok()) return records.error();
  auto alerted = store.alerts(c.id);
  if (!alerted.ok()) return alerted.error();
  return case_view(c, *records, *alerted, now, targets);
}

json case_view(const teleconsult::CaseRow& c, const std::vector<TimePointRow>& records,
               const std::vector<AlertRow>& alerted, storage::TimePoint now,
               const CaseTargets& targets) {
  json points = json::object(), history = json::array();
  for (const auto& r : records) {
    points[r.point] = {{"at", r.at}, {"by", r.recorded_by}, {"note", r.note}};
    history.push_back({{"point", r.point},
                       {"at", r.at},
                       {"by", r.recorded_by},
                       {"recordedAt", r.recorded_at},
                       {"note", r.note}});
  }
  // A closed case's clocks stopped when it closed: an interval never finished shows the minutes
  // it had run by then, not ever more.
  storage::TimePoint clocks_at = now;
  if (c.status == "closed") {
    if (auto closed = storage::parse_iso8601(c.closed_at); closed && *closed < now) {
      clocks_at = *closed;
    }
  }
  json clocks = json::array();
  for (const auto& s : evaluate(c.kind, current_points(records), clocks_at, targets)) {
    clocks.push_back(
        {{"name", s.spec.name},
         {"from", s.spec.from},
         {"to", s.spec.to},
         {"targetMinutes", s.spec.target_minutes},
         {"minutes", s.minutes ? json(std::round(*s.minutes * 10) / 10) : json(nullptr)},
         {"status", s.status}});
  }
  json who = json::array();
  for (const auto& a : alerted)
    who.push_back({{"user", a.username}, {"stage", a.stage}, {"at", a.alerted_at}});
  auto or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  const json alert = {{"service", or_null(c.alert_service)},
                      {"alerted", who},
                      {"acknowledgedBy", or_null(c.acknowledged_by)},
                      {"acknowledgedAt", or_null(c.acknowledged_at)},
                      {"escalatedAt", or_null(c.escalated_at)}};
  return json{{"id", c.id},
              {"kind", c.kind},
              {"status", c.status},
              {"institution", c.institution_code},
              {"patient", {{"id", c.patient_id}, {"name", c.patient_name}}},
              {"studyInstanceUid", c.study_uid.empty() ? json(nullptr) : json(c.study_uid)},
              {"consult", c.consult_id ? json(c.consult_id) : json(nullptr)},
              {"source", c.source},
              {"reason", c.reason},
              {"openedBy", c.opened_by},
              {"openedAt", c.opened_at},
              {"closedAt", c.closed_at.empty() ? json(nullptr) : json(c.closed_at)},
              {"timePoints", points},
              {"history", history},
              {"intervals", clocks},
              {"alert", alert},
              {"at", storage::to_iso8601(now)}};
}

Result<bool> acknowledge_alert(teleconsult::CaseStore& store, const Principal& p,
                               const teleconsult::CaseRow& c, storage::TimePoint now) {
  const std::string at = storage::to_iso8601(now);
  auto first = store.acknowledge(c.id, p.username, at);
  if (!first.ok() || !*first) return first;
  const std::string point(acknowledgement_point(c.kind));
  auto records = store.time_points(c.id);
  if (!records.ok()) return records.error();
  if (!point.empty() && !current_points(*records).count(point)) {
    TimePointRow tp{0, point, at, p.username, at, "alert acknowledged"};
    if (Status s = store.record_time_point(c.id, tp); !s) return s.error();
  }
  return true;
}

}  // namespace yilian::teleconsult
