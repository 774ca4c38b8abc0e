// A simulated township link for the edge benchmark (the tests' LinkSimulator): a TCP proxy
// from a free loopback port to --target with the link's bandwidth and delay. SIGUSR1 cuts the
// link (every connection reset, new ones refused), SIGUSR2 restores it; SIGTERM stops it and
// prints the bytes it carried as JSON on stdout.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "link_sim.h"

int main(int argc, char** argv) {
  CLI::App app{"A simulated link: bandwidth, delay, cuts (SIGUSR1 cut, SIGUSR2 restore)"};
  int target = 0, delay_ms = 40;
  double mbps = 10;
  std::string port_file;
  app.add_option("--target", target, "The server's port on 127.0.0.1")->required();
  app.add_option("--mbps", mbps, "Bandwidth each way in Mbit/s (0: unlimited)");
  app.add_option("--delay-ms", delay_ms, "One-way delay in ms");
  app.add_option("--port-file", port_file, "Write the port listened on here")->required();
  CLI11_PARSE(app, argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  yilian::testing::LinkSimulator link(
      static_cast<std::uint16_t>(target),
      {static_cast<std::uint64_t>(mbps * 1e6 / 8), std::chrono::milliseconds(delay_ms)});
  if (!link.start()) {
    std::fprintf(stderr, "cannot listen\n");
    return 1;
  }
  {
    std::ofstream(port_file + ".tmp") << link.port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  while (true) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGUSR1) {
      link.cut();
    } else if (sig == SIGUSR2) {
      link.restore();
    } else {
      break;
    }
  }
  link.stop();
  std::printf("{\"up\": %llu, \"down\": %llu, \"connections\": %llu}\n",
              static_cast<unsigned long long>(link.bytes_up()),
              static_cast<unsigned long long>(link.bytes_down()),
              static_cast<unsigned long long>(link.connections()));
  return 0;
}
