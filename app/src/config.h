// Hub configuration: a TOML file, overridden by command-line flags.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/pacs/queue_rules.h"

namespace yilian::app {

struct InstitutionConfig {
  std::string code;
  std::string name;
  std::vector<std::string> ae_titles;
  std::string level = "township";  // lead, county, community, township, village, office
  std::string parent;              // code of the parent institution in the consortium
};

// `provider` reads `service` ("imaging" or "ecg") for each of `clients`.
struct ReadingServiceConfig {
  std::string provider;
  std::string service;
  std::vector<std::string> clients;
};

struct Config {
  std::uint16_t dicom_port = 11112;
  std::string ae_title = "YILIAN";
  unsigned max_associations = 16;
  bool reject_unknown_ae = false;
  std::uint32_t dimse_timeout_s = 60;
  std::uint16_t http_port = 8080;
  std::string http_bind;
  std::string tls_cert;  // PEM files; both set: HTTP and WebSocket are served over TLS
  std::string tls_key;
  std::vector<std::string> cors_origins;  // e.g. ["https://viewer.example.org"] or ["*"]
  std::vector<InstitutionConfig> institutions;
  std::vector<ReadingServiceConfig> reading_services;
  // [auth]
  std::uint32_t token_ttl_minutes = 12 * 60;
  std::string admin_username = "admin";
  std::string admin_institution = "consortium";  // created as level "office" if missing
  std::string admin_password_file;  // first start only; else a one-time password is printed
  // [queue]
  pacs::QueueRules queue;
  std::string national_id_issuer;  // Issuer of Patient ID that identifies a person everywhere
};

// Reads a config file. Unknown keys are errors, so a typo never silently changes nothing.
Result<Config> load_config(const std::filesystem::path& file);
Result<Config> parse_config(std::string_view toml_text);

}  // namespace yilian::app
