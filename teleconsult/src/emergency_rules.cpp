#include "yilian/teleconsult/emergency_rules.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "yilian/identity/policy.h"
#include "yilian/teleconsult/consult_rules.h"

namespace yilian::teleconsult {

bool is_case_kind(std::string_view kind) { return kind == "chest_pain" || kind == "stroke"; }

const std::vector<std::string>& time_points(std::string_view kind) {
  static const std::vector<std::string> kChestPain = {"symptom_onset",
                                                      "first_medical_contact",
                                                      "first_ecg",
                                                      "ecg_transmitted",
                                                      "ecg_read",
                                                      "diagnosis",
                                                      "transfer_door_in",
                                                      "transfer_door_out",
                                                      "door",
                                                      "cath_lab_activation",
                                                      "wire_crossing",
                                                      "thrombolysis"};
  static const std::vector<std::string> kStroke = {"symptom_onset", "door",   "ct",
                                                   "ct_read",       "needle", "puncture"};
  static const std::vector<std::string> kNone;
  if (kind == "chest_pain") return kChestPain;
  if (kind == "stroke") return kStroke;
  return kNone;
}

bool is_time_point(std::string_view kind, std::string_view point) {
  const auto& all = time_points(kind);
  return std::find(all.begin(), all.end(), point) != all.end();
}

const std::vector<IntervalSpec>& intervals(std::string_view kind) {
  static const std::vector<IntervalSpec> kChestPain = {
      {"fmc_to_ecg", "first_medical_contact", "first_ecg", 10},
      {"ecg_to_diagnosis", "first_ecg", "diagnosis", 10},
      {"door_in_door_out", "transfer_door_in", "transfer_door_out", 30},
      {"cath_lab_activation", "diagnosis", "cath_lab_activation", 30},
      {"door_to_balloon", "door", "wire_crossing", 90}};
  static const std::vector<IntervalSpec> kStroke = {{"door_to_ct", "door", "ct", 25},
                                                    {"door_to_needle", "door", "needle", 60}};
  static const std::vector<IntervalSpec> kNone;
  if (kind == "chest_pain") return kChestPain;
  if (kind == "stroke") return kStroke;
  return kNone;
}

std::vector<IntervalState> evaluate(std::string_view kind,
                                    const std::map<std::string, storage::TimePoint>& points,
                                    storage::TimePoint now) {
  std::vector<IntervalState> out;
  for (const IntervalSpec& spec : intervals(kind)) {
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

std::optional<CaseTrigger> case_trigger(const TaskEventFacts& e) {
  if (e.type == "emergency") {
    return CaseTrigger{"chest_pain", "ecg_stemi", std::string(e.detail), "ecg_transmitted"};
  }
  if (e.type == "routed" && e.priority == 0 && e.modality.find("CT") != std::string_view::npos) {
    std::string reason(e.priority_reason);
    for (char& ch : reason) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (reason.find("stroke") != std::string::npos || reason.find("卒中") != std::string::npos) {
      return CaseTrigger{"stroke", "stat_ct", std::string(e.priority_reason), "ct"};
    }
  }
  return std::nullopt;
}

bool may_see_case(const Principal& p, const teleconsult::CaseRow& c) {
  if (!identity::has_clinical_role(p)) return false;
  const auto served = served_institutions(p);
  return std::find(served.begin(), served.end(), c.institution_id) != served.end();
}

bool is_oncall_service(std::string_view service) {
  return service == "cardiology" || service == "ecg" || service == "neurology" ||
         service == "radiology";
}

bool is_oncall_role(std::string_view role) { return role == "primary" || role == "backup"; }

std::string_view alert_service(std::string_view kind) {
  if (kind == "chest_pain") return "cardiology";
  if (kind == "stroke") return "neurology";
  return "";
}

std::string_view acknowledgement_point(std::string_view kind) {
  if (kind == "chest_pain") return "ecg_read";
  if (kind == "stroke") return "ct_read";
  return "";
}

bool in_escalation_group(const Principal& p, const teleconsult::CaseRow& c) {
  if (!may_see_case(p, c)) return false;
  if (c.kind == "chest_pain") return p.has(Role::cardiologist);
  if (c.kind == "stroke") return p.has(Role::radiologist);
  return false;
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
