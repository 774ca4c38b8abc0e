// Processes and ports for tests: commands through the shell, free loopback ports.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace yilian::testing {

// A TCP port that was free a moment ago on 127.0.0.1 (for peers that cannot bind port 0
// and report it; `yilian serve` can: --dicom-port 0 --http-port 0 --port-file F).
std::uint16_t free_port();

// Runs a command through /bin/sh; returns its exit status and captures stdout+stderr.
int run_command(const std::string& command, std::string* output = nullptr);

// Whether `program` is on the PATH.
bool have_program(const std::string& program);

// Starts a server that cannot bind port 0 and report the port it got (storescp, Orthanc):
// `launch` picks free ports and returns a shell command that starts it in the background and
// prints its pid; `ready` says whether it answers on them yet (polled for 20 s). When the server
// ends first (another process took a port in between) it is tried again with new ports, up to
// `attempts` times. Returns the pid, empty when it never answered.
std::string start_background(const std::function<std::string()>& launch,
                             const std::function<bool()>& ready, int attempts = 5);

}  // namespace yilian::testing
