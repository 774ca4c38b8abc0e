// A simulated wide-area link for tests and benchmarks: a TCP proxy on loopback between a
// client (a township edge node) and a server (the hub), with the link's bandwidth (shared by
// every connection through it, each way), a one-way delay, and cuts: while cut, every
// connection through it is reset and new ones are reset as they arrive; restored, new ones
// pass again. Bounded: every loop waits at most a few milliseconds and stops with the proxy.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace yilian::testing {

struct LinkOptions {
  std::uint64_t bytes_per_second = 0;  // each way; 0: unlimited
  std::chrono::milliseconds delay{0};  // one way
};

class LinkSimulator {
 public:
  LinkSimulator(std::uint16_t target_port, LinkOptions options);
  ~LinkSimulator();
  LinkSimulator(const LinkSimulator&) = delete;
  LinkSimulator& operator=(const LinkSimulator&) = delete;

  // Listens on 127.0.0.1 on a port the system chooses.
  bool start();
  std::uint16_t port() const { return port_; }
  void stop();

  void cut();
  void restore();
  // New connections go to this port (the server restarted on another one).
  void set_target(std::uint16_t port) { target_ = port; }
  bool is_cut() const { return cut_; }

  // Bytes carried from clients to the server, and back.
  std::uint64_t bytes_up() const { return up_; }
  std::uint64_t bytes_down() const { return down_; }
  std::uint64_t connections() const { return connections_; }

  struct Bucket;  // the bandwidth of one direction

 private:
  void accept_loop();
  void relay(int client, int server);

  std::atomic<std::uint16_t> target_;
  LinkOptions options_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false}, cut_{false};
  std::atomic<std::uint64_t> up_{0}, down_{0}, connections_{0};
  std::unique_ptr<Bucket> up_bucket_, down_bucket_;
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> relays_;  // guarded by mu_
};

}  // namespace yilian::testing
