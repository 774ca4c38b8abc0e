#include "yilian/reading/queue_rules.h"

#include <algorithm>

#include "yilian/common/text.h"

namespace yilian::reading {
namespace {

// Any item of the '\' separated `values` equals (case-insensitively) one of `wanted`.
bool any_of_list(std::string_view values, const std::vector<std::string>& wanted) {
  while (true) {
    std::size_t sep = values.find('\\');
    std::string item = ascii_lower(values.substr(0, sep));
    for (const std::string& w : wanted) {
      if (!item.empty() && item == ascii_lower(w)) return true;
    }
    if (sep == std::string_view::npos) return false;
    values.remove_prefix(sep + 1);
  }
}

}  // namespace

const char* priority_name(Priority p) {
  switch (p) {
    case Priority::stat:
      return "stat";
    case Priority::urgent:
      return "urgent";
    case Priority::routine:
      return "routine";
  }
  return "routine";
}

std::optional<Priority> parse_priority(std::string_view name) {
  std::string n = ascii_lower(name);
  if (n == "stat") return Priority::stat;
  if (n == "urgent") return Priority::urgent;
  if (n == "routine") return Priority::routine;
  return std::nullopt;
}

bool matches(const Match& m, const StudyFacts& s) {
  if (!m.modalities.empty() && !any_of_list(s.modalities, m.modalities)) return false;
  if (!m.body_parts.empty() && !any_of_list(s.body_parts, m.body_parts)) return false;
  if (!m.institutions.empty() && std::find(m.institutions.begin(), m.institutions.end(),
                                           s.institution) == m.institutions.end())
    return false;
  if (!m.text_contains.empty()) {
    std::string text = ascii_lower(s.description + "\n" + s.procedure + "\n" + s.indication);
    bool any = false;
    for (const std::string& t : m.text_contains) {
      if (!t.empty() && text.find(ascii_lower(t)) != std::string::npos) any = true;
    }
    if (!any) return false;
  }
  return true;
}

// The pathology centre's own rules, after the configured ones: whole-slide images (SM) are
// read by the "pathology" service, and a frozen section is STAT: the surgeon waits at the
// table for the result (`sla_frozen_section`, by default 30 minutes, the usual intraoperative
// consultation target).
const RouteRule& pathology_route() {
  static const RouteRule r{kPathologyService, Match{{"SM"}, {}, {}, {}}};
  return r;
}
const PriorityRule& frozen_section_rule() {
  static const PriorityRule r{Priority::stat, "frozen section: the surgeon is waiting",
                              Match{{"SM"}, {}, {}, {"frozen", "冰冻", "术中"}}};
  return r;
}

std::string route(const QueueRules& rules, const StudyFacts& s) {
  for (const RouteRule& r : rules.routes) {
    if (matches(r.match, s)) return r.service;
  }
  if (matches(pathology_route().match, s)) return pathology_route().service;
  return rules.default_service;
}

PriorityDecision decide_priority(const QueueRules& rules, const StudyFacts& s) {
  PriorityDecision d;
  std::string req = ascii_lower(s.requested_priority);
  if (req == "stat") {
    d = {Priority::stat, "order priority STAT"};
  } else if (req == "high") {
    d = {Priority::urgent, "order priority HIGH"};
  }
  for (const PriorityRule& r : rules.priority_rules) {
    if (static_cast<int>(r.priority) < static_cast<int>(d.priority) && matches(r.match, s)) {
      d = {r.priority, r.reason.empty() ? std::string("rule") : r.reason};
    }
  }
  const PriorityRule& frozen = frozen_section_rule();
  if (static_cast<int>(frozen.priority) < static_cast<int>(d.priority) &&
      matches(frozen.match, s)) {
    d = {frozen.priority, frozen.reason, rules.sla_frozen_section};
  }
  return d;
}

std::chrono::minutes due_within(const QueueRules& rules, const PriorityDecision& d) {
  return d.within.count() > 0 ? d.within : sla(rules, d.priority);
}

std::chrono::minutes sla(const QueueRules& rules, Priority p) {
  switch (p) {
    case Priority::stat:
      return rules.sla_stat;
    case Priority::urgent:
      return rules.sla_urgent;
    case Priority::routine:
      return rules.sla_routine;
  }
  return rules.sla_routine;
}

const char* task_status_name(TaskStatus s) {
  switch (s) {
    case TaskStatus::queued:
      return "queued";
    case TaskStatus::claimed:
      return "claimed";
    case TaskStatus::preliminary:
      return "preliminary";
    case TaskStatus::final:
      return "final";
  }
  return "queued";
}

std::optional<TaskStatus> parse_task_status(std::string_view s) {
  for (TaskStatus t :
       {TaskStatus::queued, TaskStatus::claimed, TaskStatus::preliminary, TaskStatus::final}) {
    if (s == task_status_name(t)) return t;
  }
  return std::nullopt;
}

const char* report_kind_name(ReportKind k) {
  switch (k) {
    case ReportKind::draft:
      return "draft";
    case ReportKind::preliminary:
      return "preliminary";
    case ReportKind::final:
      return "final";
    case ReportKind::addendum:
      return "addendum";
  }
  return "draft";
}

std::optional<ReportKind> parse_report_kind(std::string_view s) {
  for (ReportKind k :
       {ReportKind::draft, ReportKind::preliminary, ReportKind::final, ReportKind::addendum}) {
    if (s == report_kind_name(k)) return k;
  }
  return std::nullopt;
}

Result<TaskStatus> after_report(TaskStatus current, ReportKind kind, bool holds_claim) {
  auto refuse = [](std::string why) { return make_error(Errc::conflict, std::move(why)); };
  if (current == TaskStatus::final) {
    if (kind == ReportKind::addendum) return TaskStatus::final;
    return refuse("the report is final; only addenda may be added");
  }
  if (kind == ReportKind::addendum) return refuse("an addendum needs a final report");
  if (current == TaskStatus::queued) return refuse("claim the task before reporting");
  if (!holds_claim) return refuse("another reader holds this task");
  switch (kind) {
    case ReportKind::draft:
      return current;  // claimed stays claimed, preliminary stays preliminary
    case ReportKind::preliminary:
      return TaskStatus::preliminary;
    case ReportKind::final:
      return TaskStatus::final;
    case ReportKind::addendum:
      break;
  }
  return refuse("unknown report kind");
}

bool qc_sampled(std::int64_t task_id, int percent) {
  if (percent <= 0) return false;
  if (percent >= 100) return true;
  // SplitMix64 of the id: spreads consecutive ids evenly.
  std::uint64_t x = static_cast<std::uint64_t>(task_id) + 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return static_cast<int>(x % 100) < percent;
}

}  // namespace yilian::reading
