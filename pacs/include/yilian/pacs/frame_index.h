// Where each frame of a stored multi-frame object lies in its file, so that a frame (a tile
// of a whole-slide image, a slice of an enhanced CT) is served as a byte range of the file:
// neither decoded nor read with the rest of the instance. The index is built once per stored
// file by a walk that skips every value (dataset_limits.h) and kept in a bounded cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/pacs/dataset_limits.h"

namespace yilian::pacs {

struct FrameIndex {
  std::string transfer_syntax_uid;
  bool encapsulated = false;
  std::uint16_t rows = 0, columns = 0, samples_per_pixel = 0;
  std::uint16_t planar_configuration = 0;  // native colour: 1 when stored colour-by-plane
  std::string photometric;                 // Photometric Interpretation
  // Frame k (0-based): its bytes, the fragments that hold it in order (native: one span).
  std::vector<std::vector<ByteSpan>> frames;
};

// The frames of a layout (pure). `offset_table`: the Basic Offset Table's value (may be
// empty); `native_frame_bytes`: Rows x Columns x Samples per Pixel x Bits Allocated / 8 of
// native pixel data. Encapsulated frames are told apart by the offset table, or one item
// per frame, or (one frame) all items. invalid_argument when they cannot be told apart.
Result<std::vector<std::vector<ByteSpan>>> frames_of_layout(const PixelDataLayout& layout,
                                                            std::string_view offset_table,
                                                            std::uint64_t number_of_frames,
                                                            std::uint64_t native_frame_bytes);

// Builds the index of a stored Part 10 file (its attributes through DCMTK without loading
// values, the layout by the walk, the offset table by one read). Errors: not_found (no pixel
// data), invalid_argument (frames cannot be addressed: deflated, 1-bit, no way to tell
// encapsulated frames apart), io.
Result<FrameIndex> build_frame_index(const std::filesystem::path& file);

// Whether frames of `index` are images a browser shows as they are: colour JPEG baseline
// (the usual whole-slide tile), so a rendered tile is the stored frame.
bool browser_ready_jpeg(const FrameIndex& index);

// Frame indexes by stored file (blob key: stored files never change), the least recently
// used dropped once they hold more than `max_frames` frames in all (about 40 bytes each).
// Thread-safe; two threads asking for the same new file may both build it.
class FrameIndexCache {
 public:
  explicit FrameIndexCache(std::size_t max_frames = 4u << 20) : max_frames_(max_frames) {}
  Result<std::shared_ptr<const FrameIndex>> get(const std::string& key,
                                                const std::filesystem::path& file);
  std::size_t size() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const FrameIndex>>;
  std::size_t max_frames_;
  std::size_t frames_ = 0;  // held, in all entries
  mutable std::mutex mu_;
  std::list<Entry> order_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_key_;
};

}  // namespace yilian::pacs
