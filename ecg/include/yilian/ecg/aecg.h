// HL7 annotated ECG (aECG, HL7 v3 "AnnotatedECG") XML: the rhythm series' sequence set —
// the time sequence's increment gives the sampling rate, each MDC_ECG_LEAD_* sequence a lead
// (origin + scale x digits, in uV or mV). Derived series (median beats) are not read.
#pragma once

#include <filesystem>
#include <string_view>

#include "yilian/common/result.h"
#include "yilian/ecg/record.h"

namespace yilian::ecg {

// Errors: invalid_argument with the reason (not XML, not an AnnotatedECG, no rhythm
// sequence set, no time increment, leads of different lengths, an impossible rate).
Result<Record> parse_aecg(std::string_view xml);
Result<Record> read_aecg(const std::filesystem::path& file);

}  // namespace yilian::ecg
