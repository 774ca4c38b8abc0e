#include "yilian/teleconsult/emergency_rules.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <initializer_list>
#include <map>
#include <tuple>

#include "yilian/common/stats.h"
#include "yilian/identity/policy.h"
#include "yilian/teleconsult/consult_rules.h"

namespace yilian::teleconsult {

namespace {

// One emergency centre's pathway: its time points in pathway order, its intervals with their
// targets, the on-call service its alerts go to, the time point the first acknowledgement
// records, and the role that is alerted when nobody acknowledges. Sources: emergency_rules.h.
struct KindSpec {
  std::string_view kind;
  std::vector<std::string> points;
  std::vector<IntervalSpec> intervals;
  std::string_view service, acknowledgement_point;
  Role escalation_role;
};

const std::vector<KindSpec>& kinds() {
  static const std::vector<KindSpec> kAll = {
      {"chest_pain",
       {"symptom_onset", "first_medical_contact", "first_ecg", "ecg_transmitted", "ecg_read",
        "diagnosis", "transfer_door_in", "transfer_door_out", "door", "cath_lab_activation",
        "wire_crossing", "thrombolysis"},
       {{"fmc_to_ecg", "first_medical_contact", "first_ecg", 10},
        {"ecg_to_diagnosis", "first_ecg", "diagnosis", 10},
        {"door_in_door_out", "transfer_door_in", "transfer_door_out", 30},
        {"cath_lab_activation", "diagnosis", "cath_lab_activation", 30},
        {"door_to_balloon", "door", "wire_crossing", 90}},
       "cardiology",
       "ecg_read",
       Role::cardiologist},
      {"stroke",
       {"symptom_onset", "door", "ct", "ct_read", "needle", "puncture"},
       {{"door_to_ct", "door", "ct", 25}, {"door_to_needle", "door", "needle", 60}},
       "neurology",
       "ct_read",
       Role::radiologist},
      {"trauma",
       {"injury", "first_medical_contact", "transfer_door_in", "transfer_door_out", "door",
        "team_activation", "expert_response", "team_arrival", "ct", "transfusion", "operation"},
       {{"team_response", "team_activation", "team_arrival", 15},
        {"door_in_door_out", "transfer_door_in", "transfer_door_out", 120},
        {"door_to_operation", "door", "operation", 60}},
       "trauma",
       "expert_response",
       Role::physician},
      {"maternal",
       {"recognition", "expert_response", "transfer_door_in", "transfer_door_out", "door",
        "decision_to_deliver", "delivery", "transfusion"},
       {{"decision_to_delivery", "decision_to_deliver", "delivery", 30}},
       "obstetrics",
       "expert_response",
       Role::physician},
      {"newborn",
       {"birth", "ventilation", "expert_response", "transport_request", "team_departure",
        "team_arrival", "transfer_door_out", "door"},
       {{"birth_to_ventilation", "birth", "ventilation", 1}},
       "neonatology",
       "expert_response",
       Role::physician},
  };
  return kAll;
}

const KindSpec* find_kind(std::string_view kind) {
  for (const KindSpec& k : kinds()) {
    if (k.kind == kind) return &k;
  }
  return nullptr;
}

}  // namespace

bool is_case_kind(std::string_view kind) { return find_kind(kind) != nullptr; }

std::string case_kinds_text() {
  std::string out;
  for (const KindSpec& k : kinds()) out += (out.empty() ? "" : ", ") + std::string(k.kind);
  return out;
}

const std::vector<std::string>& time_points(std::string_view kind) {
  static const std::vector<std::string> kNone;
  const KindSpec* k = find_kind(kind);
  return k ? k->points : kNone;
}

bool is_time_point(std::string_view kind, std::string_view point) {
  const auto& all = time_points(kind);
  return std::find(all.begin(), all.end(), point) != all.end();
}

const std::vector<IntervalSpec>& intervals(std::string_view kind) {
  static const std::vector<IntervalSpec> kNone;
  const KindSpec* k = find_kind(kind);
  return k ? k->intervals : kNone;
}

bool is_interval(std::string_view kind, std::string_view interval) {
  const auto& all = intervals(kind);
  return std::any_of(all.begin(), all.end(),
                     [interval](const IntervalSpec& s) { return s.name == interval; });
}

std::vector<IntervalState> evaluate(std::string_view kind,
                                    const std::map<std::string, storage::TimePoint>& points,
                                    storage::TimePoint now, const CaseTargets& targets) {
  std::vector<IntervalState> out;
  for (IntervalSpec spec : intervals(kind)) {
    if (auto t = targets.find(std::string(kind) + "." + spec.name); t != targets.end()) {
      spec.target_minutes = t->second;
    }
    IntervalState s{spec, std::nullopt, "pending"};
    auto from = points.find(spec.from);
    auto to = points.find(spec.to);
    if (from != points.end()) {
      const auto end = to != points.end() ? to->second : now;
      const double minutes =
          std::chrono::duration<double, std::ratio<60>>(end - from->second).count();
      s.minutes = minutes;
      if (to != points.end()) {
        s.status = minutes <= spec.target_minutes ? "met" : "breached";
      } else {
        s.status = minutes <= spec.target_minutes ? "running" : "breached";
      }
    }
    out.push_back(s);
  }
  return out;
}

std::map<std::string, storage::TimePoint> current_points(
    const std::vector<teleconsult::TimePointRow>& records) {
  std::map<std::string, storage::TimePoint> out;
  for (const auto& r : records) {  // oldest first: a later record of a point replaces it
    if (auto t = storage::parse_iso8601(r.at)) out[r.point] = *t;
  }
  return out;
}

std::vector<IntervalQuality> interval_quality(const std::vector<CaseRecords>& cases, QualityBy by,
                                              const CaseTargets& targets, int utc_offset_minutes) {
  struct Group {
    IntervalQuality q;
    std::vector<double> minutes;
  };
  // Keyed by kind, group and the interval's place in its pathway.
  std::map<std::tuple<std::string, std::string, std::size_t>, Group> groups;
  for (const auto& [c, records] : cases) {
    const auto points = current_points(records);
    std::string group;
    if (by == QualityBy::institution) group = c.institution_code;
    if (by == QualityBy::month) {
      const auto opened = storage::parse_iso8601(c.opened_at);
      group =
          opened
              ? storage::to_iso8601(*opened + std::chrono::minutes(utc_offset_minutes)).substr(0, 7)
              : c.opened_at.substr(0, 7);
    }
    // The times themselves decide; `now` is used by no interval with both ends.
    const auto states = evaluate(c.kind, points, storage::TimePoint{}, targets);
    for (std::size_t i = 0; i < states.size(); ++i) {
      const IntervalState& s = states[i];
      Group& g = groups[{c.kind, group, i}];
      g.q.kind = c.kind;
      g.q.interval = s.spec.name;
      g.q.group = group;
      g.q.target_minutes = s.spec.target_minutes;
      ++g.q.cases;
      if (!points.contains(s.spec.from)) continue;
      ++g.q.started;
      if (!points.contains(s.spec.to) || !s.minutes) continue;
      if (*s.minutes < 0) {
        ++g.q.inconsistent;
        continue;
      }
      ++g.q.done;
      if (s.status == "met") ++g.q.met;
      g.minutes.push_back(*s.minutes);
    }
  }
  std::vector<IntervalQuality> out;
  for (auto& [key, g] : groups) {
    std::sort(g.minutes.begin(), g.minutes.end());
    if (!g.minutes.empty()) {
      g.q.median_minutes = nearest_rank_percentile(g.minutes, 50);
      g.q.p90_minutes = nearest_rank_percentile(g.minutes, 90);
    }
    out.push_back(std::move(g.q));
  }
  return out;
}

std::optional<CaseTrigger> case_trigger(const TaskEventFacts& e) {
  if (e.type == "emergency") {
    return CaseTrigger{"chest_pain", "ecg_stemi", std::string(e.detail), "ecg_transmitted"};
  }
  if (e.type == "routed" && e.priority == 0 && e.modality.find("CT") != std::string_view::npos) {
    std::string reason(e.priority_reason);
    for (char& ch : reason) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto names = [&reason](std::initializer_list<std::string_view> words) {
      return std::any_of(words.begin(), words.end(), [&reason](std::string_view w) {
        return reason.find(w) != std::string::npos;
      });
    };
    // Stroke first: "stroke after a fall" is a stroke pathway.
    if (names({"stroke", "卒中"})) {
      return CaseTrigger{"stroke", "stat_ct", std::string(e.priority_reason), "ct"};
    }
    if (names({"trauma", "创伤", "外伤", "多发伤"})) {
      return CaseTrigger{"trauma", "stat_ct", std::string(e.priority_reason), "ct"};
    }
  }
  return std::nullopt;
}

bool may_see_case(const Principal& p, const teleconsult::CaseRow& c) {
  if (!identity::has_clinical_role(p)) return false;
  const auto served = served_institutions(p);
  return std::find(served.begin(), served.end(), c.institution_id) != served.end();
}

namespace {

const std::vector<std::string_view>& oncall_services() {
  // The readers' services, then each centre's own (cardiology and neurology among them).
  static const std::vector<std::string_view> kAll = [] {
    std::vector<std::string_view> all = {"ecg", "radiology"};
    for (const KindSpec& k : kinds()) all.push_back(k.service);
    return all;
  }();
  return kAll;
}

}  // namespace

bool is_oncall_service(std::string_view service) {
  const auto& all = oncall_services();
  return std::find(all.begin(), all.end(), service) != all.end();
}

std::string oncall_services_text() {
  std::string out;
  for (std::string_view s : oncall_services()) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

bool is_oncall_role(std::string_view role) { return role == "primary" || role == "backup"; }

std::string_view alert_service(std::string_view kind) {
  const KindSpec* k = find_kind(kind);
  return k ? k->service : std::string_view();
}

std::string_view acknowledgement_point(std::string_view kind) {
  const KindSpec* k = find_kind(kind);
  return k ? k->acknowledgement_point : std::string_view();
}

bool in_escalation_group(const Principal& p, const teleconsult::CaseRow& c) {
  if (!may_see_case(p, c)) return false;
  const KindSpec* k = find_kind(c.kind);
  if (!k || !p.has(k->escalation_role)) return false;
  // A physician who names their services (trauma, obstetrics, neonatology) is reached by those
  // centres' escalations only: the trauma surgeon is not called to a haemorrhage after birth.
  // One who names none (an emergency physician) is reached by every centre's.
  if (k->escalation_role == Role::physician && !p.services.empty()) {
    return std::find(p.services.begin(), p.services.end(), k->service) != p.services.end();
  }
  return true;
}

bool escalation_due(const teleconsult::CaseRow& c, storage::TimePoint now,
                    std::chrono::seconds after) {
  if (c.status != "open" || c.alert_service.empty() || !c.acknowledged_at.empty() ||
      !c.escalated_at.empty())
    return false;
  auto opened = storage::parse_iso8601(c.opened_at);
  return opened && now - *opened >= after;
}

}  // namespace yilian::teleconsult
