#include "case_view.h"

#include <cmath>

#include "yilian/teleconsult/emergency_rules.h"

namespace yilian::teleconsult {

using nlohmann::json;

Result<json> case_view(teleconsult::CaseStore& store, const teleconsult::CaseRow& c,
                       storage::TimePoint now) {
  auto records = store.time_points(c.id);
  if (!records.ok()) return records.error();
  json points = json::object(), history = json::array();
  for (const auto& r : *records) {
    points[r.point] = {{"at", r.at}, {"by", r.recorded_by}, {"note", r.note}};
    history.push_back({{"point", r.point},
                       {"at", r.at},
                       {"by", r.recorded_by},
                       {"recordedAt", r.recorded_at},
                       {"note", r.note}});
  }
  json clocks = json::array();
  for (const auto& s : evaluate(c.kind, current_points(*records), now)) {
    clocks.push_back(
        {{"name", s.spec.name},
         {"from", s.spec.from},
         {"to", s.spec.to},
         {"targetMinutes", s.spec.target_minutes},
         {"minutes", s.minutes ? json(std::round(*s.minutes * 10) / 10) : json(nullptr)},
         {"status", s.status}});
  }
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
              {"at", storage::to_iso8601(now)}};
}

}  // namespace yilian::teleconsult
