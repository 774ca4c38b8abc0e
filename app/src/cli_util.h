// What the data-directory commands (`import`, `pathology import`) share: the progress bar on a
// terminal and the audit record of what a command did.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "yilian/identity/audit.h"

namespace yilian::app {

// "\r[#####     ] done/total unit" on stderr.
inline void show_progress(std::uint64_t done, std::uint64_t total, const char* unit) {
  constexpr int kWidth = 40;
  const int filled = total == 0 ? kWidth : static_cast<int>(kWidth * done / total);
  std::fprintf(stderr, "\r[%.*s%*s] %llu/%llu %s", filled,
               "########################################", kWidth - filled, "",
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), unit);
  std::fflush(stderr);
}

// The audit record of a command run on the data directory (actor "cli", address "local") that
// filed study `study` under `institution` (empty: "unknown").
inline identity::AuditEvent cli_study_event(const std::string& institution, const char* action,
                                            const std::string& study) {
  identity::AuditEvent ev;
  ev.actor = "cli";
  ev.actor_institution = institution.empty() ? "unknown" : institution;
  ev.address = "local";
  ev.action = action;
  ev.object_type = "study";
  ev.object_id = study;
  return ev;
}

}  // namespace yilian::app
