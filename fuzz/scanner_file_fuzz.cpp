// What `yilian pathology import` reads of a scanner's file (Aperio SVS, tiled TIFF, through
// libtiff and OpenSlide): the file is converted into DICOM instances in a scratch folder, each
// checked against what the converter reported and removed once written.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "yilian/pathology/convert.h"

namespace fs = std::filesystem;

// OpenSlide and libtiff ask malloc for what a file's tags claim and cope with a null answer,
// as they get outside the sanitizer (an absurd size is refused); an abort on a null answer
// (glib's g_malloc) is still found.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path dir = "/dev/shm/yilian-fuzz-scanner-" + std::to_string(::getpid());
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path slide = dir / "slide.svs";
  std::FILE* f = std::fopen(slide.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);

  yilian::pathology::ConvertOptions options;
  options.subject.patient_id = "FUZZ";
  int next = 0;
  options.next_file = [&]() -> yilian::Result<fs::path> {
    return dir / ("level-" + std::to_string(next++) + ".dcm");
  };
  options.written = [&](const fs::path& file,
                        const yilian::pathology::ConvertedInstance& instance) -> yilian::Status {
    if (instance.tiles_copied + instance.tiles_encoded > instance.frames) __builtin_trap();
    fs::remove(file, ec);
    return yilian::Status::Ok();
  };
  (void)yilian::pathology::convert_slide(slide, options);
  for (int k = 0; k < next; ++k) fs::remove(dir / ("level-" + std::to_string(k) + ".dcm"), ec);
  return 0;
}
