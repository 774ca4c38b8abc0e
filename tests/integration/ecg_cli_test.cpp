// `yilian ecg eval` on the MIT-BIH records: the EC57 report a user reads, and the detector's
// accuracy targets (gross sensitivity and positive predictivity of at least 99.7 %).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server_process.h"
#include "test_util.h"
#include "yilian/ecg/wfdb.h"

namespace yilian {
namespace {

const std::filesystem::path kData = YILIAN_SHARED_DATA;

TEST(EcgCli, eval_reports_each_record_and_the_gross_ec57_figures) {
  std::string out;
  ASSERT_EQ(testing::run_command(testing::yilian_binary() + " ecg eval --db '" +
                                     (kData / "mitdb").string() + "' 2>&1",
                                 &out),
            0)
      << out;
  std::istringstream lines(out);
  std::string line, last;
  int records = 0;
  while (std::getline(lines, line)) {
    if (line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0]))) ++records;
    if (!line.empty()) last = line;
  }
  EXPECT_EQ(records, 26) << out;
  double se = 0, pp = 0;
  long long tp = 0, fn = 0, fp = 0;
  ASSERT_EQ(std::sscanf(last.c_str(), "gross: Se=%lf +P=%lf TP=%lld FN=%lld FP=%lld", &se, &pp, &tp,
                        &fn, &fp),
            5)
      << last;
  EXPECT_GE(se, 99.7) << last;
  EXPECT_GE(pp, 99.7) << last;
  EXPECT_GT(tp, 49000);

  // A folder without records is a clear error.
  testing::TempDir empty;
  EXPECT_NE(
      testing::run_command(
          testing::yilian_binary() + " ecg eval --db '" + empty.path().string() + "' 2>&1", &out),
      0);
  EXPECT_NE(out.find("no WFDB records"), std::string::npos) << out;
}

TEST(EcgCli, analyze_prints_measurements_and_render_draws_the_twelve_leads) {
  const std::string dcm = std::string(PYDICOM_TEST_FILES) + "/waveform_ecg.dcm";
  std::string out;
  ASSERT_EQ(testing::run_command(testing::yilian_binary() + " ecg analyze '" + dcm + "'", &out), 0)
      << out;
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["leads"].size(), 12u);
  EXPECT_NEAR(j["qrs_ms"].get<double>(), 75, 10);
  EXPECT_TRUE(j["flags"].is_array());

  testing::TempDir dir;
  const std::string png = (dir.path() / "ecg.png").string();
  ASSERT_EQ(testing::run_command(
                testing::yilian_binary() + " ecg render '" + dcm + "' -o '" + png + "'", &out),
            0)
      << out;
  std::ifstream in(png, std::ios::binary);
  std::string head(8, '\0');
  in.read(head.data(), 8);
  EXPECT_EQ(head.substr(1, 3), "PNG");
  EXPECT_NE(
      testing::run_command(testing::yilian_binary() + " ecg analyze /nonexistent.hea 2>&1", &out),
      0);
}

// `yilian ecg eval --classes` on a folder of three development records (links to them): every
// record the built-in model learnt from is scored by a model trained without it, the last
// line has the one format, and a paced record is left out. `--af` finds 203's fibrillation.
TEST(EcgCli, class_and_af_evaluations_score_records_the_model_did_not_learn) {
  testing::TempDir dir;
  for (const char* r : {"119", "203", "217"}) {
    for (const char* ext : {".hea", ".dat", ".atr"}) {
      std::filesystem::create_symlink(kData / "mitdb" / (std::string(r) + ext),
                                      dir.path() / (std::string(r) + ext));
    }
  }
  std::string out;
  ASSERT_EQ(testing::run_command(testing::yilian_binary() + " ecg eval --classes --db '" +
                                     dir.path().string() + "' 2>&1",
                                 &out),
            0)
      << out;
  EXPECT_NE(out.find("119      cv"), std::string::npos) << out;
  EXPECT_NE(out.find("203      cv"), std::string::npos) << out;
  EXPECT_NE(out.find("217      paced: left out"), std::string::npos) << out;
  std::string last = out.substr(out.rfind("classes:"));
  double vse = 0, vpp = 0, sse = 0, spp = 0;
  ASSERT_EQ(std::sscanf(last.c_str(), "classes: VEB Se=%lf +P=%lf SVEB Se=%lf +P=%lf", &vse, &vpp,
                        &sse, &spp),
            4)
      << last;
  // 119 (bigeminy) and 203 (multiform PVCs) each scored by a model trained on the other alone:
  // a weak model (it finds a fraction of the ventricular beats — what a model that had seen
  // them would not show), but what it calls ventricular mostly is.
  EXPECT_GT(vse, 5) << out;
  EXPECT_LT(vse, 90) << out;
  EXPECT_GT(vpp, 80) << out;

  ASSERT_EQ(testing::run_command(
                testing::yilian_binary() + " ecg eval --af --db '" + dir.path().string() + "' 2>&1",
                &out),
            0)
      << out;
  double ese = 0, epp = 0, dse = 0, dpp = 0;
  const std::string af = out.substr(out.rfind("af:"));
  ASSERT_EQ(std::sscanf(af.c_str(), "af: episode Se=%lf +P=%lf duration Se=%lf +P=%lf", &ese, &epp,
                        &dse, &dpp),
            4)
      << out;
  EXPECT_GT(dse, 50) << out;  // 203's fibrillation is found for most of its duration
  EXPECT_GT(dpp, 50) << out;
}

}  // namespace
}  // namespace yilian
