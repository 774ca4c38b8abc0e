#include "config.h"

#include "yilian/storage/database.h"

#include "yilian/common/principal.h"
#include "yilian/pacs/charset.h"
#include "yilian/teleconsult/calls.h"
#include "yilian/teleconsult/emergency_rules.h"

#include <toml++/toml.h>
#include <optional>
#include <set>

namespace yilian::app {
namespace {

Error bad(std::string msg) {
  return make_error(Errc::invalid_argument, "config: " + std::move(msg));
}

Status check_keys(const toml::table& t, const std::string& where, std::set<std::string> allowed) {
  for (const auto& [k, v] : t) {
    (void)v;
    if (!allowed.count(std::string(k.str()))) {
      return bad("unknown key '" + std::string(k.str()) + "' in " + where);
    }
  }
  return Status::Ok();
}

template <typename T>
Status read_int(const toml::table& t, const char* key, T& out, std::int64_t lo, std::int64_t hi,
                const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  auto v = n->value<std::int64_t>();
  if (!v || *v < lo || *v > hi) {
    return bad(where + "." + key + " must be an integer from " + std::to_string(lo) + " to " +
               std::to_string(hi));
  }
  out = static_cast<T>(*v);
  return Status::Ok();
}

Status read_string(const toml::table& t, const char* key, std::string& out,
                   const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  auto v = n->value<std::string>();
  if (!v) return bad(where + "." + key + " must be a string");
  out = *v;
  return Status::Ok();
}

Status read_bool(const toml::table& t, const char* key, bool& out, const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  auto v = n->value<bool>();
  if (!v) return bad(where + "." + key + " must be true or false");
  out = *v;
  return Status::Ok();
}

// A Specific Character Set term this build decodes (pacs/charset.h).
Status read_charset(const toml::table& t, const char* key, std::string& out,
                    const std::string& where) {
  if (Status s = read_string(t, key, out, where); !s) return s;
  if (!pacs::is_supported_charset(out)) {
    return bad(where + "." + key + " '" + out +
               "' is not a Specific Character Set this build decodes");
  }
  return Status::Ok();
}

Status read_strings(const toml::table& t, const char* key, std::vector<std::string>& out,
                    const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return Status::Ok();
  const toml::array* arr = n->as_array();
  if (!arr) return bad(where + "." + key + " must be an array of strings");
  for (const toml::node& item : *arr) {
    auto v = item.value<std::string>();
    if (!v) return bad(where + "." + key + " must be an array of strings");
    out.push_back(*v);
  }
  return Status::Ok();
}

Status read_match(const toml::table& t, reading::Match& m, const std::string& where) {
  if (Status s = read_strings(t, "modalities", m.modalities, where); !s) return s;
  if (Status s = read_strings(t, "body_parts", m.body_parts, where); !s) return s;
  if (Status s = read_strings(t, "institutions", m.institutions, where); !s) return s;
  return read_strings(t, "text_contains", m.text_contains, where);
}

Status read_queue(const toml::table& q, Config& c) {
  if (Status s =
          check_keys(q, "[queue]",
                     {"stable_seconds", "lease_seconds", "critical_ack_minutes", "qc_percent",
                      "sla_stat_minutes", "sla_urgent_minutes", "sla_routine_minutes",
                      "sla_frozen_section_minutes", "default_service", "national_id_issuer",
                      "routes", "priority_rules", "edge_wait_minutes"});
      !s)
    return s;
  for (const auto& [key, value] : q) c.queue_file_keys.insert(std::string(key.str()));
  reading::QueueRules& r = c.queue;
  std::int64_t stable_ms = r.stable.count();
  if (const toml::node* n = q.get("stable_seconds")) {
    auto v = n->value<double>();
    if (!v || *v < 0 || *v > 3600) return bad("queue.stable_seconds must be from 0 to 3600");
    stable_ms = static_cast<std::int64_t>(*v * 1000);
  }
  r.stable = std::chrono::milliseconds(stable_ms);
  std::int64_t edge_wait = r.edge_complete_wait.count();
  if (Status s = read_int(q, "edge_wait_minutes", edge_wait, 1, 7 * 24 * 60, "queue"); !s) return s;
  r.edge_complete_wait = std::chrono::minutes(edge_wait);
  std::int64_t lease = r.lease.count(), ack = r.critical_ack.count(), stat = r.sla_stat.count(),
               urgent = r.sla_urgent.count(), routine = r.sla_routine.count(),
               frozen = r.sla_frozen_section.count();
  int qc = r.qc_percent;
  if (Status s = read_int(q, "lease_seconds", lease, 10, 24 * 3600, "queue"); !s) return s;
  if (Status s = read_int(q, "critical_ack_minutes", ack, 1, 7 * 24 * 60, "queue"); !s) return s;
  if (Status s = read_int(q, "qc_percent", qc, 0, 100, "queue"); !s) return s;
  if (Status s = read_int(q, "sla_stat_minutes", stat, 1, 365 * 24 * 60, "queue"); !s) return s;
  if (Status s = read_int(q, "sla_urgent_minutes", urgent, 1, 365 * 24 * 60, "queue"); !s) return s;
  if (Status s = read_int(q, "sla_routine_minutes", routine, 1, 365 * 24 * 60, "queue"); !s)
    return s;
  if (Status s = read_int(q, "sla_frozen_section_minutes", frozen, 1, 24 * 60, "queue"); !s)
    return s;
  r.lease = std::chrono::seconds(lease);
  r.critical_ack = std::chrono::minutes(ack);
  r.qc_percent = qc;
  r.sla_stat = std::chrono::minutes(stat);
  r.sla_urgent = std::chrono::minutes(urgent);
  r.sla_routine = std::chrono::minutes(routine);
  r.sla_frozen_section = std::chrono::minutes(frozen);
  if (Status s = read_string(q, "default_service", r.default_service, "queue"); !s) return s;
  if (Status s = read_string(q, "national_id_issuer", c.national_id_issuer, "queue"); !s) return s;
  if (const toml::node* n = q.get("routes")) {
    const toml::array* arr = n->as_array();
    if (!arr) return bad("queue.routes must be an array of tables ([[queue.routes]])");
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (!t) return bad("each [[queue.routes]] entry must be a table");
      if (Status s =
              check_keys(*t, "[[queue.routes]]",
                         {"service", "modalities", "body_parts", "institutions", "text_contains"});
          !s)
        return s;
      reading::RouteRule rule;
      if (Status s = read_string(*t, "service", rule.service, "queue.routes"); !s) return s;
      if (rule.service.empty()) return bad("every queue route needs a service");
      if (Status s = read_match(*t, rule.match, "queue.routes"); !s) return s;
      r.routes.push_back(std::move(rule));
    }
  }
  if (const toml::node* n = q.get("priority_rules")) {
    const toml::array* arr = n->as_array();
    if (!arr) return bad("queue.priority_rules must be an array of tables");
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (!t) return bad("each [[queue.priority_rules]] entry must be a table");
      if (Status s = check_keys(
              *t, "[[queue.priority_rules]]",
              {"priority", "reason", "modalities", "body_parts", "institutions", "text_contains"});
          !s)
        return s;
      reading::PriorityRule rule;
      std::string p;
      if (Status s = read_string(*t, "priority", p, "queue.priority_rules"); !s) return s;
      auto pr = reading::parse_priority(p);
      if (!pr) return bad("queue.priority_rules.priority must be stat, urgent or routine");
      rule.priority = *pr;
      if (Status s = read_string(*t, "reason", rule.reason, "queue.priority_rules"); !s) return s;
      if (Status s = read_match(*t, rule.match, "queue.priority_rules"); !s) return s;
      r.priority_rules.push_back(std::move(rule));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Config> parse_config(std::string_view text) {
  toml::table root;
  try {
    root = toml::parse(text);
  } catch (const toml::parse_error& e) {
    return bad(std::string(e.description()) + " at line " + std::to_string(e.source().begin.line));
  }
  Config c;
  if (Status s = check_keys(root, "the top level",
                            {"dicom", "dicom_peers", "storage", "cache", "http", "institutions",
                             "reading_services", "auth", "queue", "database", "cluster", "limits",
                             "emergency", "edge", "lab", "site", "calls"});
      !s)
    return s.error();

  if (const toml::table* d = root["dicom"].as_table()) {
    if (Status s = check_keys(
            *d, "[dicom]",
            {"port", "aet", "max_associations", "reject_unknown_ae", "dimse_timeout_seconds",
             "acse_timeout_seconds", "max_connections", "max_connections_per_address",
             "default_charset", "senders", "max_find_matches"});
        !s)
      return s.error();
    if (Status s = read_int(*d, "port", c.dicom_port, 1, 65535, "dicom"); !s) return s.error();
    if (Status s = read_string(*d, "aet", c.ae_title, "dicom"); !s) return s.error();
    if (Status s = read_int(*d, "max_associations", c.max_associations, 1, 1024, "dicom"); !s)
      return s.error();
    if (Status s = read_int(*d, "dimse_timeout_seconds", c.dimse_timeout_s, 1, 3600, "dicom"); !s)
      return s.error();
    if (Status s = read_int(*d, "acse_timeout_seconds", c.acse_timeout_s, 1, 600, "dicom"); !s)
      return s.error();
    if (Status s = read_int(*d, "max_find_matches", c.max_find_matches, 1, 1000000, "dicom"); !s)
      return s.error();
    if (Status s = read_int(*d, "max_connections", c.max_dicom_connections, 1, 100000, "dicom"); !s)
      return s.error();
    if (Status s = read_int(*d, "max_connections_per_address", c.max_dicom_connections_per_address,
                            1, 100000, "dicom");
        !s)
      return s.error();
    if (Status s = read_bool(*d, "reject_unknown_ae", c.reject_unknown_ae, "dicom"); !s)
      return s.error();
    if (Status s = read_charset(*d, "default_charset", c.default_charset, "dicom"); !s)
      return s.error();
    if (const toml::node* n = d->get("senders")) {
      const toml::array* arr = n->as_array();
      if (!arr) return bad("dicom.senders must be an array of tables ([[dicom.senders]])");
      for (const toml::node& item : *arr) {
        const toml::table* t = item.as_table();
        if (!t) return bad("each [[dicom.senders]] entry must be a table");
        if (Status s = check_keys(*t, "[[dicom.senders]]",
                                  {"ae_title", "charset", "override_declared_charset"});
            !s)
          return s.error();
        SenderConfig sender;
        if (Status s = read_string(*t, "ae_title", sender.ae_title, "dicom.senders"); !s)
          return s.error();
        if (sender.ae_title.empty() || sender.ae_title.size() > 16)
          return bad("dicom.senders.ae_title must be 1 to 16 characters");
        sender.charset = c.default_charset;
        const std::string where = "dicom.senders (" + sender.ae_title + ")";
        if (Status s = read_charset(*t, "charset", sender.charset, where); !s) return s.error();
        if (Status s =
                read_bool(*t, "override_declared_charset", sender.override_declared_charset, where);
            !s)
          return s.error();
        c.senders.push_back(std::move(sender));
      }
    }
  } else if (root.contains("dicom")) {
    return bad("[dicom] must be a table");
  }

  if (const toml::node* n = root.get("dicom_peers")) {
    const toml::array* arr = n->as_array();
    if (!arr) return bad("dicom_peers must be an array of tables ([[dicom_peers]])");
    std::set<std::string> seen;
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (!t) return bad("each [[dicom_peers]] entry must be a table");
      if (Status s = check_keys(*t, "[[dicom_peers]]", {"ae_title", "host", "port", "roles"}); !s)
        return s.error();
      DicomPeerConfig peer;
      if (Status s = read_string(*t, "ae_title", peer.ae_title, "dicom_peers"); !s)
        return s.error();
      if (peer.ae_title.empty() || peer.ae_title.size() > 16)
        return bad("dicom_peers.ae_title must be 1 to 16 characters");
      if (!seen.insert(peer.ae_title).second)
        return bad("DICOM peer " + peer.ae_title + " is listed twice");
      if (Status s = read_string(*t, "host", peer.host, "dicom_peers"); !s) return s.error();
      if (Status s = read_int(*t, "port", peer.port, 1, 65535, "dicom_peers"); !s) return s.error();
      if (peer.host.empty() != (peer.port == 0))
        return bad("dicom_peers.host and dicom_peers.port go together (peer " + peer.ae_title +
                   ")");
      std::vector<std::string> roles;
      if (Status s = read_strings(*t, "roles", roles, "dicom_peers"); !s) return s.error();
      for (const std::string& r : roles) {
        auto role = yilian::parse_role(r);
        if (!role || *role == yilian::Role::admin)
          return bad("dicom_peers.roles: '" + r + "' is not a clinical role");
        peer.roles |= 1u << static_cast<unsigned>(*role);
      }
      if (peer.roles == 0) peer.roles = 1u << static_cast<unsigned>(yilian::Role::township_doctor);
      c.dicom_peers.push_back(std::move(peer));
    }
  }

  if (const toml::table* k = root["storage"].as_table()) {
    if (Status s = check_keys(*k, "[storage]", {"reserve_megabytes"}); !s) return s.error();
    if (Status s = read_int(*k, "reserve_megabytes", c.reserve_megabytes, 0, 1u << 24, "storage");
        !s)
      return s.error();
  } else if (root.contains("storage")) {
    return bad("[storage] must be a table");
  }

  if (const toml::table* k = root["cache"].as_table()) {
    if (Status s = check_keys(*k, "[cache]", {"max_megabytes"}); !s) return s.error();
    if (Status s = read_int(*k, "max_megabytes", c.cache_max_megabytes, 1, 1u << 24, "cache"); !s)
      return s.error();
  } else if (root.contains("cache")) {
    return bad("[cache] must be a table");
  }

  if (const toml::table* h = root["http"].as_table()) {
    if (Status s = check_keys(
            *h, "[http]",
            {"port", "bind", "tls_cert", "tls_key", "cors_origins", "ws_ping_after_idle_seconds",
             "ws_hangup_after_idle_seconds", "web_root", "ohif_root"});
        !s)
      return s.error();
    if (Status s = read_strings(*h, "cors_origins", c.cors_origins, "http"); !s) return s.error();
    if (Status s = read_string(*h, "tls_cert", c.tls_cert, "http"); !s) return s.error();
    if (Status s = read_string(*h, "tls_key", c.tls_key, "http"); !s) return s.error();
    if (c.tls_cert.empty() != c.tls_key.empty()) {
      return bad("http.tls_cert and http.tls_key go together");
    }
    if (Status s = read_int(*h, "port", c.http_port, 1, 65535, "http"); !s) return s.error();
    if (Status s = read_string(*h, "bind", c.http_bind, "http"); !s) return s.error();
    if (Status s = read_string(*h, "web_root", c.web_root, "http"); !s) return s.error();
    if (Status s = read_string(*h, "ohif_root", c.ohif_root, "http"); !s) return s.error();
    if (Status s =
            read_int(*h, "ws_ping_after_idle_seconds", c.ws_ping_after_idle_s, 1, 3600, "http");
        !s)
      return s.error();
    if (Status s =
            read_int(*h, "ws_hangup_after_idle_seconds", c.ws_hangup_after_idle_s, 2, 7200, "http");
        !s)
      return s.error();
    if (c.ws_hangup_after_idle_s <= c.ws_ping_after_idle_s) {
      return bad("http.ws_hangup_after_idle_seconds must be above ws_ping_after_idle_seconds");
    }
  } else if (root.contains("http")) {
    return bad("[http] must be a table");
  }

  if (const toml::table* l = root["limits"].as_table()) {
    const std::pair<const char*, std::uint32_t*> limits[] = {
        {"ws_connections_per_user", &c.ws_connections_per_user},
        {"ws_connections_per_address", &c.ws_connections_per_address},
        {"ws_messages_per_second", &c.ws_messages_per_second},
        {"ws_message_burst", &c.ws_message_burst},
        {"renders_per_user", &c.renders_per_user},
        {"uploads_per_user", &c.uploads_per_user},
        {"max_body_megabytes", &c.max_body_megabytes},
        {"max_stow_megabytes", &c.max_stow_megabytes}};
    std::set<std::string> keys;
    for (const auto& [key, out] : limits) keys.insert(key);
    if (Status s = check_keys(*l, "[limits]", keys); !s) return s.error();
    for (const auto& [key, out] : limits) {
      if (Status s = read_int(*l, key, *out, 0, 1000000, "limits"); !s) return s.error();
    }
    if (c.max_body_megabytes < 1) return bad("limits.max_body_megabytes must be at least 1");
    if (c.ws_messages_per_second > 0 && c.ws_message_burst < 1) {
      return bad("limits.ws_message_burst must be at least 1 when messages are rate-limited");
    }
  } else if (root.contains("limits")) {
    return bad("[limits] must be a table");
  }

  if (const toml::table* e = root["emergency"].as_table()) {
    if (Status s = check_keys(*e, "[emergency]", {"alert_escalation_seconds", "targets"}); !s)
      return s.error();
    // [emergency.targets]: "kind.interval" = minutes, the consortium's own targets.
    if (const toml::node* n = e->get("targets")) {
      const toml::table* t = n->as_table();
      if (!t) return bad("emergency.targets must be a table of \"kind.interval\" = minutes");
      for (const auto& [k, v] : *t) {
        const std::string key(k.str());
        const std::size_t dot = key.find('.');
        if (dot == std::string::npos ||
            !teleconsult::is_interval(key.substr(0, dot), key.substr(dot + 1))) {
          return bad("emergency.targets: '" + key +
                     "' is not an interval of an emergency case (e.g. \"trauma.team_response\")");
        }
        auto minutes = v.value<std::int64_t>();
        if (!minutes || *minutes < 1 || *minutes > 1440) {
          return bad("emergency.targets." + key + " must be minutes from 1 to 1440");
        }
        c.emergency_targets[key] = static_cast<int>(*minutes);
      }
    }
    if (Status s =
            read_int(*e, "alert_escalation_seconds", c.alert_escalation_s, 10, 3600, "emergency");
        !s)
      return s.error();
  } else if (root.contains("emergency")) {
    return bad("[emergency] must be a table");
  }

  if (const toml::table* e = root["edge"].as_table()) {
    if (Status s = check_keys(*e, "[edge]", {"upload_expiry_hours"}); !s) return s.error();
    if (Status s = read_int(*e, "upload_expiry_hours", c.edge_upload_expiry_h, 1, 24 * 366, "edge");
        !s)
      return s.error();
  } else if (root.contains("edge")) {
    return bad("[edge] must be a table");
  }

  // [site]: the consortium's local time, for times sent without a zone (HL7, FHIR, DICOM dates)
  // and the figures by month. `[lab] utc_offset_minutes` is its older spelling, still read.
  std::optional<int> site_offset;
  if (const toml::table* t = root["site"].as_table()) {
    if (Status s = check_keys(*t, "[site]", {"utc_offset_minutes"}); !s) return s.error();
    int offset = c.lab.utc_offset_minutes;
    if (Status s = read_int(*t, "utc_offset_minutes", offset, -720, 840, "site"); !s) {
      return s.error();
    }
    if (t->contains("utc_offset_minutes")) site_offset = offset;
  } else if (root.contains("site")) {
    return bad("[site] must be a table");
  }

  if (const toml::table* l = root["lab"].as_table()) {
    if (Status s = check_keys(*l, "[lab]",
                              {"mllp_port", "mllp_bind", "utc_offset_minutes", "qualifications",
                               "local_codes", "recognition"});
        !s)
      return s.error();
    if (Status s = read_int(*l, "mllp_port", c.mllp_port, 0, 65535, "lab"); !s) return s.error();
    if (Status s = read_string(*l, "mllp_bind", c.mllp_bind, "lab"); !s) return s.error();
    if (Status s = read_int(*l, "utc_offset_minutes", c.lab.utc_offset_minutes, -720, 840, "lab");
        !s)
      return s.error();
    if (site_offset && l->contains("utc_offset_minutes") &&
        *site_offset != c.lab.utc_offset_minutes) {
      return bad("[site] utc_offset_minutes and [lab] utc_offset_minutes differ; keep [site]'s");
    }
    // Tables of strings: a laboratory's qualification; a sender's local code's LOINC code.
    auto strings = [&](const char* key, std::map<std::string, std::string>& out) -> Status {
      const toml::node* n = l->get(key);
      if (!n) return Status::Ok();
      const toml::table* t = n->as_table();
      if (!t) return bad(std::string("lab.") + key + " must be a table of strings");
      for (const auto& [k, v] : *t) {
        auto text = v.value<std::string>();
        if (!text || text->empty()) {
          return bad(std::string("lab.") + key + "." + std::string(k.str()) +
                     " must be a non-empty string");
        }
        out[std::string(k.str())] = *text;
      }
      return Status::Ok();
    };
    if (Status s = strings("qualifications", c.lab.qualifications); !s) return s.error();
    if (Status s = strings("local_codes", c.lab.local_codes); !s) return s.error();
    for (const auto& [key, loinc] : c.lab.local_codes) {
      if (key.find(':') == std::string::npos || key.front() == ':' || key.back() == ':') {
        return bad("lab.local_codes keys are \"institution:local code\", not '" + key + "'");
      }
    }
    if (const toml::node* n = l->get("recognition")) {
      const toml::array* arr = n->as_array();
      if (!arr) return bad("lab.recognition must be an array of tables ([[lab.recognition]])");
      for (const toml::node& item : *arr) {
        const toml::table* t = item.as_table();
        if (!t) return bad("lab.recognition must be an array of tables ([[lab.recognition]])");
        if (Status s = check_keys(*t, "[[lab.recognition]]",
                                  {"code", "modality", "qualifications", "valid_days"});
            !s)
          return s.error();
        lab::RecognitionRule rule;
        if (Status s = read_string(*t, "code", rule.code, "lab.recognition"); !s) return s.error();
        if (Status s = read_string(*t, "modality", rule.modality, "lab.recognition"); !s)
          return s.error();
        if (Status s = read_strings(*t, "qualifications", rule.qualifications, "lab.recognition");
            !s)
          return s.error();
        if (Status s = read_int(*t, "valid_days", rule.valid_days, 1, 3650, "lab.recognition"); !s)
          return s.error();
        if (rule.code.empty() == rule.modality.empty() || rule.qualifications.empty() ||
            rule.valid_days == 0) {
          return bad(
              "each [[lab.recognition]] needs code (a LOINC test) or modality (an imaging "
              "examination), qualifications and valid_days");
        }
        c.lab.recognition.push_back(std::move(rule));
      }
    }
  } else if (root.contains("lab")) {
    return bad("[lab] must be a table");
  }
  if (site_offset) c.lab.utc_offset_minutes = *site_offset;

  // [calls]: the ICE servers consult video calls use across the clinics' NATs.
  if (const toml::table* t = root["calls"].as_table()) {
    if (Status s =
            check_keys(*t, "[calls]", {"stun", "turn", "turn_secret", "turn_credential_hours"});
        !s)
      return s.error();
    teleconsult::CallOptions& k = c.calls;
    if (Status s = read_strings(*t, "stun", k.stun, "calls"); !s) return s.error();
    if (Status s = read_strings(*t, "turn", k.turn, "calls"); !s) return s.error();
    if (Status s = read_string(*t, "turn_secret", k.turn_secret, "calls"); !s) return s.error();
    if (Status s = read_int(*t, "turn_credential_hours", k.turn_credential_hours, 1, 168, "calls");
        !s)
      return s.error();
    for (const std::string& u : k.stun) {
      if (!teleconsult::is_ice_url(u, false)) {
        return bad("calls.stun: \"" + u + "\" is not a stun: or stuns: URL");
      }
    }
    for (const std::string& u : k.turn) {
      if (!teleconsult::is_ice_url(u, true)) {
        return bad("calls.turn: \"" + u + "\" is not a turn: or turns: URL");
      }
    }
    if (!k.turn.empty() && k.turn_secret.size() < 16) {
      return bad(
          "calls.turn needs turn_secret (the TURN server's static-auth-secret, at least "
          "16 characters)");
    }
  } else if (root.contains("calls")) {
    return bad("[calls] must be a table");
  }

  if (const toml::node* n = root.get("institutions")) {
    const toml::array* arr = n->as_array();
    if (!arr) return bad("institutions must be an array of tables ([[institutions]])");
    std::set<std::string> codes, aes;
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (!t) return bad("each [[institutions]] entry must be a table");
      if (Status s =
              check_keys(*t, "[[institutions]]", {"code", "name", "ae_titles", "level", "parent"});
          !s)
        return s.error();
      InstitutionConfig inst;
      if (Status s = read_string(*t, "level", inst.level, "institutions"); !s) return s.error();
      if (Status s = read_string(*t, "parent", inst.parent, "institutions"); !s) return s.error();
      if (Status s = read_string(*t, "code", inst.code, "institutions"); !s) return s.error();
      if (Status s = read_string(*t, "name", inst.name, "institutions"); !s) return s.error();
      if (inst.code.empty()) return bad("every institution needs a code");
      if (inst.code == "unknown") return bad("institution code 'unknown' is reserved");
      if (!codes.insert(inst.code).second) return bad("duplicate institution code " + inst.code);
      if (const toml::node* a = t->get("ae_titles")) {
        const toml::array* list = a->as_array();
        if (!list) return bad("institutions.ae_titles must be an array of strings");
        for (const toml::node& ae : *list) {
          auto v = ae.value<std::string>();
          if (!v || v->empty() || v->size() > 16) {
            return bad("AE titles must be strings of 1 to 16 characters (institution " + inst.code +
                       ")");
          }
          if (!aes.insert(*v).second) return bad("AE title " + *v + " is mapped twice");
          inst.ae_titles.push_back(*v);
        }
      }
      c.institutions.push_back(std::move(inst));
    }
  }

  if (const toml::node* n = root.get("reading_services")) {
    const toml::array* arr = n->as_array();
    if (!arr) return bad("reading_services must be an array of tables ([[reading_services]])");
    for (const toml::node& item : *arr) {
      const toml::table* t = item.as_table();
      if (!t) return bad("each [[reading_services]] entry must be a table");
      if (Status s = check_keys(*t, "[[reading_services]]", {"provider", "service", "clients"}); !s)
        return s.error();
      ReadingServiceConfig rs;
      if (Status s = read_string(*t, "provider", rs.provider, "reading_services"); !s)
        return s.error();
      if (Status s = read_string(*t, "service", rs.service, "reading_services"); !s)
        return s.error();
      if (rs.provider.empty()) return bad("every reading service needs a provider");
      if (rs.service != "imaging" && rs.service != "ecg") {
        return bad("reading_services.service must be \"imaging\" or \"ecg\"");
      }
      const toml::array* clients = t->get_as<toml::array>("clients");
      if (!clients) return bad("reading_services.clients must be an array of institution codes");
      for (const toml::node& cl : *clients) {
        auto v = cl.value<std::string>();
        if (!v || v->empty()) return bad("reading_services.clients must hold institution codes");
        rs.clients.push_back(*v);
      }
      c.reading_services.push_back(std::move(rs));
    }
  }

  if (const toml::table* a = root["auth"].as_table()) {
    if (Status s = check_keys(*a, "[auth]",
                              {"token_ttl_minutes", "viewer_ttl_minutes", "secure_cookies",
                               "admin_username", "admin_institution", "admin_password_file"});
        !s)
      return s.error();
    if (Status s = read_int(*a, "token_ttl_minutes", c.token_ttl_minutes, 1, 7 * 24 * 60, "auth");
        !s)
      return s.error();
    if (Status s = read_int(*a, "viewer_ttl_minutes", c.viewer_ttl_minutes, 1, 24 * 60, "auth"); !s)
      return s.error();
    if (Status s = read_bool(*a, "secure_cookies", c.secure_cookies, "auth"); !s) return s.error();
    if (Status s = read_string(*a, "admin_username", c.admin_username, "auth"); !s)
      return s.error();
    if (Status s = read_string(*a, "admin_institution", c.admin_institution, "auth"); !s)
      return s.error();
    if (Status s = read_string(*a, "admin_password_file", c.admin_password_file, "auth"); !s)
      return s.error();
  } else if (root.contains("auth")) {
    return bad("[auth] must be a table");
  }
  if (const toml::table* q = root["queue"].as_table()) {
    if (Status s = read_queue(*q, c); !s) return s.error();
  } else if (root.contains("queue")) {
    return bad("[queue] must be a table");
  }
  if (const toml::table* d = root["database"].as_table()) {
    if (Status s = check_keys(*d, "[database]", {"url"}); !s) return s.error();
    if (Status s = read_string(*d, "url", c.database_url, "database"); !s) return s.error();
    if (!c.database_url.empty() && !storage::is_postgres_url(c.database_url)) {
      return bad("database.url must be a postgresql:// URL");
    }
  } else if (root.contains("database")) {
    return bad("[database] must be a table");
  }
  if (const toml::table* k = root["cluster"].as_table()) {
    if (Status s = check_keys(*k, "[cluster]", {"blobs", "address"}); !s) return s.error();
    if (Status s = read_string(*k, "blobs", c.shared_blobs, "cluster"); !s) return s.error();
    if (Status s = read_string(*k, "address", c.node_address, "cluster"); !s) return s.error();
  } else if (root.contains("cluster")) {
    return bad("[cluster] must be a table");
  }
  return c;
}

Result<Config> load_config(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return make_error(Errc::not_found, "config file " + file.string() + " not found");
  }
  std::string text;
  {
    FILE* f = std::fopen(file.c_str(), "rb");
    if (!f) return make_error(Errc::io, "cannot read " + file.string());
    char buf[8192];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  }
  return parse_config(text);
}

}  // namespace yilian::app
