// The ECG service end to end: DICOM ECGs sent by a clinic, HL7 aECG and WFDB uploads, the
// measurements and twelve-lead page, and a suspected STEMI becoming a STAT task at once.
#include "consortium_server.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "dicom_client.h"
#include "server_process.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"
#include "yilian/ecg/dicom_waveform.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::kPydicom;
using testing::ServerProcess;
using testing::slurp;
using testing::storescu;
using testing::study_uid_of;

class EcgServiceTest : public testing::ConsortiumTest {};

TEST_P(EcgServiceTest, ecg_readers_get_measurements_and_the_twelve_lead_page) {
  const std::string ecg = "/api/ecg/1.3.6.1.4.1.20029.40.20130125105919.5407.1.1";
  auto r = server_->get(tokens_["ecg-reader"], ecg);
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["leadNames"].size(), 12u);
  EXPECT_NEAR(j["qrs_ms"].get<double>(), 75, 10);
  EXPECT_NEAR(j["rr_ms"].get<double>(), 982, 10);
  EXPECT_TRUE(j["flags"].is_array());
  auto png = server_->get(tokens_["ecg-reader"], ecg + "/render?layout=12x1");
  ASSERT_EQ(png.status, 200) << png.body;
  EXPECT_EQ(png.body.substr(1, 3), "PNG");
  EXPECT_EQ(server_->get(tokens_["ecg-reader"], ecg + "/render?layout=5x5").status, 400);
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], ecg).status, 200);    // their own clinic's
  EXPECT_EQ(server_->get(tokens_["tb-doctor"], ecg).status, 404);    // another clinic's
  EXPECT_EQ(server_->get(tokens_["radiologist"], ecg).status, 404);  // imaging only
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/ecg/1.2.3").status, 404);
  // A CT is not an ECG.
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/ecg/" + ct_a_.sop_instance_uids[0]).status,
            400);
}

// The chest-pain pathway's first link: a township ECG with ST elevation becomes a STAT task
// in the ECG readers' worklist within moments, without waiting for the study's stable time.
TEST_P(EcgServiceTest, a_suspected_stemi_ecg_becomes_a_stat_task_at_once) {
  testing::Synthetic s;
  for (const char* lead : {"II", "III", "aVF"}) {
    testing::LeadShape shape;
    shape.st = 0.25;
    s.leads[lead] = shape;
  }
  ecg::Record rec = testing::make_ecg(s);
  rec.patient = {58, 'M'};
  const std::string study = testing::new_uid(), sop = testing::new_uid();
  ecg::DicomEcgIdentity id{"TA-ECG-1", "Chest^Pain", study,    testing::new_uid(),
                           sop,        "20261122",   "083000", "Township A"};
  ASSERT_TRUE(ecg::write_dicom_waveform(rec, id, dir_.path() / "stemi.dcm").ok());
  ASSERT_EQ(storescu(*server_, "TA_ECG", {dir_.path() / "stemi.dcm"}), 0);

  json task;
  for (int attempt = 0; attempt < 100 && task.is_null(); ++attempt) {
    auto r = server_->get(tokens_["ecg-reader"], "/api/worklist");
    ASSERT_EQ(r.status, 200) << r.body;
    const json list = json::parse(r.body);
    for (const json& t : list["tasks"]) {
      if (t["studyInstanceUid"] == study) task = t;
    }
    if (task.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task.is_null()) << "no task for the STEMI ECG\n" << server_->log();
  EXPECT_EQ(task["priority"], "stat");
  EXPECT_NE(task["priorityReason"].get<std::string>().find("STEMI"), std::string::npos)
      << task.dump();
  auto analysis = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200);
  bool flagged = false;
  const json result = json::parse(analysis.body);
  std::vector<std::string> proposed;
  for (const json& f : result["flags"]) {
    flagged |= f["code"] == "suspected_stemi";
    proposed.push_back(f["code"]);
    EXPECT_FALSE(f["textZh"].get<std::string>().empty()) << f.dump();
  }
  EXPECT_TRUE(flagged) << analysis.body;

  // The statement vocabulary the report editor offers.
  auto catalogue = server_->get(tokens_["ecg-reader"], "/api/ecg/statements");
  ASSERT_EQ(catalogue.status, 200) << catalogue.body;
  std::set<std::string> known;
  const json vocabulary = json::parse(catalogue.body);
  for (const json& x : vocabulary["statements"]) {
    known.insert(x["code"].get<std::string>());
    EXPECT_FALSE(x["textZh"].get<std::string>().empty()) << x.dump();
  }
  for (const std::string& code : proposed) EXPECT_TRUE(known.count(code)) << code;
  EXPECT_TRUE(known.count("st_t_abnormality"));

  // The page in Chinese and in English (cached apart).
  auto zh = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop + "/render");
  auto en = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop + "/render?lang=en");
  ASSERT_EQ(zh.status, 200);
  ASSERT_EQ(en.status, 200);
  EXPECT_NE(zh.body, en.body);

  // The reader signs with the STEMI statement and leaves out the others; the dashboard counts
  // what was proposed and kept.
  const std::string base = "/api/tasks/" + std::to_string(task["id"].get<std::int64_t>());
  ASSERT_EQ(server_->request(tokens_["ecg-reader"], "POST", base + "/claim", "").status, 200);
  json bad = {{"kind", "final"},
              {"findings", "HR 60"},
              {"impression", "STEMI"},
              {"statements", {{"proposed", {"Not A Code"}}, {"signed", json::array()}}}};
  EXPECT_EQ(server_->request(tokens_["ecg-reader"], "POST", base + "/reports", bad.dump()).status,
            400);
  // A well-formed code that is not in the catalogue is refused too, and nothing is signed.
  json unknown = {
      {"kind", "final"},
      {"findings", "HR 60"},
      {"impression", "STEMI"},
      {"statements", {{"proposed", proposed}, {"signed", {"suspected_stemi", "made_up"}}}}};
  auto refused = server_->request(tokens_["ecg-reader"], "POST", base + "/reports", unknown.dump());
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(json::parse(refused.body)["error"]["message"].get<std::string>().find("made_up"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(json::parse(server_->get(tokens_["ecg-reader"], base).body)["status"], "claimed");
  json report = {{"kind", "final"},
                 {"findings", "HR 60/min"},
                 {"impression", "急性下壁ST段抬高型心肌梗死"},
                 {"critical", true},
                 {"statements",
                  {{"proposed", proposed}, {"signed", {"suspected_stemi", "st_t_abnormality"}}}}};
  auto signed_report =
      server_->request(tokens_["ecg-reader"], "POST", base + "/reports", report.dump());
  ASSERT_EQ(signed_report.status, 201) << signed_report.body;
  json stats = json::parse(server_->get(tokens_["ecg-reader"], "/api/stats/ecg-statements").body);
  std::map<std::string, json> by_code;
  for (const json& x : stats["statements"]) by_code[x["code"]] = x;
  ASSERT_TRUE(by_code.count("suspected_stemi")) << stats.dump();
  EXPECT_EQ(by_code["suspected_stemi"]["proposed"], 1);
  EXPECT_EQ(by_code["suspected_stemi"]["kept"], 1);
  EXPECT_EQ(by_code["suspected_stemi"]["acceptedPercent"], 100.0);
  // A statement the reader added from the catalogue.
  ASSERT_TRUE(by_code.count("st_t_abnormality")) << stats.dump();
  EXPECT_EQ(by_code["st_t_abnormality"]["proposed"], 0);
  EXPECT_EQ(by_code["st_t_abnormality"]["added"], 1);
  for (const std::string& code : proposed) {
    if (code == "suspected_stemi") continue;
    EXPECT_EQ(by_code[code]["kept"], 0) << code;
  }
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/stats/ecg-statements").status, 403);

  // The signed page goes to the township doctor: the same tracing and header, below them what
  // the reader signed, who and when (not the unsigned page the cache holds); an addendum makes
  // a new page.
  auto signed_page = server_->get(tokens_["ta-doctor"], "/api/ecg/" + sop + "/render");
  ASSERT_EQ(signed_page.status, 200) << signed_page.body;
  auto decode = [](const std::string& png) {
    return cv::imdecode(
        cv::Mat(1, static_cast<int>(png.size()), CV_8U, const_cast<char*>(png.data())),
        cv::IMREAD_GRAYSCALE);
  };
  const cv::Mat before = decode(zh.body), after = decode(signed_page.body);
  ASSERT_FALSE(before.empty());
  // The page grows with its lines of text; the tracing above them is the same.
  auto differ = [](const cv::Mat& a, const cv::Mat& b) {
    return a.size() != b.size() || cv::countNonZero(a != b) > 0;
  };
  ASSERT_EQ(before.cols, after.cols);
  const cv::Rect tracing(0, 0, before.cols, std::min(before.rows, after.rows) / 2);
  EXPECT_EQ(cv::countNonZero(before(tracing) != after(tracing)), 0);
  EXPECT_TRUE(differ(before, after));
  json addendum = {{"kind", "addendum"},
                   {"findings", "复查：ST段较前回落"},
                   {"impression", "补充"},
                   {"critical", false}};
  auto added = server_->request(tokens_["ecg-reader"], "POST", base + "/reports", addendum.dump());
  ASSERT_EQ(added.status, 201) << added.body;
  auto amended = server_->get(tokens_["ta-doctor"], "/api/ecg/" + sop + "/render");
  ASSERT_EQ(amended.status, 200);
  // The same page as a PDF that prints at true size.
  auto pdf = server_->get(tokens_["ta-doctor"], "/api/ecg/" + sop + "/render?format=pdf");
  ASSERT_EQ(pdf.status, 200) << pdf.body.substr(0, 200);
  EXPECT_EQ(pdf.body.rfind("%PDF-1.4", 0), 0u);
  EXPECT_TRUE(pdf.body.ends_with("%%EOF\n"));
  EXPECT_EQ(server_->get(tokens_["ta-doctor"], "/api/ecg/" + sop + "/render?format=tiff").status,
            400);
  // Kept with the screenshots for a look at the page.
  fs::create_directories(YILIAN_SCREENSHOTS);
  std::ofstream(fs::path(YILIAN_SCREENSHOTS) / "ecg-signed-page.png", std::ios::binary)
      << amended.body;
  EXPECT_TRUE(differ(decode(amended.body), after));
}

TEST_P(EcgServiceTest, an_hl7_aecg_upload_is_stored_as_a_dicom_ecg_and_analysed) {
  std::ifstream in(fs::path(YILIAN_SHARED_DATA) / "aecg" / "hl7-aecg-example.xml");
  const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(xml.empty());
  auto post = [&](const std::string& user, const std::string& body, const std::string& type) {
    return testing::http_request(
        server_->http_port(), "POST",
        "/api/ecg?patientId=TA-AECG-1&patientName=Wang%5EFang&sex=F&age=67", body,
        {{"Authorization", "Bearer " + tokens_[user]}, {"Content-Type", type}});
  };
  auto r = post("ta-doctor", xml, "application/xml");
  ASSERT_EQ(r.status, 201) << r.body;
  json j = json::parse(r.body);
  const std::string sop = j["sopInstanceUid"];
  auto study = server_->get(tokens_["ta-doctor"],
                            "/api/studies/" + j["studyInstanceUid"].get<std::string>());
  ASSERT_EQ(study.status, 200) << study.body;
  EXPECT_EQ(json::parse(study.body)["institution"], "ta");
  auto analysis = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  EXPECT_EQ(json::parse(analysis.body)["leadNames"].size(), 12u);

  EXPECT_EQ(post("ta-doctor", "<AnnotatedECG", "application/xml").status, 400);
  EXPECT_EQ(post("ta-doctor", "hello", "text/plain").status, 415);
  EXPECT_EQ(post("admin", xml, "application/xml").status, 403);
}

// A township clinic's ECG cart that exports WFDB uploads the header and its signal files as a
// form; the record is filed as a DICOM ECG, analysed, and queued for the ECG readers at once.
TEST_P(EcgServiceTest, a_wfdb_record_uploaded_as_a_form_is_stored_analysed_and_queued) {
  const fs::path ptb = fs::path(YILIAN_SHARED_DATA) / "ptb";
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string hea = slurp(ptb / "s0010_re.hea"), dat = slurp(ptb / "s0010_re.dat"),
                    xyz = slurp(ptb / "s0010_re.xyz");
  ASSERT_FALSE(hea.empty() || dat.empty() || xyz.empty());
  const std::string boundary = "wfdb-form-boundary";
  auto form = [&](const std::vector<std::pair<std::string, std::string>>& files) {
    std::string body =
        "--" + boundary + "\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nchest pain\r\n";
    for (const auto& [name, bytes] : files) {
      body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
              name + "\"\r\nContent-Type: application/octet-stream\r\n\r\n" + bytes + "\r\n";
    }
    return body + "--" + boundary + "--\r\n";
  };
  auto post = [&](const std::string& body) {
    return testing::http_request(server_->http_port(), "POST",
                                 "/api/ecg?patientId=TA-PTB-1&patientName=Li%5EMing", body,
                                 {{"Authorization", "Bearer " + tokens_["ta-doctor"]},
                                  {"Content-Type", "multipart/form-data; boundary=" + boundary}});
  };
  auto r = post(form({{"s0010_re.hea", hea}, {"s0010_re.dat", dat}, {"s0010_re.xyz", xyz}}));
  ASSERT_EQ(r.status, 201) << r.body;
  const json stored = json::parse(r.body);
  const std::string sop = stored["sopInstanceUid"], study = stored["studyInstanceUid"];
  auto analysis = server_->get(tokens_["ecg-reader"], "/api/ecg/" + sop);
  ASSERT_EQ(analysis.status, 200) << analysis.body;
  const json a = json::parse(analysis.body);
  EXPECT_EQ(a["leadNames"].size(), 15u);  // 12 standard leads and the Frank leads
  EXPECT_EQ(a["leadNames"][6], "V1");
  EXPECT_EQ(a["samplingHz"], 1000);
  EXPECT_NEAR(a["seconds"].get<double>(), 38.4, 0.01);
  EXPECT_EQ(a["patient"]["sex"], "F");  // from the header's comments
  EXPECT_EQ(a["patient"]["age"], 81);
  EXPECT_GT(a["beats"].get<int>(), 30);
  // Queued for the ECG readers without waiting for the study's stable time (10 s here).
  json task;
  for (int attempt = 0; attempt < 100 && task.is_null(); ++attempt) {
    auto list = server_->get(tokens_["ecg-reader"], "/api/worklist");
    ASSERT_EQ(list.status, 200) << list.body;
    const json tasks = json::parse(list.body)["tasks"];
    for (const json& t : tasks) {
      if (t["studyInstanceUid"] == study) task = t;
    }
    if (task.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(task.is_null()) << "the uploaded ECG was not queued\n" << server_->log();
  EXPECT_EQ(task["kind"], "ecg");
  EXPECT_EQ(task["patient"]["id"], "TA-PTB-1");

  // Incomplete or inconsistent uploads are refused with the reason, and nothing is stored.
  auto count = [&] {
    return json::parse(server_->get(tokens_["ta-doctor"], "/api/studies").body)["total"];
  };
  const json before = count();
  auto missing = post(form({{"s0010_re.hea", hea}, {"s0010_re.dat", dat}}));
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("s0010_re.xyz"), std::string::npos) << missing.body;
  auto truncated = post(
      form({{"s0010_re.hea", hea}, {"s0010_re.dat", dat.substr(0, 1000)}, {"s0010_re.xyz", xyz}}));
  EXPECT_EQ(truncated.status, 400);
  EXPECT_NE(truncated.body.find("truncated"), std::string::npos) << truncated.body;
  std::string altered = dat;
  altered[5000] = static_cast<char>(altered[5000] ^ 0x10);
  auto corrupt =
      post(form({{"s0010_re.hea", hea}, {"s0010_re.dat", altered}, {"s0010_re.xyz", xyz}}));
  EXPECT_EQ(corrupt.status, 400);
  EXPECT_NE(corrupt.body.find("checksum"), std::string::npos) << corrupt.body;
  auto no_header = post(form({{"s0010_re.dat", dat}}));
  EXPECT_EQ(no_header.status, 400);
  EXPECT_NE(no_header.body.find(".hea"), std::string::npos) << no_header.body;
  EXPECT_EQ(count(), before);
}

YILIAN_ON_BOTH_BACKENDS(EcgServiceTest);

}  // namespace
}  // namespace yilian
