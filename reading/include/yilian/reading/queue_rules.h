// The reading queue's rules, free of I/O: routing a study to a reading service, its
// priority and due time, the report state machine, the claim order and QC sampling.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/identity/policy.h"

namespace yilian::reading {

enum class Priority : int { stat = 0, urgent = 1, routine = 2 };
const char* priority_name(Priority p);
std::optional<Priority> parse_priority(std::string_view name);  // "stat", "urgent", "routine"

// What routing and priority rules look at.
struct StudyFacts {
  std::string modalities;          // '\' separated, as in the index
  std::string body_parts;          // '\' separated
  std::string institution;         // requesting institution code
  std::string description;         // study description
  std::string procedure;           // requested procedure description
  std::string indication;          // reason for the procedure / admitting diagnosis
  std::string requested_priority;  // DICOM (0040,1003)
};

// Every non-empty list must match (any of its values); an empty list matches anything.
struct Match {
  std::vector<std::string> modalities;
  std::vector<std::string> body_parts;
  std::vector<std::string> institutions;
  std::vector<std::string> text_contains;  // in description, procedure or indication
};

struct RouteRule {
  std::string service;
  Match match;
};

struct PriorityRule {
  Priority priority = Priority::routine;
  std::string reason;
  Match match;
};

struct QueueRules {
  std::vector<RouteRule> routes;  // first match wins
  std::string default_service = "general";
  std::vector<PriorityRule> priority_rules;  // the most urgent match wins
  std::chrono::minutes sla_stat{30}, sla_urgent{120}, sla_routine{24 * 60};
  // A frozen section's result: the surgeon waits at the table (its own target, not the STAT one).
  std::chrono::minutes sla_frozen_section{30};
  std::chrono::milliseconds stable{10'000};  // no new instance this long: the study is complete
  // A study arriving from an edge node is complete when the edge says so; with no word and no
  // new instance from the edge this long (the edge gone for good), it is routed anyway.
  std::chrono::minutes edge_complete_wait{240};
  std::chrono::seconds lease{300};
  std::chrono::minutes critical_ack{30};
  int qc_percent = 5;
  double due_soon_fraction = 0.25;  // "near due" within this share of the SLA
};

// The pathology centre's reading service (identity::kPathologyService, read by pathologists):
// whole-slide images (modality SM) go to it when no configured route takes them, and frozen
// sections (冰冻 / 术中 / frozen in the study's texts) are STAT whatever the configured rules
// say, due `sla_frozen_section`.
using identity::kPathologyService;

bool matches(const Match& m, const StudyFacts& s);
std::string route(const QueueRules& rules, const StudyFacts& s);

struct PriorityDecision {
  Priority priority = Priority::routine;
  std::string reason;
  std::chrono::minutes within{0};  // the task's own target; 0: its priority's
};
PriorityDecision decide_priority(const QueueRules& rules, const StudyFacts& s);
std::chrono::minutes sla(const QueueRules& rules, Priority p);
// How long after the study arrived its reading is due.
std::chrono::minutes due_within(const QueueRules& rules, const PriorityDecision& d);

enum class TaskStatus { queued, claimed, preliminary, final };
const char* task_status_name(TaskStatus s);
std::optional<TaskStatus> parse_task_status(std::string_view s);

enum class ReportKind { draft, preliminary, final, addendum };
const char* report_kind_name(ReportKind k);
std::optional<ReportKind> parse_report_kind(std::string_view s);

// The task status after saving a report of `kind`, or why it is refused. Only the reader
// holding the claim writes drafts, preliminary and final reports; after final only addenda,
// by any reader of the task.
Result<TaskStatus> after_report(TaskStatus current, ReportKind kind, bool caller_holds_claim);

// Deterministic: the same task is always (not) sampled for a second reading.
bool qc_sampled(std::int64_t task_id, int percent);

}  // namespace yilian::reading
