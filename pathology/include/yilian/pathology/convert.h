// Scanner files to DICOM whole-slide images: `yilian pathology import`. Reads Aperio SVS and
// generic tiled (pyramidal) TIFF: each tiled directory is a pyramid level, written as one VL
// Whole Slide Microscopy instance (TILED_FULL, JPEG baseline). JPEG tiles are copied as they
// are (the TIFF's shared tables put in front of each); tiles in other compressions are
// decoded (libtiff, else OpenSlide) and encoded once as JPEG. The label and macro images
// (OpenSlide's associated images) become LABEL and OVERVIEW instances. One tile is in memory
// at a time, whatever the slide's size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/pathology/slide.h"

namespace yilian::pathology {

// Who and what the slide is of (the scanner file carries no patient).
struct SlideSubject {
  std::string patient_id, patient_name, birth_date, sex;
  std::string accession_number, study_description;
  std::string study_instance_uid;  // empty: a new study
  std::string container_id;        // the slide's identifier; empty: the file name's stem
  std::string specimen_id;         // empty: the container id
  std::string institution_name;
};

struct ConvertedInstance {
  std::string sop_instance_uid;
  SlideImage kind = SlideImage::volume;
  std::uint64_t width = 0, height = 0, frames = 0;
  std::uint64_t tiles_copied = 0;   // JPEG tiles written as they were
  std::uint64_t tiles_encoded = 0;  // tiles decoded and encoded as JPEG
};

struct ConvertedSlide {
  std::string study_instance_uid, series_instance_uid;
  std::string format;  // "aperio", "generic-tiff", ...
  double microns_per_pixel = 0;
  std::vector<ConvertedInstance> instances;
};

struct ConvertOptions {
  SlideSubject subject;
  double microns_per_pixel = 0;  // > 0: overrides what the file says
  int jpeg_quality = 90;         // for tiles that must be encoded
  // Tiles written so far out of all of the slide's tiles.
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
  // Where the next instance is written (called once per instance).
  std::function<Result<std::filesystem::path>()> next_file;
  // Called once an instance's file is complete, before the next is begun (to store it).
  std::function<Status(const std::filesystem::path&, const ConvertedInstance&)> written;
};

// Errors: invalid_argument (not a tiled TIFF/SVS, no pixel size known, tiles of an
// unsupported kind), io.
Result<ConvertedSlide> convert_slide(const std::filesystem::path& slide,
                                     const ConvertOptions& options);

}  // namespace yilian::pathology
