// `yilian edge` (a township clinic's front end, edge/node.h) and `yilian edge-credential`
// (issue, list and revoke edge credentials on a stopped hub's data directory).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>

namespace yilian::app {

struct EdgeFlags {
  std::filesystem::path data;
  std::filesystem::path config;
  std::string hub;              // https://hub:port
  std::string credential_file;  // the token, on its first line
  std::string hub_ca;           // PEM the hub's certificate is verified with
  int dicom_port = -1;
  int http_port = -1;
  std::string aet;
  std::filesystem::path port_file;
  std::uint64_t routine_kbps = 0;  // 0: no cap
  std::string routine_schedule;    // edge/schedule.h
  int stable_s = -1;
  double sync_s = 15;     // the back channel's period
  double keep_days = 30;  // sent studies and pulled priors stay viewable this long
  std::uint64_t chunk_kb = 256;
  std::uint64_t max_chunk_kb = 4096;
  std::uint64_t bundle_kb = 16384;
};

struct EdgeCommands {
  CLI::App* edge = nullptr;
  CLI::App* issue = nullptr;
  CLI::App* list = nullptr;
  CLI::App* revoke = nullptr;
  EdgeFlags flags;
  std::string data, name, institution;
};

void add_edge_commands(CLI::App& app, EdgeCommands& c);
// The command's exit status when one of them was given, else -1.
int run_edge_commands(const EdgeCommands& c);

}  // namespace yilian::app
