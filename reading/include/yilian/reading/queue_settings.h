// The queue settings an administrator changes while the hub runs (SLA targets, QC sampling,
// critical-result acknowledgement time, routing and priority rules...): each one a key with a
// JSON value, read from and applied to QueueRules. Free of I/O; QueueStore keeps the values
// set on the screen, ReadingQueue lays them over the configuration file's.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/reading/queue_rules.h"

namespace yilian::reading {

// Every key, in the order a screen shows them: sla_stat_minutes, sla_urgent_minutes,
// sla_routine_minutes, critical_ack_minutes, qc_percent, stable_seconds, lease_seconds,
// default_service, routes, priority_rules. The same names as in the file's [queue] table.
const std::vector<std::string>& queue_setting_keys();

// The value of `key` in `rules` (numbers, a string, or arrays of rule objects shaped like
// the file's [[queue.routes]] / [[queue.priority_rules]] tables). Null for an unknown key.
nlohmann::json queue_setting(const QueueRules& rules, std::string_view key);

// Sets `key` in `rules` from `value`, checked as the configuration file is (ranges, a service
// for every route, known priorities); `rules` is unchanged on an error (invalid_argument, or
// not_found for an unknown key).
Status apply_queue_setting(QueueRules& rules, std::string_view key, const nlohmann::json& value);

// A value set on the screen, as stored.
struct QueueSettingRow {
  std::string key;
  std::string value;  // JSON text
  std::string changed_by;
  std::string changed_at;
};

}  // namespace yilian::reading
