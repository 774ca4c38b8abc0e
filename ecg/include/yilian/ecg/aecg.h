// HL7 annotated ECG (aECG, HL7 v3 "AnnotatedECG") XML: the rhythm series' sequence set —
// the time sequence's increment gives the sampling rate, each MDC_ECG_LEAD_* sequence a lead
// (origin + scale x digits, in uV or mV). Derived series (median beats) are not read.
#pragma once

#include <filesystem>
#include <string_view>

#include "yilian/common/result.h"
#include "yilian/ecg/record.h"

namespace yilian::ecg {

// Bounds on an uploaded aECG: what a resting or long rhythm ECG needs, far below memory.
inline constexpr std::size_t kMaxAecgBytes = 64u << 20;
inline constexpr std::size_t kMaxAecgLeads = 24;
inline constexpr std::size_t kMaxAecgSamplesPerLead = 1200000;  // 20 minutes at 1 kHz

// Errors: invalid_argument with the reason (not XML, a document type declaration (entities
// are never expanded), not an AnnotatedECG, no rhythm sequence set, no time increment, leads
// of different lengths, an impossible rate, past the bounds above).
Result<Record> parse_aecg(std::string_view xml);
Result<Record> read_aecg(const std::filesystem::path& file);

}  // namespace yilian::ecg
