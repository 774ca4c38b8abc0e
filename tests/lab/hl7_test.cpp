// The HL7 v2 parser, the ORU^R01 reader, the acknowledgement, MLLP framing and the recognition
// rules: pure, no server.
#include "yilian/lab/hl7.h"

#include <gtest/gtest.h>

#include "yilian/lab/fhir.h"
#include "yilian/lab/mllp.h"
#include "yilian/lab/results.h"

namespace yilian::lab {
namespace {

const std::string kOru =
    "MSH|^~\\&|LIS|ta|YILIAN|HUB|20261205100000||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||TA-7^^^ta^MR||Li^Na||19800101|F\r"
    "OBR|1|O1|F1|CBC^Blood count^L|||202612050830+0800\r"
    "OBX|1|NM|718-7^Hemoglobin^LN^HGB^Hb^L||96|g/L|115-150|L~A|||F|||20261205091500\r"
    "OBX|2|SN|2345-7^Glucose^LN||>^20|mmol/L||H|||C||||||||||||County Lab\r"
    "OBX|3|ST|8251-1^Comment^LN||fasting \\T\\ rested\\.br\\line two||||||P\r";

Message parsed(std::string_view text) {
  auto m = parse(text);
  EXPECT_TRUE(std::holds_alternative<Message>(m)) << std::get<Hl7Error>(m).text;
  return std::get<Message>(m);
}

TEST(Hl7, an_oru_is_read_with_its_codes_values_times_and_escapes) {
  Message m = parsed(kOru);
  EXPECT_EQ(m.get("MSH", 9, 2), "R01");
  EXPECT_EQ(m.get("MSH", 2), "^~\\&");
  auto r = read_oru(m);
  ASSERT_TRUE(std::holds_alternative<OruReport>(r)) << std::get<Hl7Error>(r).text;
  const OruReport& oru = std::get<OruReport>(r);
  EXPECT_EQ(oru.control_id, "C1");
  EXPECT_EQ(oru.sending_facility, "ta");
  EXPECT_EQ(oru.patient_id, "TA-7");
  EXPECT_EQ(oru.patient_name, "Li^Na");
  ASSERT_EQ(oru.observations.size(), 3u);
  const Observation& hb = oru.observations[0];
  EXPECT_EQ(hb.code, "718-7");
  EXPECT_EQ(hb.code_system, "LN");
  EXPECT_EQ(hb.alt_code, "HGB");
  EXPECT_EQ(hb.alt_system, "L");
  EXPECT_EQ(*hb.numeric, 96);
  EXPECT_EQ(hb.flags, "L,A");
  EXPECT_EQ(hb.reference_range, "115-150");
  EXPECT_EQ(hb.specimen_time, "2026-12-05T00:30:00.000Z");  // +0800 as sent
  EXPECT_EQ(hb.observed_time, "2026-12-05T01:15:00.000Z");  // no zone: China Standard Time
  EXPECT_EQ(hb.performing_lab, "ta");                       // none named: the sender
  const Observation& glu = oru.observations[1];
  EXPECT_EQ(glu.value, ">20");
  EXPECT_FALSE(glu.numeric.has_value());  // a bound is not a value to plot
  EXPECT_EQ(glu.status, "C");
  EXPECT_EQ(glu.performing_lab, "County Lab");
  EXPECT_EQ(oru.observations[2].value, "fasting & rested\nline two");
  EXPECT_EQ(oru.observations[2].order_code, "CBC");
}

TEST(Hl7, what_cannot_be_processed_is_rejected_and_bad_content_is_an_error) {
  auto ack_of = [](std::string text) -> Hl7Error {
    auto m = parse(text);
    if (auto* e = std::get_if<Hl7Error>(&m)) return *e;
    auto r = read_oru(std::get<Message>(m));
    if (auto* e = std::get_if<Hl7Error>(&r)) return *e;
    return Hl7Error{"AA", 0, "", ""};
  };
  auto with = [](std::string from, std::string to) {
    std::string s = kOru;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  EXPECT_EQ(ack_of("PID|1||X\r").ack, "AR");
  EXPECT_EQ(ack_of(with("^~\\&", "^~\\")).ack, "AR");   // three encoding characters
  EXPECT_EQ(ack_of(with("^~\\&", "^^\\&")).ack, "AR");  // two the same
  EXPECT_EQ(ack_of(with("PID|1", "pid|1")).ack, "AR");  // not a segment name
  EXPECT_EQ(ack_of(kOru + "MSH|^~\\&|again\r").ack, "AR");
  Hl7Error type = ack_of(with("ORU^R01", "ADT^A01"));
  EXPECT_EQ(type.ack, "AR");
  EXPECT_EQ(type.code, 200);
  EXPECT_EQ(ack_of(with("|P|2.5.1", "|D|2.5.1")).code, 202);
  EXPECT_EQ(ack_of(with("|P|2.5.1", "|P|3.0")).code, 203);
  EXPECT_EQ(ack_of(with("|C1|", "||")).code, 101);
  Hl7Error patient = ack_of(with("TA-7^^^", "^^^"));
  EXPECT_EQ(patient.ack, "AE");
  EXPECT_EQ(patient.location, "PID^1^3");
  EXPECT_EQ(ack_of(with("TA-7^^^", "TA*^^^")).code, 102);  // a wildcard is no identifier
  Hl7Error value = ack_of(with("||96|", "||9x6|"));
  EXPECT_EQ(value.ack, "AE");
  EXPECT_EQ(value.code, 102);
  EXPECT_EQ(value.location, "OBX^1^5");
  EXPECT_EQ(ack_of(with("|||202612050830+0800", "|||")).location, "OBR^1^7");
  EXPECT_EQ(ack_of(with("|||202612050830+0800", "|||20261305")).code, 102);
  EXPECT_EQ(ack_of(with("||||||P\r", "||||||X\r")).code, 103);
  EXPECT_EQ(ack_of(with("OBX|3|ST", "OBX|3|ED")).code, 103);
  // An OBX before any OBR, no OBX at all.
  EXPECT_EQ(
      ack_of("MSH|^~\\&|LIS|ta|Y|H|20261205||ORU^R01|C|P|2.5\rPID|1||P1\rOBX|1|NM|x||1||||||F\r")
          .code,
      100);
  EXPECT_EQ(
      ack_of("MSH|^~\\&|LIS|ta|Y|H|20261205||ORU^R01|C|P|2.5\rPID|1||P1\rOBR|1|||X|||2026\r").code,
      102);
  EXPECT_EQ(ack_of(std::string(kMaxMessageBytes + 1, 'M')).ack, "AR");
  // Text that is not UTF-8, with no decoder: an error naming the character set.
  Hl7Error bytes = ack_of(with("Li^Na", "\xC0\xEE^Na"));
  EXPECT_EQ(bytes.code, 102);
  EXPECT_EQ(bytes.location, "PID^1^5");
}

TEST(Hl7, a_decoder_turns_the_declared_character_set_into_utf8) {
  std::string text = kOru;
  text.replace(text.find("|2.5.1\r"), 7, "|2.5.1||||||GB 18030-2000\r");
  text.replace(text.find("Li^Na"), 5, "\xC0\xEE^\xC4\xC8");  // 李^娜 in GB18030
  std::string seen;
  Decode gb = [&seen](std::string_view raw,
                      std::string_view declared) -> std::optional<std::string> {
    seen = std::string(declared);
    if (raw == "\xC0\xEE") return std::string("李");
    if (raw == "\xC4\xC8") return std::string("娜");
    return std::string(raw);
  };
  auto r = read_oru(parsed(text), 480, gb);
  ASSERT_TRUE(std::holds_alternative<OruReport>(r));
  EXPECT_EQ(std::get<OruReport>(r).patient_name, "李^娜");
  EXPECT_EQ(seen, "GB 18030-2000");
}

TEST(Hl7, times_convert_to_utc_and_bad_ones_are_refused) {
  EXPECT_EQ(hl7_time("20261205", 480), "2026-12-04T16:00:00.000Z");
  EXPECT_EQ(hl7_time("202612050030", 480), "2026-12-04T16:30:00.000Z");
  EXPECT_EQ(hl7_time("20261205003015.25-0500", 480), "2026-12-05T05:30:15.250Z");
  EXPECT_EQ(hl7_time("20240229120000+0000", 0), "2024-02-29T12:00:00.000Z");
  for (const char* bad : {"", "2026", "2026120", "20250229", "20261205250000", "20261205+08",
                          "20261205120000.12345", "2026-12-05", "20261205120000+2400"}) {
    EXPECT_FALSE(hl7_time(bad, 480).has_value()) << bad;
  }
}

TEST(Hl7, the_acknowledgement_echoes_the_message_and_escapes_the_reason) {
  Message m = parsed(kOru);
  Hl7Error e{"AE", 102, "OBX^1^5", "value | not a number"};
  const std::string ack = make_ack(&m, "AE", &e, e.text, "A1", "20261205100001+0000");
  Message a = parsed(ack);
  EXPECT_EQ(a.get("MSH", 5), "LIS");
  EXPECT_EQ(a.get("MSH", 6), "ta");
  EXPECT_EQ(a.get("MSH", 9, 1), "ACK");
  EXPECT_EQ(a.get("MSH", 10), "A1");
  EXPECT_EQ(a.get("MSA", 1), "AE");
  EXPECT_EQ(a.get("MSA", 2), "C1");
  EXPECT_EQ(a.get("MSA", 3), "value | not a number");
  EXPECT_EQ(a.get("ERR", 2, 1), "OBX");
  EXPECT_EQ(a.get("ERR", 3, 1), "102");
  EXPECT_EQ(a.get("ERR", 3, 3), "HL70357");
  // Without a readable message: still an ACK, with no control id to echo.
  const std::string blind = make_ack(nullptr, "AR", &e, "not HL7", "A2", "x");
  EXPECT_EQ(parsed(blind).get("MSA", 1), "AR");
}

TEST(Mllp, frames_are_cut_out_of_any_chunking_and_garbage_fails_the_stream) {
  MllpDecoder d;
  const std::string two = mllp_frame("MSH|one") + "\r\n" + mllp_frame("MSH|two");
  std::vector<std::string> got;
  for (char c : two) {
    for (auto& m : d.feed(std::string_view(&c, 1))) got.push_back(m);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "MSH|one");
  EXPECT_EQ(got[1], "MSH|two");
  EXPECT_FALSE(d.failed());

  MllpDecoder garbage;
  EXPECT_TRUE(garbage.feed("GET / HTTP/1.1\r\n").empty());
  EXPECT_TRUE(garbage.failed());
  MllpDecoder big(16);
  EXPECT_TRUE(big.feed(mllp_frame(std::string(17, 'x'))).empty());
  EXPECT_TRUE(big.failed());
  MllpDecoder unterminated;
  EXPECT_TRUE(unterminated.feed("\x0bMSH|a\x1cX").empty());
  EXPECT_TRUE(unterminated.failed());
}

TEST(Recognition, a_qualified_laboratorys_final_result_is_recognised_within_its_window) {
  std::vector<RecognitionRule> rules = {{"718-7", "", {"provincial_eqa", "iso15189"}, 30}};
  LabResult r;
  r.code = "718-7";
  r.code_system = "LN";
  r.status = "F";
  r.qualification = "provincial_eqa";
  r.specimen_at = "2026-12-01T00:00:00.000Z";
  const auto day = [](int d) {
    return *storage::parse_iso8601("2026-12-01T00:00:00.000Z") + std::chrono::hours(24) * d;
  };
  Recognition g = recognise(r, rules, day(29));
  EXPECT_TRUE(g.recognised);
  EXPECT_EQ(g.until, "2026-12-31T00:00:00.000Z");
  EXPECT_FALSE(recognise(r, rules, day(31)).recognised);
  EXPECT_NE(recognise(r, rules, day(31)).why.find("30 days"), std::string::npos);
  LabResult p = r;
  p.status = "P";
  EXPECT_FALSE(recognise(p, rules, day(1)).recognised);
  LabResult unqualified = r;
  unqualified.qualification = "";
  EXPECT_NE(recognise(unqualified, rules, day(1)).why.find("not known"), std::string::npos);
  EXPECT_EQ(recognise(unqualified, rules, day(1)).why_code, "qualification_unknown");
  EXPECT_EQ(recognise(r, rules, day(31)).why_code, "expired");
  LabResult local = r;
  local.code_system = "L";  // a local code nobody mapped is not the LOINC test
  EXPECT_FALSE(recognise(local, rules, day(1)).recognised);
  LabResult other = r;
  other.code = "2345-7";
  EXPECT_FALSE(recognise(other, rules, day(1)).recognised);
}

TEST(Recognition, admins_edits_replace_add_and_take_out_the_files_entries) {
  LabOptions file;
  file.recognition = {{"718-7", "", {"provincial_eqa", "iso15189"}, 30},
                      {"2345-7", "", {"iso15189"}, 3},
                      {"", "CT", {"tertiary"}, 180}};
  file.qualifications = {{"lead", "iso15189"}, {"ta", "provincial_eqa"}};
  EXPECT_EQ(rule_key(file.recognition[0]), "code:718-7");
  EXPECT_EQ(rule_key(file.recognition[2]), "modality:CT");

  // No edits: the file's table.
  RecognitionTable same = recognition_table(file, {}, {});
  ASSERT_EQ(same.rules.size(), 3u);
  EXPECT_EQ(same.qualifications, file.qualifications);

  // Glucose widened to provincial laboratories, CT taken out, DX added; ta raised, lead's
  // taken out, a laboratory named in its results added.
  const std::vector<RuleEdit> rules = {
      {{"2345-7", "", {"provincial_eqa", "iso15189"}, 7}, false, "office", "t1"},
      {{"", "CT", {}, 0}, true, "office", "t2"},
      {{"", "DX", {"iso15189"}, 90}, false, "office", "t3"}};
  const std::vector<QualificationEdit> qualifications = {
      {"ta", "iso15189", false, "office", "t1"},
      {"lead", "", true, "office", "t2"},
      {"县中心实验室", "provincial_eqa", false, "office", "t3"}};
  RecognitionTable t = recognition_table(file, rules, qualifications);
  ASSERT_EQ(t.rules.size(), 3u);
  EXPECT_EQ(t.rules[0].code, "718-7");  // untouched, in its place
  EXPECT_EQ(t.rules[1].code, "2345-7");
  EXPECT_EQ(t.rules[1].valid_days, 7);
  EXPECT_EQ(t.rules[1].qualifications, (std::vector<std::string>{"provincial_eqa", "iso15189"}));
  EXPECT_EQ(t.rules[2].modality, "DX");  // added after the file's
  EXPECT_EQ(t.qualifications.at("ta"), "iso15189");
  EXPECT_EQ(t.qualifications.count("lead"), 0u);
  EXPECT_EQ(t.qualifications.at("县中心实验室"), "provincial_eqa");

  // What the table decides follows: a provincial laboratory's glucose is now recognised for
  // 7 days, a CT report no longer.
  LabResult glucose;
  glucose.code = "2345-7";
  glucose.code_system = "LN";
  glucose.status = "F";
  glucose.qualification = "provincial_eqa";
  glucose.specimen_at = "2026-12-01T00:00:00.000Z";
  const auto at = *storage::parse_iso8601("2026-12-02T00:00:00.000Z");
  EXPECT_FALSE(recognise(glucose, same.rules, at).recognised);
  EXPECT_TRUE(recognise(glucose, t.rules, at).recognised);
  ImagingReport ct;
  ct.modality = "CT";
  ct.read_by = "lead";
  ct.final_at = "2026-12-01T00:00:00.000Z";
  EXPECT_EQ(recognise_report(ct, t.rules, t.qualifications, at).why_code, "no_rule");
}

TEST(Recognition, a_result_received_without_a_qualification_takes_its_laboratorys_from_the_table) {
  const std::map<std::string, std::string> table = {{"ta", "provincial_eqa"},
                                                    {"County Second Lab", "iso15189"}};
  EXPECT_EQ(laboratory_qualification("County Second Lab", "ta", table), "iso15189");
  EXPECT_EQ(laboratory_qualification("ta", "ta", table), "provincial_eqa");  // its own laboratory
  EXPECT_EQ(laboratory_qualification("tb", "ta", table), "");  // another member's, unknown
  LabResult r;
  r.institution_code = "ta";
  r.performing_lab = "County Second Lab";
  fill_qualification(r, table);
  EXPECT_EQ(r.qualification, "iso15189");
  r.qualification = "provincial_eqa";  // what it held when received stays
  fill_qualification(r, table);
  EXPECT_EQ(r.qualification, "provincial_eqa");
}

TEST(Recognition, an_imaging_report_is_recognised_by_its_modality_and_its_readers_qualification) {
  std::vector<RecognitionRule> rules = {{"", "CT", {"tertiary"}, 180},
                                        {"718-7", "", {"tertiary"}, 30}};
  std::map<std::string, std::string> qualified = {{"lead", "tertiary"}, {"county", "secondary"}};
  ImagingReport r;
  r.modality = "CT";
  r.read_by = "lead";
  r.final_at = "2026-06-01T00:00:00.000Z";
  const auto at = *storage::parse_iso8601("2026-11-20T00:00:00.000Z");
  Recognition g = recognise_report(r, rules, qualified, at);
  EXPECT_TRUE(g.recognised);
  EXPECT_EQ(g.until, "2026-11-28T00:00:00.000Z");
  EXPECT_EQ(recognise_report(r, rules, qualified, at + std::chrono::hours(24 * 9)).why_code,
            "expired");
  ImagingReport county = r;
  county.read_by = "county";
  EXPECT_EQ(recognise_report(county, rules, qualified, at).why_code, "not_qualified");
  ImagingReport mr = r;
  mr.modality = "MR";
  EXPECT_EQ(recognise_report(mr, rules, qualified, at).why_code, "no_rule");
  // A laboratory rule is not an imaging rule, nor the other way round.
  LabResult hb;
  hb.code = "CT";
  hb.code_system = "LN";
  hb.status = "F";
  hb.qualification = "tertiary";
  hb.specimen_at = "2026-11-19T00:00:00.000Z";
  EXPECT_EQ(recognise(hb, rules, at).why_code, "no_rule");
}

}  // namespace
}  // namespace yilian::lab

namespace yilian::lab {
namespace {

nlohmann::json bundle() {
  return nlohmann::json::parse(R"({
    "resourceType": "Bundle", "type": "transaction",
    "identifier": {"system": "urn:lis:ta", "value": "B-1"},
    "entry": [
      {"resource": {"resourceType": "Patient", "name": [{"family": "王", "given": ["芳"]}]}},
      {"resource": {"resourceType": "DiagnosticReport", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2", "display": "CBC"}]},
        "subject": {"identifier": {"value": "TA-9"}}}},
      {"resource": {"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "urn:lis:ta", "code": "HGB"},
                            {"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
        "subject": {"reference": "Patient/TA-9"},
        "effectiveDateTime": "2026-12-05T08:30:00+08:00",
        "issued": "2026-12-05T01:15:00Z",
        "valueQuantity": {"value": 96, "unit": "g/L"},
        "referenceRange": [{"low": {"value": 115}, "high": {"value": 150}}],
        "interpretation": [{"coding": [{"code": "L"}]}],
        "performer": [{"display": "County Central Laboratory"}]}},
      {"resource": {"resourceType": "Observation", "status": "preliminary",
        "code": {"coding": [{"system": "http://loinc.org", "code": "5778-6"}], "text": "Urine colour"},
        "subject": {"identifier": {"value": "TA-9"}},
        "effectiveDateTime": "2026-12-05",
        "valueCodeableConcept": {"coding": [{"code": "Y", "display": "yellow"}]}}}
    ]})");
}

TEST(Fhir, a_bundle_of_observations_reads_like_an_oru) {
  auto r = read_fhir(bundle(), "ta");
  ASSERT_TRUE(std::holds_alternative<OruReport>(r)) << std::get<FhirIssue>(r).text;
  const OruReport& report = std::get<OruReport>(r);
  EXPECT_EQ(report.control_id, "urn:lis:ta|B-1");
  EXPECT_EQ(report.patient_id, "TA-9");
  EXPECT_EQ(report.patient_name, "王^芳");
  ASSERT_EQ(report.observations.size(), 2u);
  const Observation& hb = report.observations[0];
  EXPECT_EQ(hb.code, "718-7");
  EXPECT_EQ(hb.code_system, "LN");
  EXPECT_EQ(hb.alt_code, "HGB");
  EXPECT_EQ(hb.value, "96");
  EXPECT_EQ(*hb.numeric, 96);
  EXPECT_EQ(hb.units, "g/L");
  EXPECT_EQ(hb.reference_range, "115-150");
  EXPECT_EQ(hb.flags, "L");
  EXPECT_EQ(hb.status, "F");
  EXPECT_EQ(hb.specimen_time, "2026-12-05T00:30:00.000Z");
  EXPECT_EQ(hb.observed_time, "2026-12-05T01:15:00.000Z");
  EXPECT_EQ(hb.performing_lab, "County Central Laboratory");
  EXPECT_EQ(hb.order_code, "58410-2");
  const Observation& urine = report.observations[1];
  EXPECT_EQ(urine.value, "yellow");
  EXPECT_EQ(urine.status, "P");
  EXPECT_EQ(urine.code_name, "Urine colour");
  EXPECT_EQ(urine.specimen_time, "2026-12-04T16:00:00.000Z");  // a date: local midnight
  EXPECT_EQ(urine.performing_lab, "ta");
}

TEST(Fhir, what_is_missing_or_wrong_is_named_by_its_path) {
  auto issue_of = [](nlohmann::json j) {
    auto r = read_fhir(j, "ta");
    return std::holds_alternative<FhirIssue>(r) ? std::get<FhirIssue>(r) : FhirIssue{0, "", "", ""};
  };
  auto b = bundle();
  b.erase("identifier");
  b["entry"][1]["resource"].erase("identifier");
  EXPECT_EQ(issue_of(b).expression, "Bundle.identifier");
  b = bundle();
  b["entry"][2]["resource"].erase("effectiveDateTime");
  EXPECT_EQ(issue_of(b).expression, "Bundle.entry[2].resource.effectiveDateTime");
  b = bundle();
  b["entry"][2]["resource"]["valueQuantity"]["value"] = "96";
  EXPECT_EQ(issue_of(b).expression, "Bundle.entry[2].resource.valueQuantity.value");
  b = bundle();
  b["entry"][2]["resource"]["status"] = "cancelled";
  EXPECT_EQ(issue_of(b).status, 422);
  b = bundle();
  b["entry"][3]["resource"]["subject"]["identifier"]["value"] = "TA-10";
  EXPECT_EQ(issue_of(b).code, "business-rule");
  b = bundle();
  b["type"] = "document";
  EXPECT_EQ(issue_of(b).code, "not-supported");
  b = bundle();
  b["entry"][0]["resource"]["resourceType"] = "MedicationRequest";
  EXPECT_EQ(issue_of(b).code, "not-supported");
  EXPECT_EQ(issue_of(nlohmann::json{{"resourceType", "Patient"}}).code, "not-supported");
  EXPECT_EQ(issue_of(nlohmann::json::array()).code, "not-supported");
}

TEST(Fhir, date_times_take_their_zone_and_a_date_is_local_midnight) {
  EXPECT_EQ(fhir_time("2026-12-05T08:30:00+08:00", 480), "2026-12-05T00:30:00.000Z");
  EXPECT_EQ(fhir_time("2026-12-05T08:30:00.5Z", 480), "2026-12-05T08:30:00.500Z");
  EXPECT_EQ(fhir_time("2026-12", 480), "2026-11-30T16:00:00.000Z");
  for (const char* bad : {"", "2026-1-05", "2026-12-05T08:30", "2026-12-05T08:30:00",
                          "2026-12-05 08:30:00Z", "2026-12-05T08:30:00+0800"}) {
    EXPECT_FALSE(fhir_time(bad, 480).has_value()) << bad;
  }
}

}  // namespace
}  // namespace yilian::lab
