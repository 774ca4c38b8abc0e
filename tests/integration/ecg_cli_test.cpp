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

}  // namespace
}  // namespace yilian
