// The ingest validation path of C-STORE and STOW-RS: the structure check, then DCMTK's
// parse and the attribute reading with character set decoding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "yilian/common/text.h"
#include "yilian/pacs/dataset_limits.h"
#include "yilian/pacs/dicom_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  yilian::Status structure = yilian::pacs::check_part10_structure(bytes);
  static const std::string path = "/dev/shm/yilian-fuzz-" + std::to_string(::getpid()) + ".dcm";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto in = yilian::pacs::read_instance_attributes(path);
  // Whatever the structure check refuses never reaches DCMTK; what is accepted is UTF-8.
  if (!structure.ok() && in.ok()) __builtin_trap();
  if (in.ok() && !yilian::is_valid_utf8(in->patient_name + in->study_description +
                                        in->institution_name + in->indication))
    __builtin_trap();
  return 0;
}
