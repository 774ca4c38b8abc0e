#include "yilian/pacs/frame_index.h"

#include <algorithm>
#include <cstdio>
#include <memory>

namespace yilian::pacs {
namespace {

Error unaddressable(std::string why) {
  return make_error(Errc::invalid_argument, "frames cannot be addressed in the file: " + why);
}

std::uint32_t le32(std::string_view s, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

constexpr std::uint64_t kItemHeader = 8;

}  // namespace

Result<std::vector<std::vector<ByteSpan>>> frames_of_layout(const PixelDataLayout& layout,
                                                            std::string_view offset_table,
                                                            std::uint64_t number_of_frames,
                                                            std::uint64_t native_frame_bytes) {
  const std::uint64_t n = std::max<std::uint64_t>(number_of_frames, 1);
  std::vector<std::vector<ByteSpan>> frames;
  if (layout.fragments.empty()) return make_error(Errc::not_found, "the object has no pixel data");
  if (!layout.encapsulated) {
    const ByteSpan value = layout.fragments.front();
    if (native_frame_bytes == 0) return unaddressable("frames of less than a byte");
    if (native_frame_bytes > value.length / n) {
      return unaddressable("the pixel data is shorter than its frames");
    }
    frames.reserve(n);
    for (std::uint64_t k = 0; k < n; ++k) {
      frames.push_back({{value.offset + k * native_frame_bytes, native_frame_bytes}});
    }
    return frames;
  }
  // Encapsulated: the first item is the Basic Offset Table, the others hold the frames.
  const std::vector<ByteSpan> items(layout.fragments.begin() + 1, layout.fragments.end());
  if (items.empty()) return unaddressable("no fragments");
  if (n == 1) return std::vector<std::vector<ByteSpan>>{items};
  if (!offset_table.empty()) {
    if (offset_table.size() != 4 * n) {
      return unaddressable("the offset table does not have one entry per frame");
    }
    // Offsets count from the first byte of the first item's header.
    const std::uint64_t base = items.front().offset - kItemHeader;
    std::vector<std::uint64_t> starts(n);
    for (std::uint64_t k = 0; k < n; ++k) {
      starts[k] = le32(offset_table, static_cast<std::size_t>(4 * k));
      if (k > 0 && starts[k] <= starts[k - 1]) {
        return unaddressable("the offset table is not ascending");
      }
    }
    if (starts[0] != 0) return unaddressable("the offset table does not start at 0");
    frames.assign(n, {});
    std::uint64_t k = 0;
    for (const ByteSpan& item : items) {
      const std::uint64_t at = item.offset - kItemHeader - base;
      const std::uint64_t before = k;
      while (k + 1 < n && at >= starts[k + 1]) ++k;
      if (at < starts[k] || (k != before && at != starts[k])) {
        return unaddressable("the offset table points inside a fragment");
      }
      frames[k].push_back(item);
    }
    for (const auto& f : frames) {
      if (f.empty()) return unaddressable("the offset table points past the fragments");
    }
    return frames;
  }
  if (items.size() == n) {
    for (const ByteSpan& item : items) frames.push_back({item});
    return frames;
  }
  return unaddressable(std::to_string(items.size()) + " fragments for " + std::to_string(n) +
                       " frames and no offset table");
}

Result<FrameIndex> build_frame_index(const std::filesystem::path& file) {
  auto layout = pixel_data_layout(file);
  if (!layout.ok()) return layout.error();
  std::string table;
  if (layout->encapsulated && layout->fragments.front().length > 0) {
    const ByteSpan bot = layout->fragments.front();
    if (bot.length > (64u << 20)) return unaddressable("the offset table is too large");
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
    table.resize(static_cast<std::size_t>(bot.length));
    if (!f || fseeko(f.get(), static_cast<off_t>(bot.offset), SEEK_SET) != 0 ||
        std::fread(table.data(), 1, table.size(), f.get()) != table.size()) {
      return make_error(Errc::io, "cannot read the offset table of " + file.string());
    }
  }
  const std::uint64_t bits = layout->bits_allocated;
  const std::uint64_t native =
      bits % 8 == 0 ? std::uint64_t{layout->rows} * layout->columns *
                          std::max<std::uint16_t>(layout->samples_per_pixel, 1) * (bits / 8)
                    : 0;
  auto frames = frames_of_layout(*layout, table, layout->number_of_frames, native);
  if (!frames.ok()) return frames.error();
  FrameIndex index;
  index.transfer_syntax_uid = layout->transfer_syntax_uid;
  index.encapsulated = layout->encapsulated;
  index.rows = layout->rows;
  index.columns = layout->columns;
  index.samples_per_pixel = layout->samples_per_pixel;
  index.planar_configuration = layout->planar_configuration;
  index.photometric = layout->photometric;
  index.frames = std::move(*frames);
  return index;
}

bool browser_ready_jpeg(const FrameIndex& index) {
  return index.samples_per_pixel == 3 && (index.transfer_syntax_uid == "1.2.840.10008.1.2.4.50" ||
                                          index.transfer_syntax_uid == "1.2.840.10008.1.2.4.51");
}

Result<std::shared_ptr<const FrameIndex>> FrameIndexCache::get(const std::string& key,
                                                               const std::filesystem::path& file) {
  {
    std::lock_guard lock(mu_);
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return it->second->second;
    }
  }
  auto built = build_frame_index(file);
  if (!built.ok()) return built.error();
  auto shared = std::make_shared<const FrameIndex>(std::move(*built));
  std::lock_guard lock(mu_);
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second->second;
  order_.emplace_front(key, shared);
  by_key_[key] = order_.begin();
  frames_ += shared->frames.size();
  while (frames_ > max_frames_ && order_.size() > 1) {
    frames_ -= order_.back().second->frames.size();
    by_key_.erase(order_.back().first);
    order_.pop_back();
  }
  return shared;
}

std::size_t FrameIndexCache::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

}  // namespace yilian::pacs
