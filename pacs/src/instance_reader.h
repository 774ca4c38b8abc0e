// What WADO-RS and C-GET need out of one stored Part 10 file, without loading more of it
// than the request asks for: DICOM JSON metadata with bulk data by reference, single frames
// (as stored or decoded), and bulk data values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::pacs {

// The instance's data set as one DICOM JSON object (PS3.18 F.2). Pixel data and other
// top-level binary values over 1 KiB become BulkDataURIs "<bulk_uri_base>/<tag>" (tag as
// 8 hex digits), the rest is inline.
Result<std::string> instance_metadata_json(const std::filesystem::path& file,
                                           const std::string& bulk_uri_base);

struct Frame {
  std::string bytes;
  std::string transfer_syntax_uid;  // the syntax the bytes are in
  std::string media_type;           // application/octet-stream, image/jpeg, image/jls, ...
};

// Frames by 1-based number. `keep_stored`: a compressed object's frames go out as stored
// (its compressed bitstream); otherwise every frame is decoded to native little endian
// pixels. Errors: not_found (no such frame), invalid_argument (no pixel data, or a
// compression that cannot be decoded here).
Result<std::vector<Frame>> read_frames(const std::filesystem::path& file,
                                       const std::vector<std::uint32_t>& numbers, bool keep_stored);
// The same of a Part 10 object held in memory (a transcoded copy), as its syntax has them.
Result<std::vector<Frame>> read_frames(std::string_view part10,
                                       const std::vector<std::uint32_t>& numbers);

// A top-level binary value (tag as gggg,eeee packed in 32 bits). Pixel data of a compressed
// object: its frames as stored, one after the other. Errors: not_found.
Result<std::vector<Frame>> read_bulk_data(const std::filesystem::path& file, std::uint32_t tag);

// The Study Instance UID of a Part 10 object held in memory; nullopt when it cannot be read.
std::optional<std::string> part10_study_uid(std::string_view bytes);

// The media type PS3.18 names for frames of a transfer syntax ("" when uncompressed).
std::string frame_media_type(const std::string& transfer_syntax_uid);

}  // namespace yilian::pacs
