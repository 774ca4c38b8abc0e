// STOW-RS end to end: parts stored under the uploader's institution, each part answered.
#include "consortium_server.h"

#include <gtest/gtest.h>

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

class StowTest : public testing::ConsortiumTest {};

TEST_P(StowTest, stow_rs_stores_parts_under_the_uploaders_institution_and_reports_each) {
  testing::CtSeriesSpec spec;
  spec.count = 2;
  spec.rows = spec.columns = 16;
  auto upload = testing::write_ct_series(dir_.path() / "stow", spec);
  ASSERT_TRUE(upload.ok());
  const std::string boundary = "yilian-test-boundary";
  auto body_of = [&](const std::vector<std::pair<std::string, std::string>>& parts) {
    std::string body;
    for (const auto& [type, bytes] : parts) {
      body += "--" + boundary + "\r\nContent-Type: " + type + "\r\n\r\n" + bytes + "\r\n";
    }
    return body + "--" + boundary + "--\r\n";
  };
  auto post = [&](const std::string& token, const std::string& body, const std::string& ctype) {
    return testing::http_request(server_->http_port(), "POST", "/dicom-web/studies", body,
                                 {{"Authorization", "Bearer " + token}, {"Content-Type", ctype}});
  };
  const std::string ctype = "multipart/related; type=\"application/dicom\"; boundary=" + boundary;

  auto ok = post(tokens_["ta-doctor"],
                 body_of({{"application/dicom", slurp(upload->files[0])},
                          {"application/dicom", slurp(upload->files[1])},
                          {"application/dicom", slurp(kPydicom / "MR_small_RLE.dcm")}}),
                 ctype);
  ASSERT_EQ(ok.status, 200) << ok.body;
  json j = json::parse(ok.body);
  EXPECT_EQ(j["00081199"]["Value"].size(), 3u);
  EXPECT_FALSE(j.contains("00081198"));
  json detail =
      json::parse(server_->get(tokens_["ta-doctor"], "/api/studies/" + upload->study_uid).body);
  EXPECT_EQ(detail["institution"], "ta");
  EXPECT_EQ(detail["numberOfInstances"], 2);

  // Partly bad: a text part and a truncated object fail, the resent object succeeds.
  std::string truncated = slurp(upload->files[0]).substr(0, 400);
  auto mixed = post(tokens_["ta-doctor"],
                    body_of({{"application/dicom", slurp(upload->files[0])},
                             {"text/plain", "not an image"},
                             {"application/dicom", truncated}}),
                    ctype);
  ASSERT_EQ(mixed.status, 202) << mixed.body;
  json m = json::parse(mixed.body);
  EXPECT_EQ(m["00081199"]["Value"].size(), 1u);
  ASSERT_EQ(m["00081198"]["Value"].size(), 2u);
  EXPECT_EQ(m["00081198"]["Value"][1]["00081197"]["Value"][0], 0xC000);

  // Township B may not add to township A's study, not even an identical copy: nothing is
  // stored -> 409 with "not authorized" for the instance.
  auto refused =
      post(tokens_["tb-doctor"], body_of({{"application/dicom", slurp(upload->files[1])}}), ctype);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_EQ(json::parse(refused.body)["00081198"]["Value"][0]["00081197"]["Value"][0], 0x0124);

  // Posted to a named study: an instance of another study fails (0xA900), the rest is kept.
  testing::CtSeriesSpec more;
  more.count = 1;
  more.rows = more.columns = 16;
  more.study_uid = upload->study_uid;
  auto same = testing::write_ct_series(dir_.path() / "stow-same", more);
  ASSERT_TRUE(same.ok());
  auto to_study = testing::http_request(
      server_->http_port(), "POST", "/dicom-web/studies/" + upload->study_uid,
      body_of({{"application/dicom", slurp(same->files[0])},
               {"application/dicom", slurp(kPydicom / "CT_small.dcm")}}),
      {{"Authorization", "Bearer " + tokens_["ta-doctor"]}, {"Content-Type", ctype}});
  ASSERT_EQ(to_study.status, 202) << to_study.body;
  json t = json::parse(to_study.body);
  EXPECT_EQ(t["00081199"]["Value"].size(), 1u);
  EXPECT_EQ(t["00081198"]["Value"][0]["00081197"]["Value"][0], 0xA900);

  EXPECT_EQ(post(tokens_["admin"], body_of({}), ctype).status, 403);
  EXPECT_EQ(post(tokens_["ta-doctor"], "{}", "application/json").status, 415);
  EXPECT_EQ(testing::http_request(server_->http_port(), "POST", "/dicom-web/studies", "x").status,
            401);
}

YILIAN_ON_BOTH_BACKENDS(StowTest);

}  // namespace
}  // namespace yilian
