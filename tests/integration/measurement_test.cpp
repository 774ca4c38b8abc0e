// Readers' measurements kept with the study, on the real hub and both backends: the lead's
// radiologist measures township A's CT; the township doctor sees the measurement with its
// author; township B and the admin do not reach the study; bad measurements are refused with
// the reason and store nothing; only the author removes one; every call is audited.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "consortium_server.h"

namespace yilian {
namespace {

using nlohmann::json;

class MeasurementTest : public testing::ConsortiumTest {
 protected:
  std::string path() const { return "/api/studies/" + study_a_ + "/measurements"; }
  testing::HttpResult post(const std::string& user, const json& body) {
    return server_->request(tokens_[user], "POST", path(), body.dump());
  }
  json listed(const std::string& user) {
    auto r = server_->get(tokens_[user], path());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
};

TEST_P(MeasurementTest, a_measurement_is_kept_with_the_study_for_everyone_who_reads_it) {
  const json length = {{"instance", ct_a_.sop_instance_uids[1]},
                       {"frame", 1},
                       {"kind", "length"},
                       {"points", {{{"x", 2.5}, {"y", 3}}, {{"x", 12.5}, {"y", 3}}}},
                       {"value", 7.5},
                       {"unit", "mm"}};
  auto made = post("radiologist", length);
  ASSERT_EQ(made.status, 201) << made.body;
  const json m = json::parse(made.body);
  EXPECT_EQ(m["by"], "radiologist");
  EXPECT_EQ(m["institution"], "lead");
  EXPECT_EQ(m["mine"], true);
  EXPECT_EQ(m["points"][1]["x"], 12.5);
  const json angle = {
      {"instance", ct_a_.sop_instance_uids[0]},
      {"kind", "angle"},
      {"points", {{{"x", 0}, {"y", 0}}, {{"x", 5}, {"y", 5}}, {{"x", 10}, {"y", 0}}}},
      {"value", 90},
      {"unit", "deg"}};
  auto own = post("ta-doctor", angle);
  ASSERT_EQ(own.status, 201) << own.body;

  // The township doctor sees both, oldest first, each with its author; only theirs is "mine".
  json seen = listed("ta-doctor");
  ASSERT_EQ(seen["measurements"].size(), 2u) << seen.dump();
  EXPECT_EQ(seen["measurements"][0]["id"], m["id"]);
  EXPECT_EQ(seen["measurements"][0]["value"], 7.5);
  EXPECT_EQ(seen["measurements"][0]["unit"], "mm");
  EXPECT_EQ(seen["measurements"][0]["instance"], ct_a_.sop_instance_uids[1]);
  EXPECT_EQ(seen["measurements"][0]["mine"], false);
  EXPECT_EQ(seen["measurements"][1]["kind"], "angle");
  EXPECT_EQ(seen["measurements"][1]["frame"], 1);
  EXPECT_EQ(seen["measurements"][1]["mine"], true);
  EXPECT_EQ(seen["measurements"][1]["by"], "ta-doctor");

  // Those who may not read the study get the 404 a missing study gets, and change nothing.
  for (const char* user : {"tb-doctor", "admin"}) {
    EXPECT_EQ(server_->get(tokens_[user], path()).status, 404) << user;
    EXPECT_EQ(server_
                  ->request(tokens_[user], "DELETE",
                            path() + "/" + std::to_string(m["id"].get<std::int64_t>()))
                  .status,
              404)
        << user;
  }
  EXPECT_EQ(post("tb-doctor", length).status, 404);
  EXPECT_EQ(post("admin", length).status, 403);

  // Bad measurements: the reason, nothing stored.
  auto with = [&](const char* key, const json& value) {
    json b = length;
    b[key] = value;
    return b;
  };
  // An instance of township B's study is not one of this study's.
  json b_instances = json::parse(
      server_->get(tokens_["tb-doctor"], "/dicom-web/studies/" + study_b_ + "/instances").body,
      nullptr, false);
  ASSERT_TRUE(b_instances.is_array() && !b_instances.empty()) << b_instances.dump();
  const std::string b_instance = b_instances[0]["00080018"]["Value"][0];
  json no_value = length;
  no_value.erase("value");
  for (const json& bad :
       {with("kind", "area"), with("unit", "deg"), with("value", -1), with("value", "7.5"),
        with("points", json::array({{{"x", 1}, {"y", 1}}})),
        with("points", json::array({{{"x", 1}, {"y", 1}}, {{"x", 70000}, {"y", 1}}})),
        with("points", json::array({{{"x", 1}}, {{"x", 2}, {"y", 1}}})), with("frame", 2),
        with("frame", 0), with("instance", b_instance), with("instance", ""), no_value}) {
    auto r = post("radiologist", bad);
    EXPECT_EQ(r.status, 400) << bad.dump() << " " << r.body;
    EXPECT_TRUE(json::parse(r.body, nullptr, false).contains("error")) << r.body;
  }
  EXPECT_EQ(server_->request(tokens_["radiologist"], "POST", path(), "{not json").status, 400);
  EXPECT_EQ(listed("radiologist")["measurements"].size(), 2u);

  // Only the author removes a measurement.
  const std::string mine = path() + "/" + std::to_string(m["id"].get<std::int64_t>());
  EXPECT_EQ(server_->request(tokens_["ta-doctor"], "DELETE", mine).status, 403);
  EXPECT_EQ(server_->request(tokens_["radiologist"], "DELETE", mine).status, 200);
  EXPECT_EQ(server_->request(tokens_["radiologist"], "DELETE", mine).status, 404);
  EXPECT_EQ(server_->request(tokens_["radiologist"], "DELETE", path() + "/abc").status, 400);
  seen = listed("radiologist");
  ASSERT_EQ(seen["measurements"].size(), 1u);
  EXPECT_EQ(seen["measurements"][0]["by"], "ta-doctor");

  // Audited: made, listed, refused, removed.
  json audit =
      json::parse(server_->get(tokens_["admin"], "/api/audit?action=measurement.&limit=200").body);
  std::set<std::string> outcomes;
  for (const json& r : audit["records"]) {
    outcomes.insert(r["action"].get<std::string>() + ":" + r["outcome"].get<std::string>());
  }
  for (const char* expected :
       {"measurement.create:ok", "measurement.create:refused", "measurement.create:denied",
        "measurement.list:ok", "measurement.list:denied", "measurement.remove:ok",
        "measurement.remove:refused"}) {
    EXPECT_TRUE(outcomes.count(expected)) << expected << " in " << audit.dump();
  }
}

YILIAN_ON_BOTH_BACKENDS(MeasurementTest);

}  // namespace
}  // namespace yilian
