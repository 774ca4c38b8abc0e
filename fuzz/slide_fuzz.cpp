// What the hub reads of a received whole-slide object and of a scanner's tiles: the frame
// index (every frame must lie inside the file), the slide's attributes put together into
// levels (every tile must name a frame the instance has), and the JPEG stream helpers.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "yilian/pacs/frame_index.h"
#include "yilian/pathology/jpeg.h"
#include "yilian/pathology/slide.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)yilian::pathology::jpeg_size(bytes);
  (void)yilian::pathology::mark_rgb(bytes);
  const std::size_t half = size / 2;
  (void)yilian::pathology::complete_jpeg(bytes.substr(0, half), bytes.substr(half));

  static const std::string path = "/dev/shm/yilian-fuzz-slide-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto index = yilian::pacs::build_frame_index(path);
  if (index.ok()) {
    for (const auto& frame : index->frames) {
      for (const auto& span : frame) {
        if (span.offset > size || span.length > size - span.offset) __builtin_trap();
      }
    }
  }
  auto w = yilian::pathology::read_wsi_instance(path);
  if (w.ok()) {
    auto slide = yilian::pathology::assemble_slide({*w});
    if (slide.ok()) {
      for (const auto& level : slide->levels) {
        if (level.full_frames > w->frames) __builtin_trap();
        for (const auto& [at, ref] : level.tiles) {
          if (ref.instance != 0 || ref.frame >= w->frames) __builtin_trap();
        }
      }
    }
  }
  return 0;
}
