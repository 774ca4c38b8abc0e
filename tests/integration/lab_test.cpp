// Laboratory results on the real `yilian serve`: a laboratory system (python-hl7, Debian
// python3-hl7, builds the messages and sends them over MLLP) sends ORU^R01 results; the hub
// answers AA, AE or AR with the reason, stores nothing twice and nothing of a refused message,
// decodes GB18030 text, maps local codes to LOINC, and shows the results to the clinicians who
// serve the patient's institution with their recognition across members.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "consortium.h"
#include "lab_client.h"
#include "server_process.h"
#include "synthetic.h"
#include "test_util.h"
#include "yilian/storage/clock.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

std::string sql_value(const fs::path& db, const std::string& q) {
  std::string out;
  testing::run_command("sqlite3 '" + db.string() + "' \"" + q + "\"", &out);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

class LabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path cfg = testing::write_consortium_config(
        dir_.path(), std::string(testing::kLabConfig) +
                         "\n[queue]\nstable_seconds = 0.3\nnational_id_issuer = \"CN-ID\"\n");
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data",
                                              std::vector<std::string>{"--config", cfg.string()});
    ASSERT_TRUE(server_->start()) << server_->log();
    ASSERT_NE(server_->mllp_port(), 0) << server_->log();
    store_ct("TA-LAB-1", "TA_CT");
  }

  // One small CT of `patient` sent as `aet`: the patient is then known at its institution.
  void store_ct(const std::string& patient, const std::string& aet,
                const std::string& name = "Test^Patient", const std::string& issuer = {}) {
    testing::CtSeriesSpec spec;
    spec.count = 1;
    spec.rows = spec.columns = 16;
    spec.patient_id = patient;
    spec.patient_name = name;
    spec.issuer = issuer;
    auto ct = testing::write_ct_series(dir_.path() / (patient + "-" + aet), spec);
    ASSERT_TRUE(ct.ok());
    ASSERT_EQ(testing::storescu(*server_, aet, ct->files), 0);
  }

  // The task the reader claims next, once the study's task appears (0.3 s after the study).
  json claim_next(const std::string& reader) {
    for (int i = 0; i < 200; ++i) {  // bounded
      auto r = server_->request(reader, "POST", "/api/worklist/claim-next");
      json j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j["task"].is_object()) return j["task"];
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
  }

  std::vector<json> send(const json& cases) {
    std::string log;
    auto answers = testing::send_hl7(server_->mllp_port(), cases, dir_.path(), &log);
    EXPECT_EQ(answers.size(), cases.size()) << log;
    return answers;
  }

  testing::TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(LabTest, results_are_acknowledged_stored_once_and_refusals_store_nothing) {
  const std::string taken = testing::hl7_time_ago(90);
  const json hgb = {"HGB", "Haemoglobin", "L", "NM", "96", "g/L", "115-150", "L", "F"};
  const json glucose = {"2345-7", "Glucose", "LN", "NM", "6.1", "mmol/L", "3.9-6.1", "", "F"};
  json cases = json::array({
      // 0: two results, one by a local code the consortium maps to LOINC.
      {{"control", "M1"},
       {"patient", "TA-LAB-1"},
       {"results", {hgb, glucose}},
       {"set", {{"OBR", 7, 0, taken}}}},
      // 1: the same message again (a resend after a lost ACK).
      {{"control", "M1"},
       {"patient", "TA-LAB-1"},
       {"results", {hgb, glucose}},
       {"set", {{"OBR", 7, 0, taken}}}},
      // 2: a patient the township has never sent a study of.
      {{"control", "M2"}, {"patient", "TA-NOBODY"}, {"results", {glucose}}},
      // 3: wrong encoding characters.
      {{"raw", "MSH|^~|LIS|ta|YILIAN|HUB|20261205100000||ORU^R01|M4|P|2.5.1\rPID|1||TA-LAB-1\r"}},
      // 4: a value that is not a number for a numeric result.
      {{"control", "M5"},
       {"patient", "TA-LAB-1"},
       {"results", {{"2345-7", "Glucose", "LN", "NM", "high", "mmol/L", "", "", "F"}}}},
      // 5: a sending facility that is no member.
      {{"control", "M6"}, {"facility", "tz"}, {"patient", "TA-LAB-1"}, {"results", {glucose}}},
      // 6: another message type.
      {{"control", "M7"},
       {"patient", "TA-LAB-1"},
       {"results", {glucose}},
       {"set", {{"MSH", 9, 1, "ADT"}, {"MSH", 9, 2, "A01"}}}},
      // 7: GB18030 text, declared.
      {{"control", "M8"},
       {"patient", "TA-LAB-1"},
       {"name", "王^芳"},
       {"charset", "GB 18030-2000"},
       {"encoding", "gb18030"},
       {"results", {{"718-7", "血红蛋白", "LN", "NM", "121", "g/L", "115-150", "", "F"}}},
       {"set", {{"OBR", 7, 0, taken}}}},
      // 8: a malformed segment.
      {{"raw", "MSH|^~\\&|LIS|ta|YILIAN|HUB|20261205100000||ORU^R01|M9|P|2.5.1\rpid|1||X\r"}},
      // 9: a result status not accepted.
      {{"control", "M10"},
       {"patient", "TA-LAB-1"},
       {"results", {{"2345-7", "Glucose", "LN", "NM", "5", "mmol/L", "", "", "X"}}}},
  });
  auto a = send(cases);
  ASSERT_EQ(a.size(), cases.size());
  EXPECT_EQ(a[0]["ack"], "AA");
  EXPECT_EQ(a[0]["control"], "M1");
  EXPECT_EQ(a[0]["text"], "2 results stored");
  EXPECT_EQ(a[1]["ack"], "AA");
  EXPECT_NE(a[1]["text"].get<std::string>().find("already stored"), std::string::npos);
  EXPECT_EQ(a[2]["ack"], "AE");
  EXPECT_EQ(a[2]["error"], "204");
  EXPECT_EQ(a[2]["location"], "PID^1^3");
  EXPECT_NE(a[2]["text"].get<std::string>().find("unknown patient"), std::string::npos);
  EXPECT_EQ(a[3]["ack"], "AR");
  EXPECT_NE(a[3]["text"].get<std::string>().find("encoding characters"), std::string::npos);
  EXPECT_EQ(a[4]["ack"], "AE");
  EXPECT_EQ(a[4]["error"], "102");
  EXPECT_EQ(a[4]["location"], "OBX^1^5");
  EXPECT_EQ(a[5]["ack"], "AR");
  EXPECT_EQ(a[5]["error"], "204");
  EXPECT_EQ(a[6]["ack"], "AR");
  EXPECT_EQ(a[6]["error"], "200");
  EXPECT_EQ(a[7]["ack"], "AA") << a[7].dump();
  EXPECT_EQ(a[8]["ack"], "AR");
  EXPECT_EQ(a[9]["ack"], "AE");
  EXPECT_EQ(a[9]["error"], "103");

  // Stored: the two accepted messages, once each, with their three results; nothing else.
  const fs::path db = dir_.path() / "data" / "index.sqlite";
  EXPECT_EQ(sql_value(db, "SELECT count(*) FROM lab_messages"), "2");
  EXPECT_EQ(sql_value(db, "SELECT group_concat(control_id) FROM lab_messages"), "M1,M8");
  EXPECT_EQ(sql_value(db, "SELECT count(*) FROM lab_results"), "3");

  // Clinicians who serve township A see the results, recognised where a rule says so.
  const std::string cardio = server_->add_user("cardio", {"cardiologist"}, "lead");
  const std::string tb = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
  const std::string office = server_->add_user("office", {"admin"}, "lead");
  ASSERT_FALSE(cardio.empty() || tb.empty() || office.empty());
  auto r = server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1");
  ASSERT_EQ(r.status, 200) << r.body;
  json results = json::parse(r.body)["results"];
  ASSERT_EQ(results.size(), 3u);
  std::map<std::string, json> by_name;
  for (const json& x : results) by_name[x["name"]] = x;
  ASSERT_TRUE(by_name.count("Haemoglobin"));
  const json& h = by_name["Haemoglobin"];
  EXPECT_EQ(h["code"], "718-7");
  EXPECT_EQ(h["codeSystem"], "LN");
  EXPECT_EQ(h["localCode"], "HGB");
  EXPECT_EQ(h["value"], "96");
  EXPECT_EQ(h["units"], "g/L");
  EXPECT_EQ(h["referenceRange"], "115-150");
  EXPECT_EQ(h["flags"], "L");
  EXPECT_EQ(h["institution"], "ta");
  EXPECT_EQ(h["performingLab"], "ta");
  EXPECT_EQ(h["qualification"], "provincial_eqa");
  EXPECT_EQ(h["recognition"]["recognised"], true);
  const json& g = by_name["Glucose"];
  EXPECT_EQ(g["recognition"]["recognised"], false);
  EXPECT_NE(g["recognition"]["why"].get<std::string>().find("qualification"), std::string::npos);
  ASSERT_TRUE(by_name.count("血红蛋白")) << results.dump();
  EXPECT_EQ(by_name["血红蛋白"]["patient"]["name"], "王^芳");
  EXPECT_EQ(json::parse(r.body)["recognised"], 2);

  // Another township sees nothing of A's patients; the office reads no patient data.
  EXPECT_TRUE(
      json::parse(server_->get(tb, "/api/lab/results?patientId=TA-LAB-1").body)["results"].empty());
  EXPECT_EQ(server_->get(office, "/api/lab/results?patientId=TA-LAB-1").status, 403);
  EXPECT_EQ(server_->get(cardio, "/api/lab/results?patientId=TA*").status, 400);

  // The lead's doctor takes the recognised haemoglobin instead of repeating it: counted once.
  const std::string take =
      "/api/lab/results/" + std::to_string(h["id"].get<std::int64_t>()) + "/recognise";
  auto first = server_->request(cardio, "POST", take, "");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(json::parse(first.body)["recorded"], true);
  EXPECT_EQ(json::parse(server_->request(cardio, "POST", take, "").body)["recorded"], false);
  EXPECT_EQ(server_->request(tb, "POST", take, "").status, 404);
  auto not_recognised = server_->request(
      cardio, "POST",
      "/api/lab/results/" + std::to_string(g["id"].get<std::int64_t>()) + "/recognise", "");
  EXPECT_EQ(not_recognised.status, 409) << not_recognised.body;
  json avoided = json::parse(server_->get(office, "/api/lab/avoided-repeats").body);
  EXPECT_EQ(avoided["byInstitution"]["lead"], 1);
  EXPECT_EQ(avoided["total"], 1);
  json audit = json::parse(server_->get(office, "/api/audit?action=lab.results.read").body);
  EXPECT_GE(audit["records"].size(), 3u);
}

// The consortium's admin edits the recognition table over the configuration file's: a rule
// widened, one taken out and put back, one added; a laboratory's qualification raised. The
// results' recognition follows at once; bad edits are refused with the reason and change
// nothing; only admins edit, and every edit is audited.
TEST_F(LabTest, the_admin_edits_the_recognition_table_and_the_results_follow) {
  const std::string taken = testing::hl7_time_ago(90);
  const json glucose = {"2345-7", "Glucose", "LN", "NM", "6.1", "mmol/L", "3.9-6.1", "", "F"};
  const json hgb = {"718-7", "Haemoglobin", "LN", "NM", "121", "g/L", "115-150", "", "F"};
  auto a = send(json::array({{{"control", "R1"},
                              {"patient", "TA-LAB-1"},
                              {"results", {hgb, glucose}},
                              {"set", {{"OBR", 7, 0, taken}}}}}));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0]["ack"], "AA") << a[0].dump();
  const std::string cardio = server_->add_user("cardio", {"cardiologist"}, "lead");
  const std::string office = server_->add_user("office", {"admin"}, "lead");
  ASSERT_FALSE(cardio.empty() || office.empty());
  // Recognition of each result by name, as the clinician sees it now.
  auto seen = [&] {
    auto r = server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1");
    EXPECT_EQ(r.status, 200) << r.body;
    std::map<std::string, json> out;
    json body = json::parse(r.body, nullptr, false);
    if (!body.is_object()) return out;
    for (const json& x : body["results"]) {
      out[x["name"].get<std::string>() + "@" + x["qualification"].get<std::string>()] =
          x["recognition"];
    }
    return out;
  };
  auto edit = [&](const std::string& method, const std::string& path, const json& body) {
    return server_->request(office, method, "/api/admin/lab/" + path, body.dump());
  };
  // The file's table: glucose only from ISO 15189 laboratories; township A is provincial.
  auto before = seen();
  EXPECT_EQ(before["Glucose@provincial_eqa"]["whyCode"], "not_qualified");
  EXPECT_EQ(before["Haemoglobin@provincial_eqa"]["recognised"], true);
  auto table = server_->get(office, "/api/admin/lab/recognition");
  ASSERT_EQ(table.status, 200) << table.body;
  json t = json::parse(table.body);
  ASSERT_EQ(t["rules"].size(), 3u);
  for (const json& r : t["rules"]) EXPECT_EQ(r["source"], "file") << r.dump();
  ASSERT_EQ(t["qualifications"].size(), 3u);
  // The tests the results named, by the name they gave; a rule's test is shown by its name.
  ASSERT_EQ(t["tests"].size(), 2u) << t["tests"].dump();
  EXPECT_EQ(t["tests"][0], (json{{"code", "2345-7"}, {"name", "Glucose"}, {"results", 1}}));
  EXPECT_EQ(t["tests"][1], (json{{"code", "718-7"}, {"name", "Haemoglobin"}, {"results", 1}}));
  for (const json& r : t["rules"]) {
    if (r.value("code", "") == "2345-7") {
      EXPECT_EQ(r["name"], "Glucose") << r.dump();
    }
    if (r.contains("modality")) {
      EXPECT_FALSE(r.contains("name")) << r.dump();
    }
  }
  EXPECT_EQ(server_->get(cardio, "/api/admin/lab/recognition").status, 403);
  EXPECT_EQ(
      server_
          ->request(
              cardio, "PUT", "/api/admin/lab/recognition/rules",
              json{{"code", "2345-7"}, {"qualifications", {"provincial_eqa"}}, {"validDays", 3}}
                  .dump())
          .status,
      403);

  // Bad edits: refused with the reason, nothing changed.
  for (const json& bad :
       {json{{"code", "glucose"}, {"qualifications", {"iso15189"}}, {"validDays", 3}},
        json{{"code", "2345-7"},
             {"modality", "CT"},
             {"qualifications", {"iso15189"}},
             {"validDays", 3}},
        json{{"code", "2345-7"}, {"qualifications", json::array()}, {"validDays", 3}},
        json{{"code", "2345-7"}, {"qualifications", {"ISO 15189"}}, {"validDays", 3}},
        json{{"code", "2345-7"}, {"qualifications", {"iso15189"}}, {"validDays", 0}},
        json{{"modality", "ct; drop"}, {"qualifications", {"iso15189"}}, {"validDays", 3}}}) {
    auto r = edit("PUT", "recognition/rules", bad);
    EXPECT_EQ(r.status, 400) << bad.dump() << " " << r.body;
    EXPECT_TRUE(json::parse(r.body, nullptr, false).contains("error")) << r.body;
  }
  EXPECT_EQ(server_->request(office, "PUT", "/api/admin/lab/recognition/rules", "{not json").status,
            400);
  EXPECT_EQ(edit("PUT", "qualifications", {{"holder", ""}, {"qualification", "iso15189"}}).status,
            400);
  EXPECT_EQ(edit("PUT", "qualifications", {{"holder", "ta"}, {"qualification", ""}}).status, 400);
  // A holder over 128 bytes, and one that is not UTF-8 (a GBK name sent as raw bytes).
  EXPECT_EQ(edit("PUT", "qualifications",
                 {{"holder", std::string(129, 'x')}, {"qualification", "iso15189"}})
                .status,
            400);
  for (const std::string path : {"qualifications", "qualifications/remove"}) {
    auto r = server_->request(office, path == "qualifications" ? "PUT" : "POST",
                              "/api/admin/lab/" + path,
                              "{\"holder\": \"\xcf\xd8\xc8\xcb\xc3\xf1\xd2\xbd\xd4\xba\", "
                              "\"qualification\": \"iso15189\"}");
    EXPECT_EQ(r.status, 400) << path << " " << r.body;
    EXPECT_TRUE(json::parse(r.body, nullptr, false).contains("error")) << r.body;
  }
  EXPECT_EQ(json::parse(server_->get(office, "/api/admin/lab/recognition").body), t);

  // Glucose widened to provincial laboratories: the stored result is recognised now.
  auto widened = edit(
      "PUT", "recognition/rules",
      {{"code", "2345-7"}, {"qualifications", {"provincial_eqa", "iso15189"}}, {"validDays", 3}});
  ASSERT_EQ(widened.status, 200) << widened.body;
  bool shown = false;
  const json widened_table = json::parse(widened.body);
  for (const json& r : widened_table["rules"]) {
    if (r.value("code", "") != "2345-7") continue;
    shown = true;
    EXPECT_EQ(r["source"], "edited");
    EXPECT_EQ(r["edited"]["by"], "office");
    EXPECT_EQ(r["file"]["qualifications"], json({"iso15189"}));
  }
  EXPECT_TRUE(shown);
  EXPECT_EQ(seen()["Glucose@provincial_eqa"]["recognised"], true);

  // Haemoglobin taken out, then put back as the file has it.
  ASSERT_EQ(edit("POST", "recognition/rules/remove", {{"code", "718-7"}}).status, 200);
  EXPECT_EQ(seen()["Haemoglobin@provincial_eqa"]["whyCode"], "no_rule");
  ASSERT_EQ(edit("POST", "recognition/rules/restore", {{"code", "718-7"}}).status, 200);
  EXPECT_EQ(seen()["Haemoglobin@provincial_eqa"]["recognised"], true);
  auto again = edit("POST", "recognition/rules/restore", {{"code", "718-7"}});
  EXPECT_EQ(again.status, 404) << again.body;

  // A rule the file does not have.
  auto added = edit("PUT", "recognition/rules",
                    {{"modality", "DX"}, {"qualifications", {"iso15189"}}, {"validDays", 90}});
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(json::parse(added.body)["rules"].back()["source"], "added");
  EXPECT_EQ(json::parse(added.body)["rules"].back()["modality"], "DX");

  // Township A's laboratory accredited to ISO 15189: its next results carry it; the stored ones
  // keep the qualification they were received with.
  auto raised = edit("PUT", "qualifications", {{"holder", "ta"}, {"qualification", "iso15189"}});
  ASSERT_EQ(raised.status, 200) << raised.body;
  a = send(json::array({{{"control", "R2"},
                         {"patient", "TA-LAB-1"},
                         {"results", {glucose}},
                         {"set", {{"OBR", 7, 0, taken}}}}}));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0]["ack"], "AA") << a[0].dump();
  auto after = seen();
  EXPECT_EQ(after["Glucose@iso15189"]["recognised"], true);
  EXPECT_EQ(after["Glucose@provincial_eqa"]["recognised"], true);
  const fs::path db = dir_.path() / "data" / "index.sqlite";
  EXPECT_EQ(sql_value(db,
                      "SELECT group_concat(qualification) FROM (SELECT qualification FROM "
                      "lab_results WHERE code = '2345-7' ORDER BY id)"),
            "provincial_eqa,iso15189");

  // A laboratory the table does not know: its result is not recognised, and the laboratory is
  // listed for the admin; once qualified, the result is judged by that qualification.
  a = send(json::array({{{"control", "R3"},
                         {"patient", "TA-LAB-1"},
                         {"results", {glucose}},
                         {"set", {{"OBR", 7, 0, taken}, {"OBX", 23, 0, "County Second Lab"}}}}}));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0]["ack"], "AA") << a[0].dump();
  auto from_second_lab = [&] {
    json body = json::parse(server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1").body,
                            nullptr, false);
    for (const json& x : body["results"]) {
      if (x["performingLab"] == "County Second Lab") return x;
    }
    return json();
  };
  json unknown = from_second_lab();
  ASSERT_TRUE(unknown.is_object());
  EXPECT_EQ(unknown["qualification"], "");
  EXPECT_EQ(unknown["recognition"]["whyCode"], "qualification_unknown");
  json listed = json::parse(server_->get(office, "/api/admin/lab/recognition").body)["unqualified"];
  ASSERT_EQ(listed.size(), 1u) << listed.dump();
  EXPECT_EQ(listed[0]["holder"], "County Second Lab");
  EXPECT_EQ(listed[0]["institution"], "ta");
  EXPECT_EQ(listed[0]["results"], 1);
  auto qualified = edit("PUT", "qualifications",
                        {{"holder", "County Second Lab"}, {"qualification", "iso15189"}});
  ASSERT_EQ(qualified.status, 200) << qualified.body;
  EXPECT_TRUE(json::parse(qualified.body)["unqualified"].empty()) << qualified.body;
  json known = from_second_lab();
  EXPECT_EQ(known["qualification"], "iso15189");
  EXPECT_EQ(known["recognition"]["recognised"], true) << known.dump();

  // Each change audited under the admin's name.
  json audit =
      json::parse(server_->get(office, "/api/audit?action=lab.recognition.rule.remove").body);
  ASSERT_EQ(audit["records"].size(), 1u) << audit.dump();
  EXPECT_EQ(audit["records"][0]["actor"], "office");
  EXPECT_EQ(audit["records"][0]["objectId"], "code:718-7");
}

// FHIR R4: the township laboratory posts a Bundle with its own account; a resend stores
// nothing twice; what is wrong is named by its FHIRPath in an OperationOutcome.
TEST_F(LabTest, a_fhir_bundle_is_stored_once_and_refusals_name_the_element) {
  const std::string lis = server_->add_user("ta-lis", {"township_doctor"}, "ta");
  const std::string office = server_->add_user("office", {"admin"}, "lead");
  const std::string cardio = server_->add_user("cardio", {"cardiologist"}, "lead");
  ASSERT_FALSE(lis.empty() || office.empty() || cardio.empty());
  const std::string taken =
      storage::to_iso8601(std::chrono::system_clock::now() - std::chrono::hours(2));
  json bundle = {
      {"resourceType", "Bundle"},
      {"type", "transaction"},
      {"identifier", {{"system", "urn:lis:ta"}, {"value", "FB-1"}}},
      {"entry",
       {{{"resource",
          {{"resourceType", "Observation"},
           {"status", "final"},
           {"identifier", {{{"value", "o1"}}}},
           {"code",
            {{"coding",
              {{{"system", "http://loinc.org"}, {"code", "2345-7"}, {"display", "Glucose"}}}}}},
           {"subject", {{"identifier", {{"value", "TA-LAB-1"}}}}},
           {"effectiveDateTime", taken},
           {"valueQuantity", {{"value", 7.8}, {"unit", "mmol/L"}}},
           {"interpretation", {{{"coding", {{{"code", "H"}}}}}}},
           {"performer", {{{"display", "County Central Laboratory"}}}}}}}}}};
  auto post = [&](const std::string& token, const json& body, const std::string& path) {
    return testing::http_request(
        server_->http_port(), "POST", path, body.dump(),
        {{"Authorization", "Bearer " + token}, {"Content-Type", "application/fhir+json"}});
  };
  auto created = post(lis, bundle, "/fhir/r4/Bundle");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("content-type"), "application/fhir+json");
  json outcome = json::parse(created.body);
  EXPECT_EQ(outcome["resourceType"], "OperationOutcome");
  EXPECT_EQ(outcome["issue"][0]["diagnostics"], "1 results stored");
  auto again = post(lis, bundle, "/fhir/r4");
  EXPECT_EQ(again.status, 200) << again.body;

  json unknown = bundle;
  unknown["identifier"]["value"] = "FB-2";
  unknown["entry"][0]["resource"]["subject"]["identifier"]["value"] = "TA-NOBODY";
  auto refused = post(lis, unknown, "/fhir/r4/Bundle");
  EXPECT_EQ(refused.status, 422) << refused.body;
  json bad = bundle;
  bad["identifier"]["value"] = "FB-3";
  bad["entry"][0]["resource"]["valueQuantity"]["value"] = "lots";
  auto invalid = post(lis, bad, "/fhir/r4/Bundle");
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  EXPECT_EQ(json::parse(invalid.body)["issue"][0]["expression"][0],
            "Bundle.entry[0].resource.valueQuantity.value");
  EXPECT_EQ(post(office, bundle, "/fhir/r4/Bundle").status, 403);
  auto text =
      testing::http_request(server_->http_port(), "POST", "/fhir/r4/Bundle", "x",
                            {{"Authorization", "Bearer " + lis}, {"Content-Type", "text/plain"}});
  EXPECT_EQ(text.status, 415);
  EXPECT_EQ(post(lis, json::array(), "/fhir/r4/Bundle").status, 400);
  EXPECT_EQ(testing::http_request(server_->http_port(), "POST", "/fhir/r4/Bundle", bundle.dump(),
                                  {{"Content-Type", "application/fhir+json"}})
                .status,
            401);

  // Stored once, from the county laboratory whose ISO 15189 the glucose rule asks for: the
  // lead's doctor sees it recognised.
  const fs::path db = dir_.path() / "data" / "index.sqlite";
  EXPECT_EQ(sql_value(db, "SELECT count(*) FROM lab_results"), "1");
  EXPECT_EQ(sql_value(db, "SELECT protocol || ' ' || control_id FROM lab_messages"),
            "fhir urn:lis:ta|FB-1");
  json results = json::parse(server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1").body);
  ASSERT_EQ(results["results"].size(), 1u);
  EXPECT_EQ(results["results"][0]["value"], "7.8");
  EXPECT_EQ(results["results"][0]["flags"], "H");
  EXPECT_EQ(results["results"][0]["qualification"], "iso15189");
  EXPECT_EQ(results["results"][0]["recognition"]["recognised"], true);
}

// A referral reaches the results: township B does not serve the lead's patient, until the lead
// refers the patient down to it; then B's doctor sees the lead's recognised glucose and takes
// it instead of repeating the test.
TEST_F(LabTest, a_referral_brings_the_patients_recognised_results_to_the_receiving_doctor) {
  store_ct("LEAD-P1", "LEAD_CT");
  auto acks = send(json::array(
      {{{"control", "L1"},
        {"facility", "lead"},
        {"patient", "LEAD-P1"},
        {"results", {{"2345-7", "Glucose", "LN", "NM", "5.4", "mmol/L", "3.9-6.1", "", "F"}}},
        {"set", {{"OBR", 7, 0, testing::hl7_time_ago(120)}}}}}));
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0]["ack"], "AA") << acks[0].dump();
  const std::string cardio = server_->add_user("cardio", {"cardiologist"}, "lead");
  const std::string tb = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
  ASSERT_FALSE(cardio.empty() || tb.empty());
  const std::string path = "/api/lab/results?patientId=LEAD-P1";
  EXPECT_TRUE(json::parse(server_->get(tb, path).body)["results"].empty());

  auto referral = server_->request(cardio, "POST", "/api/referrals",
                                   json{{"direction", "down"},
                                        {"toInstitution", "tb"},
                                        {"urgency", "routine"},
                                        {"patientId", "LEAD-P1"},
                                        {"reason", "follow-up of diabetes at home"},
                                        {"dischargeSummary", "type 2 diabetes, stable"},
                                        {"followUpPlan", "fasting glucose monthly"}}
                                       .dump());
  ASSERT_EQ(referral.status, 201) << referral.body;
  json seen = json::parse(server_->get(tb, path).body)["results"];
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]["institution"], "lead");
  EXPECT_EQ(seen[0]["recognition"]["recognised"], true);
  auto take = server_->request(
      tb, "POST",
      "/api/lab/results/" + std::to_string(seen[0]["id"].get<std::int64_t>()) + "/recognise", "");
  ASSERT_EQ(take.status, 200) << take.body;
  EXPECT_EQ(json::parse(take.body)["institution"], "tb");
  json avoided = json::parse(server_->get(server_->admin_token(), "/api/lab/avoided-repeats").body);
  EXPECT_EQ(avoided["byInstitution"]["tb"], 1);
}

// Imaging reports too: township A's CT read at the lead to a final report is recognised for
// the doctors who see the patient; its reader's institution is what the rule asks about.
TEST_F(LabTest, a_final_ct_report_read_at_the_lead_is_recognised_with_the_results) {
  const std::string rad = server_->add_user("rad", {"radiologist"}, "lead");
  const std::string doc = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
  const std::string tb = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
  ASSERT_FALSE(rad.empty() || doc.empty() || tb.empty());
  const json claimed = claim_next(rad);
  ASSERT_TRUE(claimed.is_object()) << server_->log();
  const std::string base = "/api/tasks/" + std::to_string(claimed["id"].get<std::int64_t>());
  auto signed_report = server_->request(
      rad, "POST", base + "/reports",
      R"({"kind":"final","findings":"No acute abnormality.","impression":"Normal head CT."})");
  ASSERT_EQ(signed_report.status, 201) << signed_report.body;

  json seen = json::parse(server_->get(doc, "/api/lab/results?patientId=TA-LAB-1").body);
  ASSERT_EQ(seen["imaging"].size(), 1u) << seen.dump();
  const json& ct = seen["imaging"][0];
  EXPECT_EQ(ct["modality"], "CT");
  EXPECT_EQ(ct["institution"], "ta");
  EXPECT_EQ(ct["readBy"], "lead");
  EXPECT_EQ(ct["impression"], "Normal head CT.");
  EXPECT_EQ(ct["recognition"]["recognised"], true);
  EXPECT_EQ(seen["recognised"], 1);
  EXPECT_TRUE(
      json::parse(server_->get(tb, "/api/lab/results?patientId=TA-LAB-1").body)["imaging"].empty());
}

// The patient's timeline: the township's laboratory panel, the CT read at the lead to a final
// report, and the ECG the township doctor sent, newest first, each with what the doctor opens;
// hidden from a clinic that does not serve the patient, audited.
TEST_F(LabTest, the_patients_timeline_holds_results_imaging_and_ecg_in_time_order) {
  const std::string rad = server_->add_user("rad", {"radiologist"}, "lead");
  const std::string doc = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
  const std::string tb = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
  ASSERT_FALSE(rad.empty() || doc.empty() || tb.empty());
  auto acks = send(
      json::array({{{"control", "T1"},
                    {"patient", "TA-LAB-1"},
                    {"results",
                     {{"HGB", "Haemoglobin", "L", "NM", "96", "g/L", "115-150", "L", "F"},
                      {"6690-2", "Leukocytes", "LN", "NM", "6.1", "10*9/L", "3.5-9.5", "", "F"}}},
                    {"set", {{"OBR", 7, 0, testing::hl7_time_ago(60)}}}}}));
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0]["ack"], "AA") << acks[0].dump();
  // An ECG the township doctor sends now: filed at the upload time.
  std::ifstream in(fs::path(YILIAN_SHARED_DATA) / "aecg" / "hl7-aecg-example.xml");
  const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(xml.empty());
  const std::string before = storage::to_iso8601(std::chrono::system_clock::now()).substr(0, 19);
  auto ecg = testing::http_request(
      server_->http_port(), "POST", "/api/ecg?patientId=TA-LAB-1&patientName=Wang%5EFang", xml,
      {{"Authorization", "Bearer " + doc}, {"Content-Type", "application/xml"}});
  ASSERT_EQ(ecg.status, 201) << ecg.body;
  const std::string ecg_study = json::parse(ecg.body)["studyInstanceUid"];
  // The CT read at the lead.
  const json claimed = claim_next(rad);
  ASSERT_TRUE(claimed.is_object()) << server_->log();
  const std::int64_t task = claimed["id"];
  auto signed_report = server_->request(
      rad, "POST", "/api/tasks/" + std::to_string(task) + "/reports",
      R"({"kind":"final","findings":"No acute abnormality.","impression":"Normal head CT."})");
  ASSERT_EQ(signed_report.status, 201) << signed_report.body;

  const std::string path = "/api/timeline?patientId=TA-LAB-1";
  json timeline;
  for (int i = 0; i < 200; ++i) {  // bounded: the ECG's reading task appears 0.3 s after it
    timeline = json::parse(server_->get(doc, path).body);
    const json& entries = timeline["entries"];
    if (entries.size() == 3 && entries[0]["reads"].is_array() && !entries[0]["reads"].empty())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const json& entries = timeline["entries"];
  ASSERT_EQ(entries.size(), 3u) << timeline.dump();
  EXPECT_EQ(timeline["patient"]["id"], "TA-LAB-1");
  // Newest first: the ECG sent now, the panel of an hour ago, the CT of 22 November 2026.
  EXPECT_EQ(entries[0]["kind"], "ecg");
  EXPECT_EQ(entries[0]["institution"], "ta");
  EXPECT_EQ(entries[0]["study"]["studyInstanceUid"], ecg_study);
  ASSERT_EQ(entries[0]["reads"].size(), 1u) << timeline.dump();
  EXPECT_EQ(entries[0]["reads"][0]["status"], "queued");
  EXPECT_FALSE(entries[0]["reads"][0].contains("recognition"));
  // Filed in local time: the upload's UTC time comes back (DICOM times are to the second).
  const std::string after = storage::to_iso8601(std::chrono::system_clock::now()).substr(0, 19);
  const std::string at = entries[0]["at"].get<std::string>().substr(0, 19);
  EXPECT_TRUE(before <= at && at <= after) << before << " " << at << " " << after;

  EXPECT_EQ(entries[1]["kind"], "lab");
  EXPECT_EQ(entries[1]["institution"], "ta");
  ASSERT_EQ(entries[1]["results"].size(), 2u);
  EXPECT_EQ(entries[1]["results"][0]["value"], "96");  // as the laboratory sent them
  EXPECT_EQ(entries[1]["results"][0]["flags"], "L");
  EXPECT_EQ(entries[1]["results"][1]["code"], "6690-2");

  EXPECT_EQ(entries[2]["kind"], "imaging");
  EXPECT_EQ(entries[2]["at"].get<std::string>().substr(0, 10), "2026-11-22");
  EXPECT_EQ(entries[2]["study"]["modalities"], "CT");
  EXPECT_EQ(entries[2]["study"]["open"], true);
  ASSERT_EQ(entries[2]["reads"].size(), 1u);
  const json& read = entries[2]["reads"][0];
  EXPECT_EQ(read["taskId"], task);
  EXPECT_EQ(read["status"], "final");
  EXPECT_EQ(read["impression"], "Normal head CT.");
  EXPECT_EQ(read["readBy"], "lead");
  EXPECT_EQ(read["recognition"]["recognised"], true);
  // The task the timeline names opens for the doctor.
  EXPECT_EQ(server_->get(doc, "/api/tasks/" + std::to_string(task)).status, 200);

  // Township B does not serve the patient: nothing of theirs; non-clinicians and wildcards are
  // refused.
  EXPECT_TRUE(json::parse(server_->get(tb, path).body)["entries"].empty());
  EXPECT_EQ(server_->get(server_->admin_token(), path).status, 403);
  EXPECT_EQ(server_->get(doc, "/api/timeline?patientId=TA-*").status, 400);
  EXPECT_EQ(server_->get(doc, "/api/timeline").status, 400);
  EXPECT_EQ(server_->get(doc, "/api/timeline?patientId=%FF%FE").status, 400);  // not UTF-8
  EXPECT_EQ(server_->get(doc, "/api/timeline?patientId=" + std::string(65, 'A')).status, 400);
  json audit = json::parse(
      server_->get(server_->admin_token(), "/api/audit?action=patient.timeline.read").body);
  std::set<std::string> seen;
  for (const json& r : audit["records"]) {
    seen.insert(r["actor"].get<std::string>() + " " + r["outcome"].get<std::string>());
  }
  EXPECT_TRUE(seen.count("ta-doctor ok") && seen.count("tb-doctor ok") &&
              seen.count("harness-admin denied"))
      << audit.dump();
}

// One Patient ID, two people: township A's patient TA-LAB-1, and the lead's own patient who
// has the same number in the lead's system. The lead's cardiologist serves both members and is
// asked which one is meant; each answer shows that person's records only. Under the national
// issuer one number is one person at every member that issued it so.
TEST_F(LabTest, one_patient_id_at_two_members_is_two_people_until_the_clinician_chooses) {
  store_ct("TA-LAB-1", "LEAD_CT", "Zhao^Gang");
  const std::string cardio = server_->add_user("cardio", {"cardiologist"}, "lead");
  const std::string doc = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
  ASSERT_FALSE(cardio.empty() || doc.empty());
  auto acks = send(json::array(
      {{{"control", "T1"},
        {"patient", "TA-LAB-1"},
        {"results", {{"HGB", "Haemoglobin", "L", "NM", "96", "g/L", "115-150", "L", "F"}}},
        {"set", {{"OBR", 7, 0, testing::hl7_time_ago(60)}}}}}));
  ASSERT_EQ(acks.size(), 1u);
  ASSERT_EQ(acks[0]["ack"], "AA") << acks[0].dump();

  const std::string path = "/api/timeline?patientId=TA-LAB-1";
  auto ambiguous = server_->get(cardio, path);
  ASSERT_EQ(ambiguous.status, 409) << ambiguous.body;
  json refused = json::parse(ambiguous.body);
  EXPECT_EQ(refused["error"]["code"], "ambiguous_patient");
  ASSERT_EQ(refused["candidates"].size(), 2u) << refused.dump();
  std::map<std::string, std::string> names;
  for (const json& c : refused["candidates"]) {
    ASSERT_EQ(c["institutions"].size(), 1u) << c.dump();
    EXPECT_EQ(c["national"], false);
    names[c["institutions"][0]] = c["name"];
  }
  EXPECT_EQ(names["ta"], "Test^Patient");
  EXPECT_EQ(names["lead"], "Zhao^Gang");
  // The laboratory results ask the same question.
  EXPECT_EQ(server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1").status, 409);

  // Township A's patient: the panel and the CT sent by A, nothing of the lead's patient.
  json ta = json::parse(server_->get(cardio, path + "&institution=ta").body);
  ASSERT_EQ(ta["entries"].size(), 2u) << ta.dump();
  EXPECT_EQ(ta["patient"]["name"], "Test^Patient");
  EXPECT_EQ(ta["patient"]["institutions"], json::array({"ta"}));
  std::set<std::string> kinds;
  for (const json& e : ta["entries"]) {
    EXPECT_EQ(e["institution"], "ta") << e.dump();
    kinds.insert(e["kind"].get<std::string>());
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"lab", "imaging"}));
  json ta_results =
      json::parse(server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1&institution=ta").body);
  EXPECT_EQ(ta_results["results"].size(), 1u) << ta_results.dump();
  // The lead's own patient: the lead's CT only.
  json lead = json::parse(server_->get(cardio, path + "&institution=lead").body);
  ASSERT_EQ(lead["entries"].size(), 1u) << lead.dump();
  EXPECT_EQ(lead["entries"][0]["institution"], "lead");
  EXPECT_EQ(lead["patient"]["name"], "Zhao^Gang");
  EXPECT_TRUE(
      json::parse(server_->get(cardio, "/api/lab/results?patientId=TA-LAB-1&institution=lead")
                      .body)["results"]
          .empty());
  // Township A's doctor reaches A's records only: nothing to choose.
  json own = json::parse(server_->get(doc, path).body);
  EXPECT_EQ(own["entries"].size(), 2u) << own.dump();
  EXPECT_EQ(own["patient"]["institutions"], json::array({"ta"}));
  EXPECT_EQ(server_->get(cardio, path + "&institution=ta%27--").status, 400);
  EXPECT_EQ(server_->get(cardio, path + "&institution=" + std::string(65, 'a')).status, 400);
  // A well-formed code of no member the patient is known at: nobody's records.
  auto unknown = server_->get(cardio, path + "&institution=" + std::string(64, 'a'));
  ASSERT_EQ(unknown.status, 200) << unknown.body;
  EXPECT_TRUE(json::parse(unknown.body)["entries"].empty()) << unknown.body;

  // A resident ID under the national issuer names one person at A and at the lead.
  store_ct("110101196001010027", "TA_CT", "Wang^Fang", "CN-ID");
  store_ct("110101196001010027", "LEAD_CT", "Wang^Fang", "CN-ID");
  json national =
      json::parse(server_->get(cardio, "/api/timeline?patientId=110101196001010027").body);
  ASSERT_EQ(national["entries"].size(), 2u) << national.dump();
  EXPECT_EQ(national["patient"]["national"], true);
  std::set<std::string> members;
  for (const json& e : national["entries"]) members.insert(e["institution"].get<std::string>());
  EXPECT_EQ(members, (std::set<std::string>{"ta", "lead"}));

  json audit = json::parse(
      server_->get(server_->admin_token(), "/api/audit?action=patient.timeline.read").body);
  bool refused_audited = false;
  for (const json& r : audit["records"]) {
    refused_audited |= r["actor"] == "cardio" && r["outcome"] == "refused";
  }
  EXPECT_TRUE(refused_audited) << audit.dump();
}

// The consults and referrals of the patient are part of the record: township A's doctor asks
// the lead's cardiologists and refers the patient up; both appear newest first with their
// status, and the consult opens for the doctor who asked. Township B sees neither.
TEST_F(LabTest, the_patients_consults_referrals_and_emergency_cases_are_in_the_timeline) {
  const std::string doc = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
  const std::string cardio = server_->add_user("cardio", {"cardiologist"}, "lead");
  const std::string tb = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
  ASSERT_FALSE(doc.empty() || cardio.empty() || tb.empty());
  auto consult = server_->request(doc, "POST", "/api/consults",
                                  json{{"patientId", "TA-LAB-1"},
                                       {"patientName", "Wang^Fang"},
                                       {"question", "Palpitations at night: Holter?"},
                                       {"urgency", "routine"},
                                       {"specialty", "cardiology"}}
                                      .dump());
  ASSERT_EQ(consult.status, 201) << consult.body;
  const std::int64_t consult_id = json::parse(consult.body)["id"];
  auto referral = server_->request(doc, "POST", "/api/referrals",
                                   json{{"direction", "up"},
                                        {"toInstitution", "lead"},
                                        {"urgency", "urgent"},
                                        {"patientId", "TA-LAB-1"},
                                        {"reason", "suspected atrial fibrillation"}}
                                       .dump());
  ASSERT_EQ(referral.status, 201) << referral.body;
  const std::int64_t referral_id = json::parse(referral.body)["id"];
  // A chest-pain case of the same patient, with two time points, one of them corrected.
  auto opened = server_->request(doc, "POST", "/api/emergencies",
                                 json{{"kind", "chest_pain"},
                                      {"patientId", "TA-LAB-1"},
                                      {"patientName", "Wang^Fang"},
                                      {"reason", "crushing chest pain for 40 min"}}
                                     .dump());
  ASSERT_EQ(opened.status, 201) << opened.body;
  const std::int64_t case_id = json::parse(opened.body)["id"];
  const std::string points = "/api/emergencies/" + std::to_string(case_id) + "/time-points";
  for (const auto& [point, at] : {std::pair{"symptom_onset", "2026-03-01T01:00:00Z"},
                                  std::pair{"first_medical_contact", "2026-03-01T01:30:00Z"},
                                  std::pair{"symptom_onset", "2026-03-01T00:50:00Z"}}) {
    auto r = server_->request(doc, "POST", points, json{{"point", point}, {"at", at}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }

  json timeline = json::parse(server_->get(doc, "/api/timeline?patientId=TA-LAB-1").body);
  const json* emergency = nullptr;
  for (const json& e : timeline["entries"]) {
    if (e["kind"] == "emergency") emergency = &e;
  }
  ASSERT_NE(emergency, nullptr) << timeline.dump();
  EXPECT_EQ((*emergency)["institution"], "ta");
  const json& ec = (*emergency)["emergency"];
  EXPECT_EQ(ec["id"], case_id);
  EXPECT_EQ(ec["kind"], "chest_pain");
  EXPECT_EQ(ec["status"], "open");
  EXPECT_EQ(ec["source"], "manual");
  EXPECT_EQ(ec["reason"], "crushing chest pain for 40 min");
  EXPECT_EQ(ec["openedBy"], "ta-doctor");
  EXPECT_EQ(ec["open"], true);
  // Each point once, at its corrected time, in time order.
  EXPECT_EQ(ec["timePoints"],
            json::parse(R"([{"point":"symptom_onset","at":"2026-03-01T00:50:00.000Z"},
      {"point":"first_medical_contact","at":"2026-03-01T01:30:00.000Z"}])"))
      << ec.dump();
  std::vector<json> care;
  for (const json& e : timeline["entries"]) {
    if (e["kind"] == "consult" || e["kind"] == "referral") care.push_back(e);
  }
  ASSERT_EQ(care.size(), 2u) << timeline.dump();
  // Newest first: the referral was asked after the consult (or in the same millisecond, when
  // they keep the order they were listed in: consults first).
  const json& r = care[0]["kind"] == "referral" ? care[0] : care[1];
  const json& c = care[0]["kind"] == "consult" ? care[0] : care[1];
  EXPECT_GE(r["at"].get<std::string>(), c["at"].get<std::string>());
  EXPECT_EQ(c["institution"], "ta");
  EXPECT_EQ(c["consult"]["id"], consult_id);
  EXPECT_EQ(c["consult"]["specialty"], "cardiology");
  EXPECT_EQ(c["consult"]["status"], "requested");
  EXPECT_EQ(c["consult"]["text"], "Palpitations at night: Holter?");
  EXPECT_EQ(c["consult"]["open"], true);
  EXPECT_EQ(r["institution"], "ta");
  EXPECT_EQ(r["referral"]["id"], referral_id);
  EXPECT_EQ(r["referral"]["to"], "lead");
  EXPECT_EQ(r["referral"]["direction"], "up");
  EXPECT_EQ(r["referral"]["urgency"], "urgent");
  EXPECT_EQ(r["referral"]["text"], "suspected atrial fibrillation");
  // The lead's cardiologist serves township A: the consult is listed, but its room is for those
  // who take part.
  json lead = json::parse(server_->get(cardio, "/api/timeline?patientId=TA-LAB-1").body);
  bool listed = false, case_listed = false;
  for (const json& e : lead["entries"]) {
    if (e["kind"] == "consult") {
      listed = true;
      EXPECT_EQ(e["consult"]["open"], false);
    }
    // The lead's chest-pain centre serves township A: the open case is on its board.
    if (e["kind"] == "emergency") {
      case_listed = true;
      EXPECT_EQ(e["emergency"]["open"], true);
    }
  }
  EXPECT_TRUE(listed) << lead.dump();
  EXPECT_TRUE(case_listed) << lead.dump();
  // A closed case stays in the record, no longer on a board: it opens for review.
  auto closed =
      server_->request(doc, "POST", "/api/emergencies/" + std::to_string(case_id) + "/close", "");
  ASSERT_EQ(closed.status, 200) << closed.body;
  timeline = json::parse(server_->get(doc, "/api/timeline?patientId=TA-LAB-1").body);
  bool closed_listed = false;
  for (const json& e : timeline["entries"]) {
    if (e["kind"] != "emergency") continue;
    closed_listed = true;
    EXPECT_EQ(e["emergency"]["status"], "closed");
    EXPECT_FALSE(e["emergency"]["closedAt"].get<std::string>().empty());
    EXPECT_EQ(e["emergency"]["open"], true);
  }
  EXPECT_TRUE(closed_listed) << timeline.dump();
  auto review = server_->get(doc, "/api/emergencies/" + std::to_string(case_id));
  ASSERT_EQ(review.status, 200) << review.body;
  EXPECT_EQ(json::parse(review.body)["status"], "closed");
  const json other = json::parse(server_->get(tb, "/api/timeline?patientId=TA-LAB-1").body);
  EXPECT_TRUE(other["entries"].empty()) << other.dump();
  EXPECT_EQ(timeline["bounded"], json::array()) << timeline["bounded"];

  // A record with more referrals than it lists says so: the newest 100 are listed, and the
  // clinician is told that older ones exist.
  for (int i = 0; i < 100; ++i) {
    auto r = server_->request(doc, "POST", "/api/referrals",
                              json{{"direction", "up"},
                                   {"toInstitution", "lead"},
                                   {"urgency", "routine"},
                                   {"patientId", "TA-LAB-1"},
                                   {"reason", "follow-up " + std::to_string(i)}}
                                  .dump());
    ASSERT_EQ(r.status, 201) << r.body;
  }
  timeline = json::parse(server_->get(doc, "/api/timeline?patientId=TA-LAB-1").body);
  EXPECT_EQ(timeline["bounded"], json::array({"referrals"})) << timeline["bounded"];
  std::size_t referrals = 0;
  bool first_listed = false;
  for (const json& e : timeline["entries"]) {
    if (e["kind"] != "referral") continue;
    ++referrals;
    first_listed = first_listed || e["referral"]["id"] == referral_id;
  }
  EXPECT_EQ(referrals, 100u);
  EXPECT_FALSE(first_listed) << "the oldest referral is the one left out";
}

}  // namespace
}  // namespace yilian
