// Synthetic 12-lead ECGs with known intervals and ST levels (yilian/ecg/synthetic.h), under the
// names the tests use; and the township STEMI ECG many tests send.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "synthetic.h"
#include "yilian/ecg/dicom_waveform.h"
#include "yilian/ecg/synthetic.h"

namespace yilian::testing {

using ecg::LeadShape;
using ecg::make_ecg;
using ecg::Synthetic;

// A DICOM 12-lead ECG of Township A's patient `patient_id` (a man of 60) with ST elevation of
// `st_mv` in `leads` — a suspected STEMI for the hub — written to `file`. Its study UID.
inline std::string write_stemi_ecg(const std::filesystem::path& file, const std::string& patient_id,
                                   const std::string& patient_name,
                                   const std::vector<std::string>& leads = {"V2", "V3", "V4"},
                                   double st_mv = 0.35) {
  Synthetic s;
  for (const auto& lead : leads) {
    LeadShape shape;
    shape.st = st_mv;
    s.leads[lead] = shape;
  }
  ecg::Record rec = make_ecg(s);
  rec.patient = {60, 'M'};
  const std::string study = new_uid();
  ecg::DicomEcgIdentity ident{patient_id, patient_name, study,    new_uid(),
                              new_uid(),  "20261204",   "081500", "Township A"};
  return ecg::write_dicom_waveform(rec, ident, file).ok() ? study : std::string();
}

}  // namespace yilian::testing
