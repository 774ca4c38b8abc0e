#include "yilian/common/principal.h"

namespace yilian {

const char* role_name(Role r) {
  switch (r) {
    case Role::township_doctor:
      return "township_doctor";
    case Role::radiologist:
      return "radiologist";
    case Role::ecg_reader:
      return "ecg_reader";
    case Role::cardiologist:
      return "cardiologist";
    case Role::admin:
      return "admin";
    case Role::qc_reviewer:
      return "qc_reviewer";
    case Role::pathologist:
      return "pathologist";
    case Role::physician:
      return "physician";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view name) {
  for (Role r : kAllRoles) {
    if (name == role_name(r)) return r;
  }
  return std::nullopt;
}

std::string roles_to_string(std::uint32_t roles) {
  std::string out;
  for (Role r : kAllRoles) {
    if ((roles >> static_cast<unsigned>(r)) & 1u) {
      if (!out.empty()) out += ',';
      out += role_name(r);
    }
  }
  return out;
}

std::optional<std::uint32_t> roles_from_string(std::string_view list) {
  std::uint32_t roles = 0;
  while (!list.empty()) {
    std::size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    auto r = parse_role(item);
    if (!r) return std::nullopt;
    roles |= 1u << static_cast<unsigned>(*r);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return roles;
}

}  // namespace yilian
