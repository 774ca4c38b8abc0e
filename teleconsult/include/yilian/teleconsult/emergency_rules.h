// Emergency cases of the consortium's five emergency centres (chest pain, stroke, trauma,
// critical maternal care, critical newborn care): their key time points, the intervals computed
// from them against the centres' targets, and who may see a case. Pure: no I/O.
//
// Chest pain (China Chest Pain Centre accreditation standard, 中国胸痛中心认证标准):
//   FMC-to-ECG            first_medical_contact -> first_ecg            <= 10 min
//   ECG-to-diagnosis      first_ecg -> diagnosis                        <= 10 min
//   door-in-door-out      transfer_door_in -> transfer_door_out         <= 30 min (non-PCI site)
//   cath-lab activation   diagnosis -> cath_lab_activation              <= 30 min
//   door-to-balloon       door -> wire_crossing                         <= 90 min
// Stroke (China Stroke Centre standards; AHA/ASA 2019 for door-to-CT):
//   door-to-CT            door -> ct                                    <= 25 min
//   door-to-needle        door -> needle                                <= 60 min
// Trauma (创伤中心建设与管理指导原则 (试行), 国卫办医发〔2018〕21号, names no minutes; these
// are the ACS Committee on Trauma's "Resources for Optimal Care of the Injured Patient"):
//   trauma-team response  team_activation -> team_arrival               <= 15 min
//   door-in-door-out      transfer_door_in -> transfer_door_out         <= 120 min
//   door-to-operation     door -> operation                             <= 60 min (haemorrhage)
// Critical maternal care (危重孕产妇救治中心建设与管理指南, 国卫办妇幼发〔2016〕64号; the
// interval is NICE CG132 / RCOG category 1, and the usual quality indicator in China):
//   decision-to-delivery  decision_to_deliver -> delivery               <= 30 min
// Critical newborn care (危重新生儿救治中心建设与管理指南, 国卫办妇幼发〔2017〕40号; the
// interval is the "golden minute" of 中国新生儿复苏指南 (2021年修订)):
//   birth-to-ventilation  birth -> ventilation                          <= 1 min
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/principal.h"
#include "yilian/storage/clock.h"
#include "yilian/teleconsult/case_store.h"

namespace yilian::teleconsult {

bool is_case_kind(std::string_view kind);  // chest_pain, stroke, trauma, maternal, newborn
std::string case_kinds_text();             // the kinds, comma separated, for error messages
// The time points a case of this kind records, in pathway order.
const std::vector<std::string>& time_points(std::string_view kind);
bool is_time_point(std::string_view kind, std::string_view point);

struct IntervalSpec {
  std::string name, from, to;
  int target_minutes = 0;
};
const std::vector<IntervalSpec>& intervals(std::string_view kind);

// A consortium's own targets: "kind.interval" -> minutes ("trauma.team_response" = 10), in
// place of the defaults above (config [emergency.targets]).
using CaseTargets = std::map<std::string, int>;
bool is_interval(std::string_view kind, std::string_view interval);

struct IntervalState {
  IntervalSpec spec;
  std::optional<double> minutes;  // done: actual; running: so far; pending: none
  std::string status;             // pending, running, met, breached
};
// Current time points (the newest record of each) -> every interval's state at `now`.
std::vector<IntervalState> evaluate(std::string_view kind,
                                    const std::map<std::string, storage::TimePoint>& points,
                                    storage::TimePoint now, const CaseTargets& targets = {});
// The newest record of each point (corrections replace, history stays in `records`).
std::map<std::string, storage::TimePoint> current_points(
    const std::vector<teleconsult::TimePointRow>& records);

// The centres' quality figures (what a chest-pain or stroke centre reports for its
// accreditation): per centre and interval over the cases given, and per institution or per
// month of opening (local time: UTC + `utc_offset_minutes`) when asked. An interval counts when
// both its ends are recorded (the current value of each): `done`, of them `met` within the target,
// and the median and 90th percentile (nearest rank) of their minutes. `started` also counts the
// intervals whose end is not recorded; an end recorded before its start is `inconsistent` (a
// data-entry error for quality control to correct) and stays out of the minutes. Rows for the
// centres and groups that have cases, by centre, group, then the intervals in pathway order.
enum class QualityBy { centre, institution, month };
struct IntervalQuality {
  std::string kind, interval;
  std::string group;  // the institution's code, or the month ("2026-12"); empty by centre
  int target_minutes = 0;
  int cases = 0, started = 0, done = 0, met = 0, inconsistent = 0;
  std::optional<double> median_minutes, p90_minutes;  // none when nothing is done
};
std::vector<IntervalQuality> interval_quality(const std::vector<CaseRecords>& cases, QualityBy by,
                                              const CaseTargets& targets = {},
                                              int utc_offset_minutes = 0);

// Which emergency case a reading-queue event opens, if any:
//   "emergency" (suspected STEMI on an ECG)      -> chest_pain, source ecg_stemi, point
//                                                   ecg_transmitted, reason: the evidence
//   "routed" STAT CT whose priority reason names stroke (English or 卒中)
//                                                -> stroke, source stat_ct, point ct
//   "routed" STAT CT whose priority reason names trauma (trauma, 创伤, 外伤, 多发伤) and
//   not stroke                                   -> trauma, source stat_ct, point ct
struct CaseTrigger {
  std::string kind, source, reason, point;  // point: the first time point (study received)
};
struct TaskEventFacts {
  std::string_view type;  // the event: emergency, routed, ...
  int priority = 2;       // 0 = STAT
  std::string_view modality, priority_reason, detail;
};
std::optional<CaseTrigger> case_trigger(const TaskEventFacts& event);

// Clinicians of the case's institution and of the institutions serving it (the lead's
// readers and cardiologists) see a case and record its time points.
bool may_see_case(const Principal& p, const teleconsult::CaseRow& c);

// On-call rosters and emergency alerts.
//   A case's alert goes to the on-call primary of its service (chest pain: cardiology; stroke:
//   neurology; trauma: trauma; maternal: obstetrics; newborn: neonatology) found for the
//   case's institution or the nearest institution above it. Not acknowledged within the
//   escalation time (default 60 s), it goes to the service's back-ups and to every clinician
//   of the escalation role (chest pain: cardiologists; stroke: radiologists; trauma,
//   maternal and newborn: physicians; a physician who names services in their profile, only
//   for those services) at the institutions that have the service on call. The first
//   acknowledgement records the case's response time point (chest pain: ecg_read; stroke: ct_read;
//   the others: expert_response) unless one is recorded already. With nobody on call, everyone who
//   may see the case is alerted at once.
// cardiology, ecg, neurology, radiology, trauma, obstetrics, neonatology
bool is_oncall_service(std::string_view service);
std::string oncall_services_text();          // the services, comma separated
bool is_oncall_role(std::string_view role);  // primary, backup
std::string_view alert_service(std::string_view kind);
std::string_view acknowledgement_point(std::string_view kind);
bool in_escalation_group(const Principal& p, const teleconsult::CaseRow& c);
// An alert that went to an on-call service, unacknowledged and not yet escalated, whose
// `after` has passed since the case opened.
bool escalation_due(const teleconsult::CaseRow& c, storage::TimePoint now,
                    std::chrono::seconds after);

}  // namespace yilian::teleconsult
