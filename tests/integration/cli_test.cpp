// The command line end to end: version and help, and the administration commands that work
// on a data directory while the hub is stopped (users, institutions, audit verification).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "server_process.h"
#include "test_util.h"

namespace yilian {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServerProcess;

TEST(Cli, version_and_help) {
  std::string out;
  EXPECT_EQ(testing::run_command(testing::yilian_binary() + " version", &out), 0);
  EXPECT_EQ(out.rfind("yilian ", 0), 0u) << out;
  EXPECT_EQ(testing::run_command(testing::yilian_binary() + " --help", &out), 0);
  EXPECT_NE(out.find("serve"), std::string::npos);
  EXPECT_NE(out.find("import"), std::string::npos);
}

TEST(Cli, users_and_institutions_are_managed_from_the_command_line) {
  testing::TempDir dir;
  std::string data = "'" + (dir.path() / "data").string() + "'";
  std::string bin = testing::yilian_binary();
  std::string out;
  EXPECT_EQ(testing::run_command(bin + " institution add --data " + data +
                                     " --level township --name 'Township C' --ae TC_DR tc",
                                 &out),
            0)
      << out;
  EXPECT_EQ(
      testing::run_command("printf 'a long password\\n' | " + bin + " user add --data " + data +
                               " --role radiologist --role qc_reviewer "
                               "--institution tc --name 'Dr Wang' wang",
                           &out),
      0)
      << out;
  EXPECT_NE(testing::run_command("printf 'short\\n' | " + bin + " user add --data " + data +
                                     " --role radiologist --institution tc weak",
                                 &out),
            0);
  EXPECT_NE(out.find("at least 10 characters"), std::string::npos) << out;
  EXPECT_NE(testing::run_command("printf 'a long password\\n' | " + bin + " user add --data " +
                                     data + " --role janitor --institution tc x",
                                 &out),
            0);
  EXPECT_NE(out.find("unknown role janitor"), std::string::npos) << out;
  EXPECT_EQ(testing::run_command(bin + " user list --data " + data, &out), 0);
  EXPECT_NE(out.find("radiologist,qc_reviewer"), std::string::npos) << out;
  EXPECT_NE(out.find("active"), std::string::npos) << out;
  EXPECT_EQ(testing::run_command(bin + " institution list --data " + data, &out), 0);
  EXPECT_NE(out.find("TC_DR"), std::string::npos) << out;

  // The new user can log in to the hub; after `passwd` only the new password works.
  {
    ServerProcess server(dir.path() / "data");
    ASSERT_TRUE(server.start()) << server.log();
    EXPECT_FALSE(server.login("wang", "a long password").empty());
    EXPECT_EQ(server.stop(), 0);
  }
  EXPECT_EQ(testing::run_command("printf 'a new long password\\n' | " + bin +
                                     " user passwd --data " + data + " wang",
                                 &out),
            0)
      << out;
  EXPECT_EQ(testing::run_command(bin + " user disable --data " + data + " wang", &out), 0) << out;
  EXPECT_EQ(testing::run_command(bin + " user list --data " + data, &out), 0);
  EXPECT_NE(out.find("disabled"), std::string::npos) << out;

  // Every change above is in the audit trail, and the trail verifies; a modified record
  // breaks it.
  EXPECT_EQ(testing::run_command(bin + " audit verify --data " + data, &out), 0) << out;
  std::string db = "'" + (dir.path() / "data" / "audit.sqlite").string() + "'";
  EXPECT_EQ(testing::run_command("sqlite3 " + db +
                                     " \"DROP TRIGGER audit_no_update; UPDATE audit SET outcome = "
                                     "'ok' WHERE action = 'user.create' AND outcome = 'failed'\"",
                                 &out),
            0)
      << out;
  EXPECT_EQ(testing::run_command(bin + " audit verify --data " + data, &out), 3) << out;
  EXPECT_NE(out.find("BROKEN"), std::string::npos) << out;
}

}  // namespace
}  // namespace yilian
