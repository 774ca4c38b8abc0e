// WFDB (PhysioNet) records: the header (.hea), signal files in formats 212 and 16, and MIT
// annotation files (.atr); annotations can be written back. Every reader checks what the
// format lets it check and fails with a clear message: unknown formats, impossible sampling
// rates, truncated signal files, checksum mismatches, malformed annotation files.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/ecg/record.h"

namespace yilian::ecg {

// `header` is the .hea file; its signal files are read from the same directory.
Result<Record> read_wfdb(const std::filesystem::path& header);
// The same from a header already in memory (an upload): `signal_file(name)` returns the bytes of
// each signal file the header names; `label` names the record in error messages. Patient age
// and sex are taken from "# age:" / "# sex:" comments when present (PhysioNet's PTB style).
Result<Record> parse_wfdb(
    std::string_view header_text, const std::string& label,
    const std::function<Result<std::string>(const std::string&)>& signal_file);

Result<std::vector<Annotation>> read_wfdb_annotations(const std::filesystem::path& file);
// Writes annotations (sorted by sample) in the MIT format.
Status write_wfdb_annotations(const std::filesystem::path& file,
                              const std::vector<Annotation>& annotations);

}  // namespace yilian::ecg
