#include "consortium.h"

#include <fstream>

namespace yilian::testing {

std::filesystem::path write_consortium_config(const std::filesystem::path& dir,
                                              std::string_view extra) {
  std::filesystem::path path = dir / "yilian.toml";
  std::ofstream(path) << kConsortium << "\n" << extra;
  return path;
}

}  // namespace yilian::testing
