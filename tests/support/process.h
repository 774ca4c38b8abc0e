// Processes and ports for tests: commands through the shell, free loopback ports.
#pragma once

#include <cstdint>
#include <string>

namespace yilian::testing {

// A TCP port that was free a moment ago on 127.0.0.1 (for peers that cannot bind port 0
// and report it; `yilian serve` can: --dicom-port 0 --http-port 0 --port-file F).
std::uint16_t free_port();

// Runs a command through /bin/sh; returns its exit status and captures stdout+stderr.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace yilian::testing
