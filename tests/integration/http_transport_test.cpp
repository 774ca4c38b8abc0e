// The HTTP transport end to end: CORS for a configured viewer origin, and TLS.
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
using testing::storescu;

TEST(Cors, a_configured_viewer_origin_gets_preflights_and_headers) {
  testing::TempDir dir;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << "[http]\ncors_origins = [\"https://viewer.example.org\"]\n";
  ServerProcess server(dir.path() / "data", {"--config", cfg.string()});
  ASSERT_TRUE(server.start()) << server.log();
  std::string url = "http://127.0.0.1:" + std::to_string(server.http_port());
  std::string out;
  auto lower = [](std::string v) {
    for (char& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return v;
  };
  ASSERT_EQ(testing::run_command("curl -s -i --max-time 5 -X OPTIONS -H 'Origin: "
                                 "https://viewer.example.org' -H 'Access-Control-Request-Method: "
                                 "GET' " +
                                     url + "/dicom-web/studies",
                                 &out),
            0);
  EXPECT_NE(out.find("204"), std::string::npos) << out;
  EXPECT_NE(lower(out).find("access-control-allow-origin: https://viewer.example.org"),
            std::string::npos)
      << out;
  // A real request still needs a token; the 401 carries the CORS headers so the page can
  // read it.
  ASSERT_EQ(
      testing::run_command("curl -s -i --max-time 5 -H 'Origin: https://viewer.example.org' " +
                               url + "/dicom-web/studies",
                           &out),
      0);
  EXPECT_NE(out.find("401"), std::string::npos) << out;
  EXPECT_NE(lower(out).find("access-control-allow-origin"), std::string::npos) << out;
  ASSERT_EQ(
      testing::run_command("curl -s -i --max-time 5 -X OPTIONS -H 'Origin: https://evil.example' " +
                               url + "/dicom-web/studies",
                           &out),
      0);
  EXPECT_EQ(lower(out).find("access-control-allow-origin"), std::string::npos) << out;
  EXPECT_EQ(server.stop(), 0);
}

TEST(Tls, with_a_certificate_configured_the_api_is_served_over_https_only) {
  testing::TempDir dir;
  fs::path key = dir.path() / "key.pem", cert = dir.path() / "cert.pem";
  std::string out;
  ASSERT_EQ(testing::run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                 "/CN=127.0.0.1 -keyout '" +
                                     key.string() + "' -out '" + cert.string() + "'",
                                 &out),
            0)
      << out;
  fs::path cfg = dir.path() / "yilian.toml";
  std::ofstream(cfg) << "[http]\ntls_cert = \"" << cert.string() << "\"\ntls_key = \""
                     << key.string() << "\"\n";
  // The harness probes readiness over plain HTTP, which a TLS hub does not answer; start
  // the hub directly and probe with curl.
  fs::path data = dir.path() / "data";
  ASSERT_EQ(testing::run_command("printf 'a long password\\n' | " + testing::yilian_binary() +
                                     " user add --data '" + data.string() +
                                     "' --role admin --institution consortium root",
                                 &out),
            0)
      << out;
  const fs::path port_file = dir.path() / "ports";
  std::string cmd = "timeout 60 " + testing::yilian_binary() + " serve --data '" + data.string() +
                    "' --config '" + cfg.string() + "' --dicom-port 0 --http-port 0 --port-file '" +
                    port_file.string() + "' > '" + (dir.path() / "log").string() + "' 2>&1 &";
  ASSERT_EQ(testing::run_command(cmd), 0);
  auto ports = testing::wait_for_port_file(port_file);
  ASSERT_TRUE(ports.has_value());
  const std::uint16_t http = ports->second;
  std::string base = "https://127.0.0.1:" + std::to_string(http);
  int rc = 1;
  for (int i = 0; i < 100 && rc != 0; ++i) {
    rc = testing::run_command(
        "curl -sf --max-time 5 --cacert '" + cert.string() + "' " + base + "/healthz", &out);
    if (rc != 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"status\":\"ok\""), std::string::npos) << out;
  // Login over TLS, verified against the certificate.
  EXPECT_EQ(testing::run_command("curl -s --max-time 5 --cacert '" + cert.string() +
                                     "' -H 'Content-Type: application/json' -d "
                                     "'{\"username\":\"root\",\"password\":\"a long password\"}' " +
                                     base + "/api/auth/login",
                                 &out),
            0);
  EXPECT_NE(out.find("\"token\""), std::string::npos) << out;
  // Plain HTTP gets no answer with data.
  EXPECT_NE(
      testing::run_command(
          "curl -sf --max-time 3 http://127.0.0.1:" + std::to_string(http) + "/healthz", &out),
      0)
      << out;
  testing::run_command("pkill -TERM -f '[s]erve --data " + data.string() + "'");
  for (int i = 0;
       i < 100 && testing::run_command("pgrep -f '[s]erve --data " + data.string() + "'") == 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace
}  // namespace yilian
