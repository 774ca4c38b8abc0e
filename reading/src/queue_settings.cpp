#include "yilian/reading/queue_settings.h"

#include <algorithm>
#include <cmath>

namespace yilian::reading {
namespace {

using nlohmann::json;

Error bad(std::string_view key, const std::string& why) {
  return make_error(Errc::invalid_argument, std::string(key) + ": " + why);
}

json match_json(const Match& m) {
  return {{"modalities", m.modalities},
          {"body_parts", m.body_parts},
          {"institutions", m.institutions},
          {"text_contains", m.text_contains}};
}

Result<std::vector<std::string>> strings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array())
    return make_error(Errc::invalid_argument, std::string(key) + " must be a list");
  for (const json& v : *it) {
    if (!v.is_string() || v.get<std::string>().empty()) {
      return make_error(Errc::invalid_argument, std::string(key) + " must hold non-empty strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

Status read_match(const json& j, Match& m) {
  for (auto [key, out] :
       {std::pair{"modalities", &m.modalities}, std::pair{"body_parts", &m.body_parts},
        std::pair{"institutions", &m.institutions}, std::pair{"text_contains", &m.text_contains}}) {
    auto v = strings(j, key);
    if (!v.ok()) return v.error();
    *out = std::move(*v);
  }
  return Status::Ok();
}

Status check_members(const json& j, std::initializer_list<const char*> allowed) {
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      return make_error(Errc::invalid_argument, "unknown member " + key);
    }
  }
  return Status::Ok();
}

// A whole number in [lo, hi].
Result<std::int64_t> whole(std::string_view key, const json& v, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) return bad(key, "must be a whole number");
  const std::int64_t n = v.get<std::int64_t>();
  if (n < lo || n > hi) {
    return bad(key, "must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return n;
}

}  // namespace

const std::vector<std::string>& queue_setting_keys() {
  static const std::vector<std::string> keys = {
      "sla_stat_minutes",     "sla_urgent_minutes",
      "sla_routine_minutes",  "sla_frozen_section_minutes",
      "critical_ack_minutes", "qc_percent",
      "stable_seconds",       "lease_seconds",
      "default_service",      "routes",
      "priority_rules"};
  return keys;
}

json queue_setting(const QueueRules& r, std::string_view key) {
  if (key == "sla_stat_minutes") return r.sla_stat.count();
  if (key == "sla_urgent_minutes") return r.sla_urgent.count();
  if (key == "sla_routine_minutes") return r.sla_routine.count();
  if (key == "sla_frozen_section_minutes") return r.sla_frozen_section.count();
  if (key == "critical_ack_minutes") return r.critical_ack.count();
  if (key == "qc_percent") return r.qc_percent;
  if (key == "stable_seconds") return static_cast<double>(r.stable.count()) / 1000.0;
  if (key == "lease_seconds") return r.lease.count();
  if (key == "default_service") return r.default_service;
  if (key == "routes") {
    json list = json::array();
    for (const RouteRule& rule : r.routes) {
      json j = match_json(rule.match);
      j["service"] = rule.service;
      list.push_back(std::move(j));
    }
    return list;
  }
  if (key == "priority_rules") {
    json list = json::array();
    for (const PriorityRule& rule : r.priority_rules) {
      json j = match_json(rule.match);
      j["priority"] = priority_name(rule.priority);
      j["reason"] = rule.reason;
      list.push_back(std::move(j));
    }
    return list;
  }
  return nullptr;
}

Status apply_queue_setting(QueueRules& rules, std::string_view key, const json& v) {
  constexpr std::int64_t kYear = 365 * 24 * 60;
  QueueRules r = rules;
  auto minutes = [&](std::chrono::minutes& out, std::int64_t lo, std::int64_t hi) -> Status {
    auto n = whole(key, v, lo, hi);
    if (!n.ok()) return n.error();
    out = std::chrono::minutes(*n);
    return Status::Ok();
  };
  Status s = Status::Ok();
  if (key == "sla_stat_minutes") {
    s = minutes(r.sla_stat, 1, kYear);
  } else if (key == "sla_urgent_minutes") {
    s = minutes(r.sla_urgent, 1, kYear);
  } else if (key == "sla_routine_minutes") {
    s = minutes(r.sla_routine, 1, kYear);
  } else if (key == "sla_frozen_section_minutes") {
    s = minutes(r.sla_frozen_section, 1, 24 * 60);
  } else if (key == "critical_ack_minutes") {
    s = minutes(r.critical_ack, 1, 7 * 24 * 60);
  } else if (key == "qc_percent") {
    auto n = whole(key, v, 0, 100);
    if (!n.ok()) return n.error();
    r.qc_percent = static_cast<int>(*n);
  } else if (key == "lease_seconds") {
    auto n = whole(key, v, 10, 24 * 3600);
    if (!n.ok()) return n.error();
    r.lease = std::chrono::seconds(*n);
  } else if (key == "stable_seconds") {
    if (!v.is_number()) return bad(key, "must be a number of seconds");
    const double sec = v.get<double>();
    if (!std::isfinite(sec) || sec < 0 || sec > 3600) return bad(key, "must be from 0 to 3600");
    r.stable = std::chrono::milliseconds(std::llround(sec * 1000));
  } else if (key == "default_service") {
    if (!v.is_string() || v.get<std::string>().empty()) return bad(key, "must be a service name");
    r.default_service = v.get<std::string>();
  } else if (key == "routes") {
    if (!v.is_array()) return bad(key, "must be a list of routes");
    r.routes.clear();
    for (const json& item : v) {
      if (!item.is_object()) return bad(key, "each route must be an object");
      if (Status c = check_members(
              item, {"service", "modalities", "body_parts", "institutions", "text_contains"});
          !c)
        return bad(key, c.error().message);
      RouteRule rule;
      auto service = item.find("service");
      if (service == item.end() || !service->is_string() || service->get<std::string>().empty()) {
        return bad(key, "every route needs a service");
      }
      rule.service = service->get<std::string>();
      if (Status m = read_match(item, rule.match); !m) return bad(key, m.error().message);
      r.routes.push_back(std::move(rule));
    }
  } else if (key == "priority_rules") {
    if (!v.is_array()) return bad(key, "must be a list of priority rules");
    r.priority_rules.clear();
    for (const json& item : v) {
      if (!item.is_object()) return bad(key, "each priority rule must be an object");
      if (Status c = check_members(item, {"priority", "reason", "modalities", "body_parts",
                                          "institutions", "text_contains"});
          !c)
        return bad(key, c.error().message);
      PriorityRule rule;
      auto p = item.find("priority");
      std::optional<Priority> pr;
      if (p != item.end() && p->is_string()) pr = parse_priority(p->get<std::string>());
      if (!pr) return bad(key, "priority must be stat, urgent or routine");
      rule.priority = *pr;
      if (auto reason = item.find("reason"); reason != item.end()) {
        if (!reason->is_string()) return bad(key, "reason must be text");
        rule.reason = reason->get<std::string>();
      }
      if (Status m = read_match(item, rule.match); !m) return bad(key, m.error().message);
      r.priority_rules.push_back(std::move(rule));
    }
  } else {
    return make_error(Errc::not_found, "no queue setting " + std::string(key));
  }
  if (!s) return s;
  rules = std::move(r);
  return Status::Ok();
}

}  // namespace yilian::reading
