// The consortium hub most integration tests start: the real `yilian serve` with the shared
// consortium configuration (tests/support/consortium.h), two CT studies (township A's and
// township B's) and an ECG of township A sent with storescu, and one user of each kind created
// through the admin API.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "consortium.h"
#include "dicom_client.h"
#include "postgres.h"
#include "server_process.h"
#include "synthetic.h"
#include "synthetic_ecg.h"
#include "test_util.h"
#include "yilian/ecg/dicom_waveform.h"

namespace yilian::testing {

inline const std::filesystem::path kPydicom = PYDICOM_TEST_FILES;

inline std::string study_uid_of(const std::filesystem::path& file) {
  std::string out;
  run_command("dcmdump +P StudyInstanceUID '" + file.string() + "'", &out);
  std::size_t a = out.find('['), b = out.find(']');
  return a == std::string::npos || b == std::string::npos ? "" : out.substr(a + 1, b - a - 1);
}

// Parameterized by the backend ("sqlite" or "postgres"): each suite instantiates both.
class ConsortiumTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::filesystem::path cfg = write_consortium_config(dir_.path());
    std::vector<std::string> args{"--config", cfg.string()};
    std::string why;
    ASSERT_TRUE(add_backend_args(GetParam(), args, &why)) << why;
    server_ = std::make_unique<ServerProcess>(dir_.path() / "data", args);
    ASSERT_TRUE(server_->start()) << server_->log();
    ASSERT_FALSE(server_->admin_token().empty()) << server_->log();

    CtSeriesSpec spec;
    spec.count = 2;
    spec.rows = spec.columns = 16;
    auto a = write_ct_series(dir_.path() / "a", spec);
    auto b = write_ct_series(dir_.path() / "b", spec);
    ASSERT_TRUE(a.ok() && b.ok());
    ct_a_ = *a;
    ASSERT_EQ(storescu(*server_, "TA_CT", a->files), 0);
    ASSERT_EQ(storescu(*server_, "TB_CT", b->files), 0);
    std::filesystem::path ecg = kPydicom / "waveform_ecg.dcm";
    ASSERT_EQ(storescu(*server_, "TA_ECG", {ecg}), 0);
    study_a_ = a->study_uid;
    study_b_ = b->study_uid;
    study_ecg_ = study_uid_of(ecg);
    ASSERT_FALSE(study_ecg_.empty());

    tokens_["ta-doctor"] = server_->add_user("ta-doctor", {"township_doctor"}, "ta");
    tokens_["tb-doctor"] = server_->add_user("tb-doctor", {"township_doctor"}, "tb");
    tokens_["radiologist"] = server_->add_user("radiologist", {"radiologist"}, "lead");
    tokens_["ecg-reader"] = server_->add_user("ecg-reader", {"ecg_reader"}, "lead");
    tokens_["admin"] = server_->admin_token();
    for (const auto& [name, token] : tokens_) {
      ASSERT_FALSE(token.empty()) << name;
    }
  }
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
  }

  std::set<std::string> listed(const std::string& user) {
    auto r = server_->get(tokens_[user], "/api/studies?limit=100");
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<std::string> out;
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded()) return out;
    for (const nlohmann::json& s : j["studies"])
      out.insert(s["studyInstanceUid"].get<std::string>());
    EXPECT_EQ(j["total"].get<std::size_t>(), out.size());
    return out;
  }
  int detail(const std::string& user, const std::string& uid) {
    return server_->get(tokens_[user], "/api/studies/" + uid).status;
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
  WrittenSeries ct_a_;
  std::string study_a_, study_b_, study_ecg_;
  std::map<std::string, std::string> tokens_;
};

// Instantiates `suite` (a ConsortiumTest) on both backends.
#define YILIAN_ON_BOTH_BACKENDS(suite)                                               \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values("sqlite", "postgres"), \
                           [](const auto& info) { return std::string(info.param); })

}  // namespace yilian::testing
