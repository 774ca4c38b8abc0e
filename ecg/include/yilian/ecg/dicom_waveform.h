// ECGs stored as DICOM waveforms (12-Lead ECG, General ECG and Ambulatory ECG Waveform
// Storage): the rhythm multiplex group (or the first one), each channel's source as its lead
// name, values as (sample + baseline) x sensitivity x correction factor, in millivolts.
#pragma once

#include <filesystem>

#include "yilian/common/result.h"
#include "yilian/ecg/record.h"

namespace yilian::ecg {

// Errors: invalid_argument with the reason (no waveform sequence, a channel count or sample
// count that does not match the data, an unsupported sample interpretation, an impossible
// sampling frequency); io when the file cannot be read.
Result<Record> read_dicom_waveform(const std::filesystem::path& file);

}  // namespace yilian::ecg
