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

namespace yilian::ecg {

// Identity of a DICOM ECG to write (an upload as WFDB or XML becomes a stored object).
struct DicomEcgIdentity {
  std::string patient_id, patient_name, study_uid, series_uid, sop_uid;
  std::string study_date, study_time;  // YYYYMMDD, HHMMSS
  std::string institution_name;
};

// Writes a 12-Lead ECG Waveform Storage object (General ECG when the record is not 12
// standard leads): one RHYTHM multiplex group, 16-bit signed samples at 1 uV per unit,
// channel sources coded as SCPECG leads. Explicit VR little endian.
Status write_dicom_waveform(const Record& record, const DicomEcgIdentity& id,
                            const std::filesystem::path& file);

}  // namespace yilian::ecg
