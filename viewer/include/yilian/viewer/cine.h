// Cine: a multi-frame object (ultrasound loop, XA run) encoded once to H.264 in MP4 with
// FFmpeg at the object's own frame rate, for browsers to play and seek.
#pragma once

#include <filesystem>

#include "yilian/common/result.h"

namespace yilian::viewer {

struct CineInfo {
  int frames = 0;
  int width = 0, height = 0;
  double frames_per_second = 0;
};

// The object's frame rate: Cine Rate (0018,0040), else 1000 / Frame Time (0018,1063), else
// Recommended Display Frame Rate (0008,2144), else 25; clamped to 1..120.
double cine_frame_rate(double cine_rate, double frame_time_ms, double recommended);

// Writes `mp4` (fast start: the index first, so playback starts before the download ends).
// Grey-scale frames use the object's first window (else its VOI LUT, else min/max of the
// frames); odd sizes lose their last row or column. Errors: invalid_argument (not
// multi-frame, no pixel data, undecodable), unavailable (no H.264 encoder), io.
Result<CineInfo> encode_cine(const std::filesystem::path& dicom, const std::filesystem::path& mp4);

}  // namespace yilian::viewer
