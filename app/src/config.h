// Hub configuration: a TOML file, overridden by command-line flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "yilian/common/result.h"

namespace yilian::app {

struct InstitutionConfig {
  std::string code;
  std::string name;
  std::vector<std::string> ae_titles;
};

struct Config {
  std::uint16_t dicom_port = 11112;
  std::string ae_title = "YILIAN";
  unsigned max_associations = 16;
  bool reject_unknown_ae = false;
  std::uint32_t dimse_timeout_s = 60;
  std::uint16_t http_port = 8080;
  std::string http_bind;
  std::vector<InstitutionConfig> institutions;
};

// Reads a config file. Unknown keys are errors, so a typo never silently changes nothing.
Result<Config> load_config(const std::filesystem::path& file);
Result<Config> parse_config(std::string_view toml_text);

}  // namespace yilian::app
