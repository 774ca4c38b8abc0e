#include "yilian/lab/fhir.h"

#include <cctype>

#include "yilian/common/text.h"
#include "yilian/net/json_body.h"

namespace yilian::lab {
namespace {

using http::json_string;  // a string member, "" when absent or not a string
using nlohmann::json;

FhirIssue issue(std::string code, std::string expression, std::string text, int status = 400) {
  return FhirIssue{status, std::move(code), std::move(expression), std::move(text)};
}

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

const json* first(const json& j, const char* key) {
  const json* a = member(j, key);
  return a && a->is_array() && !a->empty() ? &(*a)[0] : nullptr;
}

std::string identifier(const json& resource) {
  const json* id = member(resource, "identifier");
  if (id && id->is_array()) id = id->empty() ? nullptr : &(*id)[0];
  if (!id || !id->is_object()) return {};
  const std::string value = json_string(*id, "value");
  if (value.empty()) return {};
  const std::string system = json_string(*id, "system");
  return system.empty() ? value : system + "|" + value;
}

// The patient a resource is about: subject.identifier.value, else the id of a
// "Patient/<id>" reference.
std::string subject(const json& resource) {
  const json* s = member(resource, "subject");
  if (!s || !s->is_object()) return {};
  if (const json* id = member(*s, "identifier")) {
    if (std::string v = json_string(*id, "value"); !v.empty()) return v;
  }
  const std::string ref = json_string(*s, "reference");
  if (ref.rfind("Patient/", 0) == 0) return ref.substr(8);
  return {};
}

bool plain_text(const std::string& s, std::size_t max) {
  if (s.size() > max || !is_valid_utf8(s)) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20) return false;
  }
  return true;
}

// Observation -> one result; `at` is its FHIRPath prefix.
std::variant<Observation, FhirIssue> observation(const json& o, const std::string& at,
                                                 std::string_view sender, int offset) {
  Observation r;
  const std::string status = json_string(o, "status");
  if (status == "final")
    r.status = "F";
  else if (status == "amended" || status == "corrected")
    r.status = "C";
  else if (status == "preliminary")
    r.status = "P";
  else {
    return issue("value", at + ".status",
                 "status must be final, amended, corrected or preliminary, not '" +
                     clip_utf8(status, 24) + "'",
                 422);
  }
  const json* code = member(o, "code");
  const json* codings = code ? member(*code, "coding") : nullptr;
  if (codings && codings->is_array()) {
    for (const json& c : *codings) {
      const std::string system = json_string(c, "system"), value = json_string(c, "code");
      if (value.empty()) continue;
      if (system == "http://loinc.org" && r.code_system != "LN") {
        if (!r.code.empty()) {
          r.alt_code = r.code;
          r.alt_system = r.code_system;
        }
        r.code = value;
        r.code_system = "LN";
        if (r.code_name.empty()) r.code_name = json_string(c, "display");
      } else if (r.code.empty()) {
        r.code = value;
        r.code_system = system.empty() ? "L" : system;
        r.code_name = json_string(c, "display");
      } else if (r.alt_code.empty()) {
        r.alt_code = value;
        r.alt_system = system.empty() ? "L" : system;
      }
    }
  }
  if (r.code.empty()) return issue("required", at + ".code.coding", "the test's code is required");
  if (code) {
    if (std::string text = json_string(*code, "text"); !text.empty()) r.code_name = text;
  }
  if (!plain_text(r.code, 64) || !plain_text(r.code_name, 256) || !plain_text(r.alt_code, 64) ||
      r.code_system.size() > 256)
    return issue("value", at + ".code", "the test's code is not plain text");

  if (const json* q = member(o, "valueQuantity")) {
    const json* v = member(*q, "value");
    if (!v || !v->is_number()) {
      return issue("value", at + ".valueQuantity.value", "a quantity's value is a number");
    }
    r.value_type = "NM";
    r.numeric = v->get<double>();
    r.value = v->dump();
    r.units = json_string(*q, "unit");
    if (r.units.empty()) r.units = json_string(*q, "code");
  } else if (const json* v = member(o, "valueString")) {
    if (!v->is_string()) return issue("value", at + ".valueString", "valueString is a string");
    r.value_type = "ST";
    r.value = v->get<std::string>();
  } else if (const json* cc = member(o, "valueCodeableConcept")) {
    r.value_type = "CWE";
    r.value = json_string(*cc, "text");
    if (const json* c = first(*cc, "coding"); c && r.value.empty()) {
      r.value = json_string(*c, "display");
      if (r.value.empty()) r.value = json_string(*c, "code");
    }
  } else {
    return issue("required", at + ".value[x]",
                 "a value is required (valueQuantity, valueString or valueCodeableConcept)");
  }
  if (r.value.empty() || r.value.size() > 4096 || !is_valid_utf8(r.value)) {
    return issue("value", at + ".value[x]", "the value is empty, too long or not UTF-8");
  }
  if (const json* range = first(o, "referenceRange")) {
    r.reference_range = json_string(*range, "text");
    if (r.reference_range.empty()) {
      auto bound = [&](const char* key) {
        const json* b = member(*range, key);
        const json* v = b ? member(*b, "value") : nullptr;
        return v && v->is_number() ? v->dump() : std::string();
      };
      const std::string lo = bound("low"), hi = bound("high");
      if (!lo.empty() || !hi.empty()) r.reference_range = lo + "-" + hi;
    }
  }
  if (const json* interp = member(o, "interpretation"); interp && interp->is_array()) {
    for (const json& i : *interp) {
      if (const json* c = first(i, "coding")) {
        const std::string flag = json_string(*c, "code");
        if (flag.empty()) continue;
        if (!r.flags.empty()) r.flags += ",";
        r.flags += clip_utf8(flag, 8);
      }
    }
  }
  const std::string effective = json_string(o, "effectiveDateTime");
  if (effective.empty()) {
    return issue("required", at + ".effectiveDateTime",
                 "effectiveDateTime (when the specimen was taken) is required");
  }
  auto when = fhir_time(effective, offset);
  if (!when) return issue("value", at + ".effectiveDateTime", "not a FHIR dateTime");
  r.specimen_time = *when;
  if (std::string issued = json_string(o, "issued"); !issued.empty()) {
    auto t = fhir_time(issued, offset);
    if (!t) return issue("value", at + ".issued", "not a FHIR instant");
    r.observed_time = *t;
  }
  if (const json* performers = member(o, "performer"); performers && performers->is_array()) {
    for (const json& p : *performers) {
      if (std::string d = json_string(p, "display"); !d.empty()) {
        r.performing_lab = clip_utf8(d, 128);
        break;
      }
    }
  }
  if (r.performing_lab.empty()) r.performing_lab = std::string(sender);
  for (const std::string* s : {&r.units, &r.reference_range}) {
    if (!plain_text(*s, 256)) return issue("value", at, "units and ranges are short plain text");
  }
  return r;
}

}  // namespace

std::optional<std::string> fhir_time(std::string_view t, int utc_offset_minutes) {
  // YYYY[-MM[-DD[Thh:mm:ss[.f+][Z|(+|-)hh:mm]]]] -> the HL7 form, which hl7_time reads.
  std::string digits;
  std::size_t i = 0;
  auto take = [&](std::size_t n) {
    for (std::size_t k = 0; k < n; ++k, ++i) {
      if (i >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i]))) return false;
      digits += t[i];
    }
    return true;
  };
  if (!take(4)) return std::nullopt;
  if (i == t.size()) return hl7_time(digits + "0101", utc_offset_minutes);
  if (t[i++] != '-' || !take(2)) return std::nullopt;
  if (i == t.size()) return hl7_time(digits + "01", utc_offset_minutes);
  if (t[i++] != '-' || !take(2)) return std::nullopt;
  if (i == t.size()) return hl7_time(digits, utc_offset_minutes);
  if (t[i++] != 'T' || !take(2) || i >= t.size() || t[i++] != ':' || !take(2) || i >= t.size() ||
      t[i++] != ':' || !take(2))
    return std::nullopt;
  if (i < t.size() && t[i] == '.') {
    std::size_t start = i++;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    std::string frac(t.substr(start, i - start));
    if (frac.size() < 2) return std::nullopt;
    digits += frac.substr(0, 5);
  }
  if (i >= t.size()) return std::nullopt;  // a time needs its zone in FHIR
  if (t[i] == 'Z' && i + 1 == t.size()) return hl7_time(digits + "+0000", utc_offset_minutes);
  if ((t[i] != '+' && t[i] != '-') || t.size() - i != 6 || t[i + 3] != ':') return std::nullopt;
  std::string zone{t[i]};
  zone += t.substr(i + 1, 2);
  zone += t.substr(i + 4, 2);
  return hl7_time(digits + zone, utc_offset_minutes);
}

std::variant<OruReport, FhirIssue> read_fhir(const nlohmann::json& resource,
                                             std::string_view sender_code, int utc_offset_minutes) {
  OruReport out;
  out.sending_facility = std::string(sender_code);
  const std::string type = json_string(resource, "resourceType");
  std::vector<std::pair<const json*, std::string>> observations;
  const json* report = nullptr;
  const json* patient = nullptr;
  if (type == "Observation") {
    observations.push_back({&resource, "Observation"});
    out.control_id = identifier(resource);
  } else if (type == "Bundle") {
    const std::string kind = json_string(resource, "type");
    if (kind != "transaction" && kind != "batch" && kind != "collection") {
      return issue("not-supported", "Bundle.type",
                   "a Bundle of type transaction, batch or collection is accepted");
    }
    const json* entries = member(resource, "entry");
    if (!entries || !entries->is_array() || entries->empty()) {
      return issue("required", "Bundle.entry", "the Bundle has no entries");
    }
    if (entries->size() > 2000) return issue("too-costly", "Bundle.entry", "over 2000 entries");
    for (std::size_t k = 0; k < entries->size(); ++k) {
      const json* r = member((*entries)[k], "resource");
      const std::string at = "Bundle.entry[" + std::to_string(k) + "].resource";
      if (!r || !r->is_object()) return issue("structure", at, "an entry without a resource");
      const std::string rt = json_string(*r, "resourceType");
      if (rt == "Observation")
        observations.push_back({r, at});
      else if (rt == "DiagnosticReport" && !report)
        report = r;
      else if (rt == "Patient" && !patient)
        patient = r;
      else if (rt != "DiagnosticReport" && rt != "Patient" && rt != "Specimen") {
        return issue("not-supported", at + ".resourceType",
                     "a Bundle of laboratory results holds Observation, DiagnosticReport, "
                     "Patient and Specimen resources, not " +
                         clip_utf8(rt, 40));
      }
    }
    out.control_id = identifier(resource);
    if (out.control_id.empty() && report) out.control_id = identifier(*report);
  } else {
    return issue("not-supported", "resourceType",
                 "laboratory results are posted as an Observation or a Bundle");
  }
  if (observations.empty()) return issue("required", "Bundle.entry", "no Observation to store");
  if (out.control_id.empty()) {
    return issue("required", type == "Bundle" ? "Bundle.identifier" : "Observation.identifier",
                 "an identifier is required, so that a resend is not stored twice");
  }
  if (!plain_text(out.control_id, 199)) {
    return issue("value", "identifier", "the identifier is not short plain text");
  }
  // The patient: the report's subject, else the first observation's; every observation's the
  // same one.
  out.patient_id = report ? subject(*report) : std::string();
  std::string order_code, order_name;
  if (report) {
    if (const json* code = member(*report, "code")) {
      if (const json* c = first(*code, "coding")) {
        order_code = json_string(*c, "code");
        order_name = json_string(*c, "display");
      }
      if (std::string text = json_string(*code, "text"); !text.empty()) order_name = text;
    }
  }
  for (const auto& [o, at] : observations) {
    const std::string who = subject(*o);
    if (out.patient_id.empty()) out.patient_id = who;
    if (!who.empty() && who != out.patient_id) {
      return issue("business-rule", at + ".subject", "every result must be of the same patient",
                   422);
    }
    auto r = observation(*o, at, sender_code, utc_offset_minutes);
    if (auto* e = std::get_if<FhirIssue>(&r)) return *e;
    Observation ob = std::get<Observation>(r);
    ob.order_code = clip_utf8(order_code, 64);
    ob.order_name = clip_utf8(order_name, 256);
    out.observations.push_back(std::move(ob));
  }
  if (out.patient_id.empty()) {
    return issue("required", "Observation.subject",
                 "the patient is required: subject.identifier.value or a Patient/<id> reference");
  }
  if (!plain_text(out.patient_id, 64) ||
      out.patient_id.find_first_of("*?\\") != std::string::npos) {
    return issue("value", "Observation.subject", "the patient identifier is not plain");
  }
  if (patient) {
    if (const json* n = first(*patient, "name")) {
      std::string family = json_string(*n, "family"), given;
      if (const json* g = first(*n, "given"); g && g->is_string()) given = g->get<std::string>();
      std::string name = given.empty() ? family : family + "^" + given;
      if (plain_text(name, 128)) out.patient_name = name;
    }
  }
  return out;
}

nlohmann::json operation_outcome(std::string_view severity, std::string_view code,
                                 std::string_view text, std::string_view expression) {
  json issue = {{"severity", severity}, {"code", code}, {"diagnostics", text}};
  if (!expression.empty()) issue["expression"] = json::array({expression});
  return {{"resourceType", "OperationOutcome"}, {"issue", json::array({issue})}};
}

}  // namespace yilian::lab
