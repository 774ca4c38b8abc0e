// Who is asking: an authenticated user, as every entry point sees them. Plain data; the
// rules that decide what a principal may do live in identity/ (policy.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace yilian {

enum class Role : std::uint8_t {
  township_doctor,  // township doctor or technician: acquires, asks for reads and consults
  radiologist,
  ecg_reader,
  cardiologist,  // reads ECGs too; the chest-pain centre's physicians
  admin,         // consortium admin: institutions, users, audit; reads nothing by itself
  qc_reviewer,
  pathologist,  // reads whole-slide images (the pathology centre's service)
  // A hospital clinician who reads for no service: emergency physician, trauma surgeon,
  // obstetrician, neonatologist. Works the emergency cases of the trauma, maternal and newborn
  // centres; sees what any clinician of their institution sees, no reading queue.
  physician,
};
inline constexpr Role kAllRoles[] = {Role::township_doctor, Role::radiologist, Role::ecg_reader,
                                     Role::cardiologist,    Role::admin,       Role::qc_reviewer,
                                     Role::pathologist,     Role::physician};

const char* role_name(Role r);
std::optional<Role> parse_role(std::string_view name);

struct Principal {
  std::int64_t user_id = 0;
  std::string username;
  std::int64_t institution_id = 0;  // home institution
  std::string institution_code;
  std::uint32_t roles = 0;  // bit (1 << Role)
  // Institutions the user is credentialed at besides the home one (multi-site practice).
  std::vector<std::int64_t> credentialed;
  // Institutions whose studies the reading services of the user's institutions cover.
  std::vector<std::int64_t> imaging_clients;
  std::vector<std::int64_t> ecg_clients;
  // The reading services (subspecialty queues such as "neuro") a reader works; for a
  // physician, the emergency services they belong to (trauma, obstetrics, neonatology), whose
  // escalations reach them. Empty: all.
  std::vector<std::string> services;
  // Signed in with a password that must be replaced first (generated, or set by an admin).
  bool must_change_password = false;

  bool has(Role r) const { return (roles >> static_cast<unsigned>(r)) & 1u; }
  void grant(Role r) { roles |= 1u << static_cast<unsigned>(r); }
};

// "radiologist,admin" <-> bitmask. Unknown names fail.
std::string roles_to_string(std::uint32_t roles);
std::optional<std::uint32_t> roles_from_string(std::string_view list);

}  // namespace yilian
