// Synthetic DICOM objects for tests and benchmarks: CT series with real pixel data.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::testing {

struct CtSeriesSpec {
  std::string patient_id = "TS0001";
  std::string patient_name = "Test^Patient";
  std::string issuer;      // Issuer of Patient ID; none when empty
  std::string charset;     // Specific Character Set declared (e.g. "ISO_IR 192"); none when empty
  std::string study_uid;   // generated when empty
  std::string series_uid;  // generated when empty
  std::string accession = "ACC0001";
  std::string institution_name = "Township Health Centre";
  std::string study_date = "20261122";
  std::string modality = "CT";
  std::string study_description = "CT HEAD W/O CONTRAST";  // (the body part is HEAD)
  int series_number = 1;
  int count = 10;
  int rows = 512;
  int columns = 512;
  // > 0: each slice is a head phantom (air, scalp, skull, brain with grey and white matter,
  // ventricles) with Gaussian noise of this standard deviation in HU, as a real CT has; 0: a
  // smooth gradient (compresses to almost nothing, fine where pixels do not matter).
  double noise_hu = 0;
};

struct WrittenSeries {
  std::string study_uid;
  std::string series_uid;
  std::vector<std::filesystem::path> files;
  std::vector<std::string> sop_instance_uids;
};

// Writes `spec.count` CT Image Storage files (16-bit, explicit VR little endian) into `dir`.
Result<WrittenSeries> write_ct_series(const std::filesystem::path& dir, const CtSeriesSpec& spec);

// An ultrasound multi-frame (cine) object: `frames` RGB frames of width x height with a bright
// bar that moves one column per frame, Cine Rate `fps`. Returns the file's SOP/study/series.
struct WrittenCine {
  std::filesystem::path file;
  std::string study_uid, series_uid, sop_instance_uid;
};
Result<WrittenCine> write_us_cine(const std::filesystem::path& file, int frames, int width,
                                  int height, int fps);

// A fresh UID under DCMTK's site root.
std::string new_uid();

}  // namespace yilian::testing

namespace yilian::testing {

// A Part 10 Basic Text SR (explicit VR little endian) whose content sequence nests `depth`
// sequences deep, each of undefined length: the shape that exhausts a recursive parser.
// Built byte by byte; no toolkit could load it to write it.
std::string nested_sequence_part10(int depth, const std::string& study_uid,
                                   const std::string& sop_instance_uid);

}  // namespace yilian::testing
