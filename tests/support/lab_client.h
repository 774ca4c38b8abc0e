// A laboratory system's side of the hub's HL7 v2 interface for integration tests: the cases
// go to `tests/integration/hl7_client.py` (python-hl7 builds and sends them over MLLP), one
// acknowledgement comes back per case.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace yilian::testing {

// The recognition table, qualifications and local code map the laboratory tests run with:
// haemoglobin (718-7) recognised from provincial EQA or ISO 15189 laboratories for 30 days,
// glucose (2345-7) from ISO 15189 ones for 3; the lead hospital holds ISO 15189, township A
// provincial EQA; A's HGB is 718-7; CT reports signed at the lead are recognised for 180 days.
inline constexpr const char* kLabConfig = R"(
[lab]
qualifications = { lead = "iso15189", ta = "provincial_eqa", "County Central Laboratory" = "iso15189" }
local_codes = { "ta:HGB" = "718-7" }

[[lab.recognition]]
code = "718-7"
qualifications = ["provincial_eqa", "iso15189"]
valid_days = 30

[[lab.recognition]]
code = "2345-7"
qualifications = ["iso15189"]
valid_days = 3

[[lab.recognition]]
modality = "CT"
qualifications = ["iso15189"]
valid_days = 180
)";

// Each case as hl7_client.py reads it; the acknowledgements (`ack`, `control`, `text`,
// `location`, `error`). `work` holds the cases file; `log` gets the client's output.
std::vector<nlohmann::json> send_hl7(std::uint16_t mllp_port, const nlohmann::json& cases,
                                     const std::filesystem::path& work, std::string* log);

// An HL7 time stamp `minutes_ago` before now, in UTC.
std::string hl7_time_ago(int minutes_ago);

}  // namespace yilian::testing
