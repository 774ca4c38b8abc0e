// The consortium the integration tests run against: a lead hospital that reads imaging and ECG
// for township A; township B, a member without a reading service (what it sends nobody
// reads, and its users see nothing of A's). Unknown AE titles are refused.
#pragma once

#include <string>

#include <filesystem>
#include <string_view>

namespace yilian::testing {

inline constexpr std::string_view kConsortium = R"(
[dicom]
reject_unknown_ae = true

[[institutions]]
code = "lead"
name = "Lead Hospital"
level = "lead"
ae_titles = ["LEAD_CT"]

[[institutions]]
code = "ta"
name = "Township A Health Centre"
level = "township"
parent = "lead"
ae_titles = ["TA_CT", "TA_ECG"]

[[institutions]]
code = "tb"
name = "Township B Health Centre"
level = "township"
parent = "lead"
ae_titles = ["TB_CT"]

[[reading_services]]
provider = "lead"
service = "imaging"
clients = ["ta"]

[[reading_services]]
provider = "lead"
service = "ecg"
clients = ["ta"]
)";

// Head CTs go to the lead's neuro service, STAT when their texts mention a stroke.
inline constexpr const char* kStrokeRules = R"(
[[queue.routes]]
service = "neuro"
modalities = ["CT", "MR"]
body_parts = ["HEAD"]

[[queue.priority_rules]]
priority = "stat"
reason = "head CT with a stroke indication"
modalities = ["CT"]
body_parts = ["HEAD"]
text_contains = ["stroke"]
)";

// A queue for the reading-flow tests: a study is complete 0.3 s after its last instance, with
// the stroke rules.
inline const std::string kHeadCtQueue =
    std::string("\n[queue]\nstable_seconds = 0.3\nqc_percent = 0\n") + kStrokeRules;

// The same for studies sent through an edge node, with the hub's own stable wait an hour: a
// task before the edge says "complete" comes from the study arriving.
inline const std::string kEdgeStrokeQueue =
    std::string("\n[queue]\nstable_seconds = 3600\nqc_percent = 0\n") + kStrokeRules;

// Writes the consortium followed by `extra` (more TOML: [queue] settings, routes, peers) to
// `dir`/yilian.toml and returns its path.
std::filesystem::path write_consortium_config(const std::filesystem::path& dir,
                                              std::string_view extra = {});

}  // namespace yilian::testing
