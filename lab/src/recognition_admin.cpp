// The consortium admins' routes for the recognition table (检查检验结果互认): which tests and
// examinations are recognised across members, from laboratories of which qualification, for how
// long; and each laboratory's qualification. The configuration file's table is the base; an
// admin's edit replaces, adds or takes out one entry, and restoring drops the edit.
#include "recognition_admin.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/auth.h"
#include "yilian/identity/rest.h"
#include "yilian/net/json_body.h"

namespace yilian::lab {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

bool is_loinc(const std::string& code) {
  const std::size_t dash = code.find('-');
  if (dash == std::string::npos || dash == 0 || dash > 7 || dash + 2 != code.size()) return false;
  for (std::size_t i = 0; i < code.size(); ++i) {
    if (i != dash && !std::isdigit(static_cast<unsigned char>(code[i]))) return false;
  }
  return true;
}

bool is_modality(const std::string& m) {
  return m.size() >= 2 && m.size() <= 4 && std::all_of(m.begin(), m.end(), [](char c) {
           return std::isupper(static_cast<unsigned char>(c)) ||
                  std::isdigit(static_cast<unsigned char>(c));
         });
}

// A qualification's name: lower-case letters, digits and '_' ("iso15189", "provincial_eqa").
bool is_qualification(const std::string& q) {
  return !q.empty() && q.size() <= 32 && std::all_of(q.begin(), q.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

// A holder names an institution by its code or a laboratory as its results name it (OBX-23),
// which may be Chinese: printable UTF-8 of at most 128 bytes.
bool is_holder(const std::string& h) {
  if (h.empty() || h.size() > 128 || !is_valid_utf8(h)) return false;
  if (h.front() == ' ' || h.back() == ' ') return false;
  return std::none_of(h.begin(), h.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// The rule's key from the body: exactly one of "code" (a LOINC test) and "modality".
Result<RecognitionRule> rule_of(const json& body) {
  RecognitionRule r;
  r.code = http::json_string(body, "code");
  r.modality = http::json_string(body, "modality");
  if (r.code.empty() == r.modality.empty()) {
    return make_error(Errc::invalid_argument,
                      "name either code (a LOINC test, e.g. 718-7) or modality (e.g. CT)");
  }
  if (!r.code.empty() && !is_loinc(r.code)) {
    return make_error(Errc::invalid_argument, "code is a LOINC code such as 718-7");
  }
  if (!r.modality.empty() && !is_modality(r.modality)) {
    return make_error(Errc::invalid_argument, "modality is a DICOM modality such as CT");
  }
  return r;
}

Result<RecognitionRule> full_rule_of(const json& body) {
  auto r = rule_of(body);
  if (!r.ok()) return r;
  const json* q = body.contains("qualifications") ? &body["qualifications"] : nullptr;
  if (!q || !q->is_array() || q->empty() || q->size() > 16) {
    return make_error(Errc::invalid_argument, "qualifications is a list of 1 to 16 qualifications");
  }
  std::set<std::string> seen;
  for (const json& item : *q) {
    if (!item.is_string() || !is_qualification(item.get<std::string>())) {
      return make_error(Errc::invalid_argument,
                        "a qualification is lower-case letters, digits and _ (e.g. iso15189)");
    }
    if (seen.insert(item.get<std::string>()).second) {
      r->qualifications.push_back(item.get<std::string>());
    }
  }
  const json* days = body.contains("validDays") ? &body["validDays"] : nullptr;
  if (!days || !days->is_number_integer() || days->get<std::int64_t>() < 1 ||
      days->get<std::int64_t>() > 3650) {
    return make_error(Errc::invalid_argument, "validDays is a whole number from 1 to 3650");
  }
  r->valid_days = days->get<int>();
  return r;
}

Result<std::string> holder_of(const json& body) {
  std::string holder = http::json_string(body, "holder");
  if (!is_holder(holder)) {
    return make_error(Errc::invalid_argument,
                      "holder is an institution code or a laboratory's name (at most 128 bytes)");
  }
  return holder;
}

json rule_json(const RecognitionRule& r) {
  json out = {{"qualifications", r.qualifications}, {"validDays", r.valid_days}};
  if (r.code.empty()) {
    out["modality"] = r.modality;
  } else {
    out["code"] = r.code;
  }
  return out;
}

json edited_json(const std::string& by, const std::string& at) { return {{"by", by}, {"at", at}}; }

// The table as the admin screen shows it: every entry in force or taken out, where it came
// from ("file": as the file has it; "edited": the file's, changed; "added": not in the file),
// and who changed it when.
json table_json(const LabOptions& file, const std::vector<RuleEdit>& rule_edits,
                const std::vector<QualificationEdit>& qualification_edits) {
  std::map<std::string, const RuleEdit*> by_key;
  for (const RuleEdit& e : rule_edits) by_key[rule_key(e.rule)] = &e;
  json rules = json::array();
  std::set<std::string> in_file;
  for (const RecognitionRule& r : file.recognition) {
    const std::string key = rule_key(r);
    in_file.insert(key);
    auto e = by_key.find(key);
    if (e == by_key.end()) {
      json j = rule_json(r);
      j["source"] = "file";
      j["removed"] = false;
      rules.push_back(std::move(j));
      continue;
    }
    json j = rule_json(e->second->removed ? r : e->second->rule);
    j["source"] = "edited";
    j["removed"] = e->second->removed;
    j["edited"] = edited_json(e->second->by, e->second->at);
    j["file"] = rule_json(r);
    rules.push_back(std::move(j));
  }
  for (const RuleEdit& e : rule_edits) {
    if (in_file.count(rule_key(e.rule))) continue;
    json j = rule_json(e.rule);
    j["source"] = "added";
    j["removed"] = e.removed;
    j["edited"] = edited_json(e.by, e.at);
    rules.push_back(std::move(j));
  }

  std::map<std::string, json> holders;
  for (const auto& [holder, q] : file.qualifications) {
    holders[holder] = {
        {"holder", holder}, {"qualification", q}, {"source", "file"}, {"removed", false}};
  }
  for (const QualificationEdit& e : qualification_edits) {
    json& j = holders[e.holder];
    const bool from_file = file.qualifications.count(e.holder) > 0;
    j["holder"] = e.holder;
    j["qualification"] = e.removed ? (from_file ? file.qualifications.at(e.holder) : std::string())
                                   : e.qualification;
    j["source"] = from_file ? "edited" : "added";
    j["removed"] = e.removed;
    j["edited"] = edited_json(e.by, e.at);
    if (from_file) j["file"] = file.qualifications.at(e.holder);
  }
  json qualifications = json::array();
  for (auto& [holder, j] : holders) qualifications.push_back(std::move(j));
  return {{"rules", rules}, {"qualifications", qualifications}};
}

}  // namespace

void register_recognition_admin(http::Router& router, LabStore& store, const LabOptions& options,
                                identity::AuthService& auth) {
  // Runs `handler` (body, principal) for admins, with the body read as a JSON object; the
  // answer to every change is the whole table as it now stands.
  auto admin = [&auth, &store, &options](const char* action, auto handler) {
    return [&auth, &store, &options, action, handler](const Request& req) -> Response {
      if (auto no = identity::refuse_non_admin(auth, req, action, "lab_recognition")) return *no;
      json body = json::object();
      if (req.method != "GET") {
        auto parsed = http::json_object_body(req);
        if (!parsed.ok()) return Response::from_error(parsed.error());
        body = std::move(*parsed);
      }
      auto done = handler(body, *req.principal);
      if (!done.ok()) {
        if (done.error().code != Errc::internal) {
          auth.audit(req, action, "lab_recognition", "", "refused", done.error().message);
        }
        return Response::from_error(done.error());
      }
      if (!done->empty()) auth.audit(req, action, "lab_recognition", *done, "ok");
      auto rules = store.rule_edits();
      if (!rules.ok()) return Response::from_error(rules.error());
      auto qualifications = store.qualification_edits();
      if (!qualifications.ok()) return Response::from_error(qualifications.error());
      auto unqualified = store.unqualified_labs();
      if (!unqualified.ok()) return Response::from_error(unqualified.error());
      json table = table_json(options, *rules, *qualifications);
      json labs = json::array();
      const RecognitionTable in_force = recognition_table(options, *rules, *qualifications);
      for (const LabStore::UnqualifiedLab& l : *unqualified) {
        // Qualified since: its results are judged by the table's qualification now.
        if (!laboratory_qualification(l.holder, l.institution, in_force.qualifications).empty()) {
          continue;
        }
        labs.push_back({{"holder", l.holder},
                        {"institution", l.institution},
                        {"results", l.results},
                        {"lastReceivedAt", l.last_received_at}});
      }
      table["unqualified"] = std::move(labs);
      // The tests results have named: each rule's test by its name, and the codes to choose
      // from when a rule is added.
      auto known = store.known_tests();
      if (!known.ok()) return Response::from_error(known.error());
      std::map<std::string, std::string> names;
      json tests = json::array();
      for (const LabStore::KnownTest& k : *known) {
        names[k.code] = k.name;
        tests.push_back({{"code", k.code}, {"name", k.name}, {"results", k.results}});
      }
      for (json& r : table["rules"]) {
        auto n = names.find(r.value("code", ""));
        if (n != names.end()) r["name"] = n->second;
      }
      table["tests"] = std::move(tests);
      return Response::json(200, json_text(table));
    };
  };
  using Done = Result<std::string>;  // the entry changed, for the audit; "" for a read
  // An edit dropped: the file's entry (if any) in force again; 404 when there was none.
  auto restored = [](Result<bool> dropped, std::string key) -> Done {
    if (!dropped.ok()) return dropped.error();
    if (!*dropped) return make_error(Errc::not_found, "no edit of " + key + " to restore");
    return key;
  };

  router.add("GET", "/api/admin/lab/recognition",
             admin("lab.recognition.read",
                   [](const json&, const Principal&) -> Done { return std::string(); }));

  // A rule set (the whole rule) or taken out (its key only).
  auto rule_edit = [&store, &auth](bool removed) {
    return [&store, &auth, removed](const json& body, const Principal& p) -> Done {
      auto rule = removed ? rule_of(body) : full_rule_of(body);
      if (!rule.ok()) return rule.error();
      if (Status s = store.put_rule_edit({*rule, removed, p.username, auth.now()}); !s) {
        return s.error();
      }
      return rule_key(*rule);
    };
  };
  router.add("PUT", "/api/admin/lab/recognition/rules",
             admin("lab.recognition.rule.put", rule_edit(false)));
  router.add("POST", "/api/admin/lab/recognition/rules/remove",
             admin("lab.recognition.rule.remove", rule_edit(true)));
  router.add("POST", "/api/admin/lab/recognition/rules/restore",
             admin("lab.recognition.rule.restore",
                   [&store, restored](const json& body, const Principal&) -> Done {
                     auto rule = rule_of(body);
                     if (!rule.ok()) return rule.error();
                     return restored(store.drop_rule_edit(rule_key(*rule)), rule_key(*rule));
                   }));

  // A qualification set or taken out.
  auto qualification_edit = [&store, &auth](bool removed) {
    return [&store, &auth, removed](const json& body, const Principal& p) -> Done {
      auto holder = holder_of(body);
      if (!holder.ok()) return holder.error();
      const std::string q = removed ? "" : http::json_string(body, "qualification");
      if (!removed && !is_qualification(q)) {
        return make_error(Errc::invalid_argument,
                          "qualification is lower-case letters, digits and _ (e.g. iso15189)");
      }
      if (Status s = store.put_qualification_edit({*holder, q, removed, p.username, auth.now()});
          !s) {
        return s.error();
      }
      return *holder;
    };
  };
  router.add("PUT", "/api/admin/lab/qualifications",
             admin("lab.qualification.put", qualification_edit(false)));
  router.add("POST", "/api/admin/lab/qualifications/remove",
             admin("lab.qualification.remove", qualification_edit(true)));
  router.add("POST", "/api/admin/lab/qualifications/restore",
             admin("lab.qualification.restore",
                   [&store, restored](const json& body, const Principal&) -> Done {
                     auto holder = holder_of(body);
                     if (!holder.ok()) return holder.error();
                     return restored(store.drop_qualification_edit(*holder), *holder);
                   }));
}

}  // namespace yilian::lab
