// Identity wiring shared by `serve` and the admin commands: the config's institutions and
// reading services written to the index, the AE directory built from it, and the
// `yilian user|institution|audit` commands.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "data_dir.h"
#include "yilian/pacs/dicom_server.h"

namespace yilian::app {

// Creates the reserved institutions ("unknown", the admin's) and applies the config's
// institutions (level, parent, AE titles) and reading services.
Status apply_identity_config(DataDir& dd, const Config& cfg);

// Calling AE title -> institution, from the index.
Result<pacs::AeDirectory> build_ae_directory(DataDir& dd, const Config& cfg);

struct UserFlags {
  std::string data;
  std::string database;  // postgresql://...; empty: the data directory's
  std::string username;
  std::vector<std::string> roles;
  std::string institution;
  std::vector<std::string> credentials;
  std::string display_name;
};
int user_add(const UserFlags& f);
int user_list(const std::string& data);
int user_disable(const std::string& data, const std::string& username);
int user_passwd(const std::string& data, const std::string& username);

struct InstitutionFlags {
  std::string data;
  std::string code;
  std::string name;
  std::string level = "township";
  std::string parent;
  std::vector<std::string> ae_titles;
};
int institution_add(const InstitutionFlags& f);
int institution_list(const std::string& data);

int audit_verify(const std::string& data);

}  // namespace yilian::app
