// Bounds on the shape of a received data set, checked before any recursive parser sees it.
//
// DCMTK parses sequences by recursion: an object whose sequences nest thousands deep
// exhausts the thread's stack and takes the whole hub down. check_part10_structure() walks
// the encoding iteratively (explicit and implicit VR, little and big endian, deflated,
// undefined-length sequences and items, encapsulated pixel data) without building anything,
// and refuses objects nested deeper or holding more elements than any real one does, with
// more than a few elements out of tag order (each costs DCMTK a search of its item: many are
// quadratic), and lengths that run past their container or the end of the data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::pacs {

struct DatasetLimits {
  std::uint32_t max_depth = 64;          // sequences within sequences
  std::uint64_t max_elements = 1000000;  // data elements and items in the whole object
  // Elements not in ascending tag order: each costs the parser a search of its item.
  std::uint64_t max_out_of_order = 256;
  std::uint64_t max_inflated = 1ull << 31;  // a deflated data set, once inflated
};

// A Part 10 file in memory: 128-byte preamble, "DICM", file meta group, data set.
// invalid_argument with a message fit for a DICOM error comment when a limit is passed or
// the encoding is broken.
Status check_part10_structure(std::string_view file, const DatasetLimits& limits = {});
// A bare data set (no preamble or meta group) in `transfer_syntax_uid`, as a DIMSE message
// carries one (query/retrieve identifiers).
Status check_dataset_structure(std::string_view dataset, std::string_view transfer_syntax_uid,
                               const DatasetLimits& limits = {});
// The same for a file on disk; values are skipped, not read.
Status check_part10_file(const std::filesystem::path& file, const DatasetLimits& limits = {});

// Bytes of a file: where they start and how many.
struct ByteSpan {
  std::uint64_t offset = 0, length = 0;
};

// Where a stored object's own Pixel Data lies in its file, found by the same walk: the one
// native value, or every item of encapsulated pixel data (the Basic Offset Table first).
struct PixelDataLayout {
  std::string transfer_syntax_uid;
  bool encapsulated = false;
  std::vector<ByteSpan> fragments;  // value bytes, item headers excluded
  // The data set's own image attributes, read on the way (0 when absent).
  std::uint64_t number_of_frames = 0;
  std::uint16_t rows = 0, columns = 0, samples_per_pixel = 0, bits_allocated = 0;
  std::uint16_t planar_configuration = 0;  // 1: colour-by-plane
  std::string photometric;                 // Photometric Interpretation, trimmed
};
// Errors: not_found (no pixel data), invalid_argument (broken, or deflated: no file offsets),
// io.
Result<PixelDataLayout> pixel_data_layout(const std::filesystem::path& file,
                                          const DatasetLimits& limits = {});

}  // namespace yilian::pacs
