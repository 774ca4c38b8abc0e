// `yilian pathology import`: a scanner's slide file (Aperio SVS, pyramidal TIFF) converted to
// DICOM whole-slide images, stored into a data directory or written to a folder.
#pragma once

#include <filesystem>
#include <string>

#include "yilian/pathology/convert.h"

namespace yilian::app {

struct PathologyImportFlags {
  std::filesystem::path slide;
  std::filesystem::path data;  // store here (the hub stopped), or
  std::filesystem::path out;   // write the instances into this folder
  std::string institution;     // institution code the study is filed under
  pathology::SlideSubject subject;
  double microns_per_pixel = 0;
};

int pathology_import(const PathologyImportFlags& flags);

}  // namespace yilian::app
