#include "yilian/lab/results.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "yilian/identity/accounts.h"
#include "yilian/lab/hl7.h"
#include "yilian/pacs/charset.h"
#include "yilian/storage/sql.h"

namespace yilian::lab {

namespace sql = storage::sql;

namespace {

Recognition refused(std::string why, std::string code) {
  Recognition out;
  out.why = std::move(why);
  out.why_code = std::move(code);
  return out;
}

// The rule's judgement of a result or report whose source holds `qualification` ("" when not
// known), counted from `since` (ISO 8601). `whose`: "laboratory's" or "reading institution's".
Recognition judge(const RecognitionRule* rule, const std::string& qualification,
                  const std::string& since, std::string_view whose, std::string_view what,
                  storage::TimePoint now) {
  if (!rule) return refused("no recognition rule for this " + std::string(what), "no_rule");
  if (qualification.empty()) {
    return refused("the " + std::string(whose) + " qualification is not known",
                   "qualification_unknown");
  }
  if (std::find(rule->qualifications.begin(), rule->qualifications.end(), qualification) ==
      rule->qualifications.end()) {
    return refused("the " + std::string(whose) + " qualification (" + qualification +
                       ") is not one this " + std::string(what) + " is recognised from",
                   "not_qualified");
  }
  auto from = storage::parse_iso8601(since);
  if (!from) return refused("no specimen or report time", "no_specimen_time");
  const auto until = *from + std::chrono::hours(24) * rule->valid_days;
  Recognition out;
  out.until = storage::to_iso8601(until);
  if (now > until) {
    out.why = "older than the " + std::to_string(rule->valid_days) + " days it is recognised for";
    out.why_code = "expired";
    return out;
  }
  out.recognised = true;
  return out;
}

}  // namespace

Recognition recognise(const LabResult& r, const std::vector<RecognitionRule>& rules,
                      storage::TimePoint now) {
  if (r.status != "F" && r.status != "C") return refused("a preliminary result", "preliminary");
  const RecognitionRule* rule = nullptr;
  for (const RecognitionRule& x : rules) {
    if (!x.code.empty() && x.code == r.code && r.code_system == "LN") rule = &x;
  }
  return judge(rule, r.qualification, r.specimen_at, "laboratory's", "test", now);
}

std::string laboratory_qualification(std::string_view performing_lab, std::string_view sender,
                                     const std::map<std::string, std::string>& qualifications) {
  if (auto q = qualifications.find(std::string(performing_lab)); q != qualifications.end()) {
    return q->second;
  }
  if (performing_lab == sender) {
    if (auto q = qualifications.find(std::string(sender)); q != qualifications.end()) {
      return q->second;
    }
  }
  return {};
}

void fill_qualification(LabResult& r, const std::map<std::string, std::string>& qualifications) {
  if (r.qualification.empty()) {
    r.qualification =
        laboratory_qualification(r.performing_lab, r.institution_code, qualifications);
  }
}

Recognition recognise_report(const ImagingReport& r, const std::vector<RecognitionRule>& rules,
                             const std::map<std::string, std::string>& qualifications,
                             storage::TimePoint now) {
  const RecognitionRule* rule = nullptr;
  for (const RecognitionRule& x : rules) {
    if (x.code.empty() && !x.modality.empty() && x.modality == r.modality) rule = &x;
  }
  auto q = qualifications.find(r.read_by);
  return judge(rule, q == qualifications.end() ? std::string() : q->second, r.final_at,
               "reading institution's", "examination", now);
}

std::string rule_key(const RecognitionRule& r) {
  return r.code.empty() ? "modality:" + r.modality : "code:" + r.code;
}

RecognitionTable recognition_table(const LabOptions& file, const std::vector<RuleEdit>& rules,
                                   const std::vector<QualificationEdit>& qualifications) {
  RecognitionTable out;
  std::map<std::string, const RuleEdit*> edits;
  for (const RuleEdit& e : rules) edits[rule_key(e.rule)] = &e;
  for (const RecognitionRule& r : file.recognition) {
    auto e = edits.find(rule_key(r));
    if (e == edits.end()) {
      out.rules.push_back(r);
      continue;
    }
    if (!e->second->removed) out.rules.push_back(e->second->rule);
    edits.erase(e);
  }
  for (const RuleEdit& e : rules) {
    if (!e.removed && edits.count(rule_key(e.rule))) out.rules.push_back(e.rule);
  }
  out.qualifications = file.qualifications;
  for (const QualificationEdit& e : qualifications) {
    if (e.removed) {
      out.qualifications.erase(e.holder);
    } else {
      out.qualifications[e.holder] = e.qualification;
    }
  }
  return out;
}

// ---- store ----------------------------------------------------------------------------------

LabStore::LabStore(storage::Database& db) : db_(db) {}

Result<bool> LabStore::patient_known(std::int64_t institution_id, std::string_view patient_id) {
  bool known = false;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            return sql::query(
                c, "SELECT 1 FROM patients WHERE institution_id = ?1 AND patient_id = ?2 LIMIT 1",
                [&](sql::Stmt& st) {
                  st.bind(1, institution_id);
                  st.bind(2, patient_id);
                },
                [&](sql::Stmt&) { known = true; });
          });
      !s)
    return s.error();
  return known;
}

Result<std::optional<std::int64_t>> LabStore::stored_message(std::int64_t institution_id,
                                                             std::string_view control_id) {
  std::optional<std::int64_t> out;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            return sql::query(
                c, "SELECT results FROM lab_messages WHERE institution_id = ?1 AND control_id = ?2",
                [&](sql::Stmt& st) {
                  st.bind(1, institution_id);
                  st.bind(2, control_id);
                },
                [&](sql::Stmt& st) { out = st.int64(0); });
          });
      !s)
    return s.error();
  return out;
}

Result<std::int64_t> LabStore::store(std::int64_t institution_id, std::string_view control_id,
                                     std::string_view protocol, std::string_view received_at,
                                     const std::vector<LabResult>& results, bool& duplicate) {
  duplicate = false;
  return storage::write(db_, [&](sql::Db& c) -> Result<std::int64_t> {
    std::optional<std::int64_t> message;
    if (Status s = sql::query(
            c,
            "INSERT INTO lab_messages(institution_id, control_id, protocol, received_at, results) "
            "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(institution_id, control_id) DO NOTHING "
            "RETURNING id",
            [&](sql::Stmt& st) {
              st.bind(1, institution_id);
              st.bind(2, control_id);
              st.bind(3, protocol);
              st.bind(4, received_at);
              st.bind(5, static_cast<std::int64_t>(results.size()));
            },
            [&](sql::Stmt& st) { message = st.int64(0); });
        !s)
      return s.error();
    if (!message) {
      duplicate = true;
      return std::int64_t{0};
    }
    for (const LabResult& r : results) {
      if (Status s = sql::run(
              c,
              "INSERT INTO lab_results(message_id, institution_id, patient_id, patient_name, "
              "order_code, order_name, code, code_system, local_code, name, value_type, value, "
              "units, reference_range, flags, status, specimen_at, observed_at, performing_lab, "
              "qualification, received_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
              "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
              [&](sql::Stmt& st) {
                st.bind(1, *message);
                st.bind(2, institution_id);
                st.bind(3, r.patient_id);
                st.bind(4, r.patient_name);
                st.bind(5, r.order_code);
                st.bind(6, r.order_name);
                st.bind(7, r.code);
                st.bind(8, r.code_system);
                st.bind(9, r.local_code);
                st.bind(10, r.name);
                st.bind(11, r.value_type);
                st.bind(12, r.value);
                st.bind(13, r.units);
                st.bind(14, r.reference_range);
                st.bind(15, r.flags);
                st.bind(16, r.status);
                st.bind(17, r.specimen_at);
                st.bind(18, r.observed_at);
                st.bind(19, r.performing_lab);
                st.bind(20, r.qualification);
                st.bind(21, received_at);
              });
          !s)
        return s.error();
    }
    return static_cast<std::int64_t>(results.size());
  });
}

namespace {

constexpr const char* kResultColumns =
    "r.id, r.institution_id, i.code, r.patient_id, r.patient_name, r.order_code, r.order_name, "
    "r.code, r.code_system, r.local_code, r.name, r.value_type, r.value, r.units, "
    "r.reference_range, r.flags, r.status, r.specimen_at, r.observed_at, r.performing_lab, "
    "r.qualification, r.received_at FROM lab_results r JOIN institutions i ON "
    "i.id = r.institution_id";

LabResult result_row(sql::Stmt& st) {
  LabResult r;
  r.id = st.int64(0);
  r.institution_id = st.int64(1);
  r.institution_code = st.text(2);
  r.patient_id = st.text(3);
  r.patient_name = st.text(4);
  r.order_code = st.text(5);
  r.order_name = st.text(6);
  r.code = st.text(7);
  r.code_system = st.text(8);
  r.local_code = st.text(9);
  r.name = st.text(10);
  r.value_type = st.text(11);
  r.value = st.text(12);
  r.units = st.text(13);
  r.reference_range = st.text(14);
  r.flags = st.text(15);
  r.status = st.text(16);
  r.specimen_at = st.text(17);
  r.observed_at = st.text(18);
  r.performing_lab = st.text(19);
  r.qualification = st.text(20);
  r.received_at = st.text(21);
  return r;
}

}  // namespace

Result<std::vector<LabResult>> LabStore::results(std::string_view patient_id,
                                                 const std::vector<std::int64_t>& institutions) {
  std::vector<LabResult> out;
  const std::string q =
      std::string("SELECT ") + kResultColumns +
      " WHERE r.patient_id = ?1 AND r.institution_id IN (" + sql::id_list(institutions) +
      ") ORDER BY r.specimen_at DESC, r.id DESC LIMIT " + std::to_string(kMostResults);
  if (Status s = storage::read(db_,
                               [&](sql::Db& c) {
                                 return sql::query(
                                     c, q, [&](sql::Stmt& st) { st.bind(1, patient_id); },
                                     [&](sql::Stmt& st) { out.push_back(result_row(st)); });
                               });
      !s)
    return s.error();
  return out;
}

Result<std::optional<LabResult>> LabStore::result(std::int64_t id) {
  std::optional<LabResult> out;
  if (Status s = storage::read(db_,
                               [&](sql::Db& c) {
                                 return sql::query(
                                     c,
                                     std::string("SELECT ") + kResultColumns + " WHERE r.id = ?1",
                                     [&](sql::Stmt& st) { st.bind(1, id); },
                                     [&](sql::Stmt& st) { out = result_row(st); });
                               });
      !s)
    return s.error();
  return out;
}

Result<bool> LabStore::record_recognition(std::int64_t result_id, std::int64_t institution_id,
                                          std::string_view user, std::string_view at) {
  int changed = 0;
  if (Status s = storage::write(
          db_,
          [&](sql::Db& c) {
            return sql::run(
                c,
                "INSERT INTO lab_recognitions(result_id, institution_id, recognised_by, at) "
                "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(result_id, institution_id) DO NOTHING",
                [&](sql::Stmt& st) {
                  st.bind(1, result_id);
                  st.bind(2, institution_id);
                  st.bind(3, user);
                  st.bind(4, at);
                },
                &changed);
          });
      !s)
    return s.error();
  return changed > 0;
}

namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

Result<std::vector<RuleEdit>> LabStore::rule_edits() {
  std::vector<RuleEdit> out;
  if (Status s = storage::read(db_,
                               [&](sql::Db& c) {
                                 return sql::query(
                                     c,
                                     "SELECT code, modality, qualifications, valid_days, removed, "
                                     "edited_by, edited_at FROM lab_rule_edits ORDER BY edited_at, "
                                     "rule_key",
                                     [](sql::Stmt&) {},
                                     [&](sql::Stmt& st) {
                                       RuleEdit e;
                                       e.rule.code = st.text(0);
                                       e.rule.modality = st.text(1);
                                       e.rule.qualifications = split(st.text(2));
                                       e.rule.valid_days = static_cast<int>(st.int64(3));
                                       e.removed = st.int64(4) != 0;
                                       e.by = st.text(5);
                                       e.at = st.text(6);
                                       out.push_back(std::move(e));
                                     });
                               });
      !s)
    return s.error();
  return out;
}

Result<std::vector<QualificationEdit>> LabStore::qualification_edits() {
  std::vector<QualificationEdit> out;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            return sql::query(
                c,
                "SELECT holder, qualification, removed, edited_by, edited_at "
                "FROM lab_qualification_edits ORDER BY holder",
                [](sql::Stmt&) {},
                [&](sql::Stmt& st) {
                  out.push_back({st.text(0), st.text(1), st.int64(2) != 0, st.text(3), st.text(4)});
                });
          });
      !s)
    return s.error();
  return out;
}

Status LabStore::put_rule_edit(const RuleEdit& e) {
  return storage::write(db_, [&](sql::Db& c) {
    return sql::run(
        c,
        "INSERT INTO lab_rule_edits(rule_key, code, modality, qualifications, valid_days, "
        "removed, edited_by, edited_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
        "ON CONFLICT(rule_key) DO UPDATE SET qualifications = excluded.qualifications, "
        "valid_days = excluded.valid_days, removed = excluded.removed, "
        "edited_by = excluded.edited_by, edited_at = excluded.edited_at",
        [&](sql::Stmt& st) {
          st.bind(1, rule_key(e.rule));
          st.bind(2, e.rule.code);
          st.bind(3, e.rule.modality);
          st.bind(4, e.removed ? std::string() : joined(e.rule.qualifications));
          st.bind(5, static_cast<std::int64_t>(e.removed ? 0 : e.rule.valid_days));
          st.bind(6, static_cast<std::int64_t>(e.removed));
          st.bind(7, e.by);
          st.bind(8, e.at);
        });
  });
}

Status LabStore::put_qualification_edit(const QualificationEdit& e) {
  return storage::write(db_, [&](sql::Db& c) {
    return sql::run(
        c,
        "INSERT INTO lab_qualification_edits(holder, qualification, removed, edited_by, "
        "edited_at) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(holder) DO UPDATE SET "
        "qualification = excluded.qualification, removed = excluded.removed, "
        "edited_by = excluded.edited_by, edited_at = excluded.edited_at",
        [&](sql::Stmt& st) {
          st.bind(1, e.holder);
          st.bind(2, e.removed ? std::string() : e.qualification);
          st.bind(3, static_cast<std::int64_t>(e.removed));
          st.bind(4, e.by);
          st.bind(5, e.at);
        });
  });
}

namespace {

Result<bool> drop(storage::Database& db, const char* statement, std::string_view key) {
  int changed = 0;
  if (Status s = storage::write(db,
                                [&](sql::Db& c) {
                                  return sql::run(
                                      c, statement, [&](sql::Stmt& st) { st.bind(1, key); },
                                      &changed);
                                });
      !s)
    return s.error();
  return changed > 0;
}

}  // namespace

Result<bool> LabStore::drop_rule_edit(std::string_view key) {
  return drop(db_, "DELETE FROM lab_rule_edits WHERE rule_key = ?1", key);
}

Result<bool> LabStore::drop_qualification_edit(std::string_view holder) {
  return drop(db_, "DELETE FROM lab_qualification_edits WHERE holder = ?1", holder);
}

Result<std::vector<LabStore::UnqualifiedLab>> LabStore::unqualified_labs() {
  std::vector<UnqualifiedLab> out;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            return sql::query(
                c,
                "SELECT r.performing_lab, i.code, count(*) AS n, max(r.received_at) FROM "
                "lab_results r JOIN institutions i ON i.id = r.institution_id WHERE "
                "r.qualification = '' GROUP BY r.performing_lab, i.code ORDER BY n DESC, "
                "r.performing_lab LIMIT 50",
                [](sql::Stmt&) {},
                [&](sql::Stmt& st) {
                  out.push_back({st.text(0), st.text(1), st.int64(2), st.text(3)});
                });
          });
      !s)
    return s.error();
  return out;
}

Result<std::vector<LabStore::KnownTest>> LabStore::known_tests() {
  std::vector<KnownTest> out;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            // Each code's names, the commonest first: the first row of a code gives its name.
            return sql::query(
                c,
                "SELECT code, name, count(*) AS n FROM lab_results WHERE code_system = 'LN' "
                "GROUP BY code, name ORDER BY code, n DESC, name",
                [](sql::Stmt&) {},
                [&](sql::Stmt& st) {
                  std::string code = st.text(0);
                  if (!out.empty() && out.back().code == code) {
                    out.back().results += st.int64(2);
                  } else if (out.size() < 2000) {
                    out.push_back({std::move(code), st.text(1), st.int64(2)});
                  }
                });
          });
      !s)
    return s.error();
  return out;
}

Result<RecognitionTable> LabStore::recognition_table(const LabOptions& file) {
  auto rules = rule_edits();
  if (!rules.ok()) return rules.error();
  auto qualifications = qualification_edits();
  if (!qualifications.ok()) return qualifications.error();
  return lab::recognition_table(file, *rules, *qualifications);
}

Result<std::map<std::string, std::int64_t>> LabStore::avoided_repeats(
    const std::vector<std::int64_t>& institutions, std::string_view from, std::string_view to) {
  std::map<std::string, std::int64_t> out;
  if (Status s = storage::read(
          db_,
          [&](sql::Db& c) {
            return sql::query(
                c,
                "SELECT i.code, count(*) FROM lab_recognitions g JOIN institutions i ON "
                "i.id = g.institution_id WHERE g.institution_id IN (" +
                    sql::id_list(institutions) +
                    ") AND (?1 = '' OR g.at >= ?1) AND (?2 = '' OR g.at < ?2) "
                    "GROUP BY i.code ORDER BY i.code",
                [&](sql::Stmt& st) {
                  st.bind(1, from);
                  st.bind(2, to);
                },
                [&](sql::Stmt& st) { out[st.text(0)] = st.int64(1); });
          });
      !s)
    return s.error();
  return out;
}

// ---- HL7 receiver ---------------------------------------------------------------------------

namespace {

// MSH-18's names (HL7 table 0211) as DICOM's Specific Character Set terms, which the DICOM
// side's decoder reads; "" for ASCII and for a name it does not know.
std::string dicom_charset(std::string_view hl7) {
  if (hl7 == "UNICODE UTF-8" || hl7 == "UNICODE" || hl7 == "UTF-8") return "ISO_IR 192";
  if (hl7 == "GB 18030-2000" || hl7 == "GB18030") return "GB18030";
  if (hl7 == "8859/1") return "ISO_IR 100";
  return "";
}

std::string hl7_now(storage::TimePoint t) {
  const std::string iso = storage::to_iso8601(t);  // 2026-12-05T02:00:00.000Z
  std::string out;
  for (char c : iso.substr(0, 19)) {
    if (c >= '0' && c <= '9') out += c;
  }
  return out + "+0000";
}

}  // namespace

Hl7Receiver::Hl7Receiver(LabStore& store, identity::Accounts& accounts, LabOptions options,
                         std::function<storage::TimePoint()> clock)
    : store_(store), accounts_(accounts), options_(std::move(options)), clock_(std::move(clock)) {}

std::string Hl7Receiver::receive(std::string_view bytes) {
  const auto now = clock_();
  const std::string stamp = hl7_now(now);
  const std::string ack_id = "YL" + stamp.substr(0, 14) + "-" + std::to_string(++acks_);
  auto parsed = parse(bytes);
  if (auto* e = std::get_if<Hl7Error>(&parsed)) {
    spdlog::warn("lab: HL7 message refused ({} bytes): {}", bytes.size(), e->text);
    return make_ack(nullptr, e->ack, e, e->text, ack_id, stamp);
  }
  const Message& m = std::get<Message>(parsed);
  auto answer = [&](const Hl7Error& e) {
    spdlog::warn("lab: HL7 message {} from {}: {} {}", m.get("MSH", 10), m.get("MSH", 4), e.ack,
                 e.text);
    return make_ack(&m, e.ack, &e, e.text, ack_id, stamp);
  };
  auto internal = [&](const Error& err) {
    spdlog::error("lab: storing HL7 message {}: {}", m.get("MSH", 10), err.message);
    return answer(Hl7Error{"AE", 207, "", "the hub could not store the results; send again"});
  };
  const std::string facility = m.get("MSH", 4);
  auto inst = accounts_.find_institution(facility);
  if (!inst.ok()) return internal(inst.error());
  if (!inst->has_value() || facility.empty()) {
    return answer(Hl7Error{"AR", 204, "MSH^1^4",
                           "unknown sending facility: MSH-4 must be a member institution's code"});
  }
  const identity::InstitutionInfo& sender = **inst;
  pacs::TextDecoding decoding;
  if (!sender.charset.empty()) decoding.charset = sender.charset;
  auto decode = [&decoding](std::string_view raw,
                            std::string_view declared) -> std::optional<std::string> {
    if (raw.empty()) return std::string();
    return pacs::decode_text(raw, dicom_charset(declared), decoding);
  };
  auto report = read_oru(m, options_.utc_offset_minutes, decode);
  if (auto* e = std::get_if<Hl7Error>(&report)) return answer(*e);
  const OruReport& oru = std::get<OruReport>(report);

  Intake in = intake(store_, options_, sender, oru, "hl7v2", storage::to_iso8601(now));
  if (in.failed) return internal(*in.failed);
  if (in.unknown_patient) {
    return answer(Hl7Error{"AE", 204, "PID^1^3", in.text});
  }
  return make_ack(&m, "AA", nullptr, in.text, ack_id, stamp);
}

Intake intake(LabStore& store, const LabOptions& options, const identity::InstitutionInfo& sender,
              const OruReport& report, std::string_view protocol, std::string_view now) {
  Intake out;
  auto earlier = store.stored_message(sender.id, report.control_id);
  if (!earlier.ok()) {
    out.failed = earlier.error();
    return out;
  }
  if (*earlier) {
    out.duplicate = true;
    out.stored = **earlier;
    out.text = "already stored (" + std::to_string(**earlier) + " results); not stored again";
    return out;
  }
  auto known = store.patient_known(sender.id, report.patient_id);
  if (!known.ok()) {
    out.failed = known.error();
    return out;
  }
  if (!*known) {
    out.unknown_patient = true;
    out.text = "unknown patient " + report.patient_id + " at " + sender.code +
               ": no study of theirs is held; send the results again once it is";
    return out;
  }
  // The qualifications in force now (the file's, with the admins' edits); the rules are not
  // needed here.
  auto edits = store.qualification_edits();
  if (!edits.ok()) {
    out.failed = edits.error();
    return out;
  }
  const std::map<std::string, std::string> qualifications =
      recognition_table(options, {}, *edits).qualifications;
  std::vector<LabResult> rows;
  for (const Observation& o : report.observations) {
    LabResult r;
    r.institution_id = sender.id;
    r.patient_id = report.patient_id;
    r.patient_name = report.patient_name;
    r.order_code = o.order_code;
    r.order_name = o.order_name;
    if (o.code_system == "LN") {
      r.code = o.code;
      r.code_system = "LN";
      if (o.alt_code != o.code) r.local_code = o.alt_code;
    } else if (o.alt_system == "LN" && !o.alt_code.empty()) {
      r.code = o.alt_code;
      r.code_system = "LN";
      r.local_code = o.code;
    } else if (auto it = options.local_codes.find(sender.code + ":" + o.code);
               it != options.local_codes.end()) {
      r.code = it->second;
      r.code_system = "LN";
      r.local_code = o.code;
    } else {
      r.code = o.code;
      r.code_system = o.code_system.empty() ? "L" : o.code_system;
    }
    r.name = o.code_name;
    r.value_type = o.value_type;
    r.value = o.value;
    r.units = o.units;
    r.reference_range = o.reference_range;
    r.flags = o.flags;
    r.status = o.status;
    r.specimen_at = o.specimen_time;
    r.observed_at = o.observed_time;
    r.performing_lab = o.performing_lab;
    r.qualification = laboratory_qualification(o.performing_lab, sender.code, qualifications);
    rows.push_back(std::move(r));
  }
  bool duplicate = false;
  auto stored = store.store(sender.id, report.control_id, protocol, now, rows, duplicate);
  if (!stored.ok()) {
    out.failed = stored.error();
    return out;
  }
  if (duplicate) {
    out.duplicate = true;
    out.text = "already stored; not stored again";
    return out;
  }
  out.stored = *stored;
  out.text = std::to_string(*stored) + " results stored";
  spdlog::info("lab: {} results of patient {} from {} ({} {})", *stored, report.patient_id,
               sender.code, protocol, report.control_id);
  return out;
}

}  // namespace yilian::lab
