#include "lab_client.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "process.h"
#include "yilian/storage/clock.h"

namespace yilian::testing {

std::vector<nlohmann::json> send_hl7(std::uint16_t mllp_port, const nlohmann::json& cases,
                                     const std::filesystem::path& work, std::string* log) {
  const std::filesystem::path in = work / "hl7-cases.json";
  std::ofstream(in) << cases.dump();
  std::string out;
  const int rc = run_command("timeout 120 /usr/bin/python3 '" + std::string(YILIAN_TESTS_SOURCE) +
                                 "/integration/hl7_client.py' " + std::to_string(mllp_port) +
                                 " < '" + in.string() + "' 2>&1",
                             &out);
  if (log) *log = "exit " + std::to_string(rc) + "\n" + out;
  std::vector<nlohmann::json> answers;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) answers.push_back(j);
  }
  return answers;
}

std::string hl7_time_ago(int minutes_ago) {
  const std::string iso =
      storage::to_iso8601(std::chrono::system_clock::now() - std::chrono::minutes(minutes_ago));
  std::string out;
  for (char c : iso.substr(0, 19)) {
    if (c >= '0' && c <= '9') out += c;
  }
  return out + "+0000";
}

}  // namespace yilian::testing
