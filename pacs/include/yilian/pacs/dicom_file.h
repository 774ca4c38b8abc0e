// Reading what the index needs out of a stored DICOM Part 10 file, and validating it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "yilian/common/result.h"
#include "yilian/pacs/charset.h"
#include "yilian/pacs/records.h"

namespace yilian::pacs {

// Parses and validates a Part 10 file (preamble, DICM, file meta information, data set).
// Large values (pixel data) are not loaded. Fails with Errc::invalid_argument and a message
// fit for a DICOM error comment when the file is unparseable or truncated, or lacks a valid
// SOP Class, SOP Instance, Study Instance or Series Instance UID. Fills the identity, patient,
// study, series, instance, transfer syntax, size and dataset offset fields. Objects nested
// deeper or larger than dataset_limits.h allows are refused before DCMTK parses them. Text
// is decoded to valid UTF-8 by `decoding` (charset.h) and bounded in length.
Result<pacs::NewInstance> read_instance_attributes(const std::filesystem::path& file,
                                                   const TextDecoding& decoding = {});

// True for a syntactically valid DICOM UID (digits and dots, no empty or 0-led components
// except "0", at most 64 characters).
bool is_valid_uid(std::string_view uid);

// A new, unique UID for an object the hub writes (an uploaded ECG, a converted slide).
std::string new_uid();

}  // namespace yilian::pacs
