#include "link_sim.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <string>

namespace yilian::testing {

using Clock = std::chrono::steady_clock;

// A token bucket: `rate` bytes a second, at most a few milliseconds' worth at once.
struct LinkSimulator::Bucket {
  explicit Bucket(std::uint64_t rate) : rate(static_cast<double>(rate)) {}
  // How many of `want` bytes may go now (taken from the bucket).
  std::size_t take(std::size_t want) {
    if (rate <= 0) return want;
    std::lock_guard lock(mu);
    const auto now = Clock::now();
    const double burst = std::max(1500.0, rate * 0.004);
    tokens = std::min(burst, tokens + rate * std::chrono::duration<double>(now - last).count());
    last = now;
    const auto n = static_cast<std::size_t>(std::min<double>(static_cast<double>(want), tokens));
    tokens -= static_cast<double>(n);
    return n;
  }
  double rate;
  std::mutex mu;
  double tokens = 0;
  Clock::time_point last = Clock::now();
};

namespace {

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Closes with a reset, as a link that goes away does to the peers that notice.
void reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

struct Chunk {
  std::string bytes;
  std::size_t sent = 0;
  Clock::time_point due;
};

}  // namespace

LinkSimulator::LinkSimulator(std::uint16_t target_port, LinkOptions options)
    : target_(target_port),
      options_(options),
      up_bucket_(std::make_unique<Bucket>(options.bytes_per_second)),
      down_bucket_(std::make_unique<Bucket>(options.bytes_per_second)) {}

LinkSimulator::~LinkSimulator() { stop(); }

bool LinkSimulator::start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return false;
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0)
    return false;
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
  return true;
}

void LinkSimulator::stop() {
  stopping_ = true;
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> relays;
  {
    std::lock_guard lock(mu_);
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void LinkSimulator::cut() { cut_ = true; }
void LinkSimulator::restore() { cut_ = false; }

void LinkSimulator::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (cut_) {
      reset(client);
      continue;
    }
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(target_);
    if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (server >= 0) ::close(server);
      reset(client);
      continue;
    }
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblocking(client);
    set_nonblocking(server);
    ++connections_;
    std::lock_guard lock(mu_);
    relays_.emplace_back([this, client, server] { relay(client, server); });
  }
}

void LinkSimulator::relay(int client, int server) {
  struct Way {
    int from, to;
    std::deque<Chunk> queue;
    std::size_t queued = 0;
    bool eof = false;
    Bucket* bucket;
    std::atomic<std::uint64_t>* counter;
  };
  Way ways[2] = {{client, server, {}, 0, false, up_bucket_.get(), &up_},
                 {server, client, {}, 0, false, down_bucket_.get(), &down_}};
  constexpr std::size_t kMaxQueued = 4u << 20;
  char buf[64 * 1024];
  bool broken = false;
  while (!stopping_ && !cut_ && !broken) {
    pollfd fds[2] = {{client, 0, 0}, {server, 0, 0}};
    for (int i = 0; i < 2; ++i) {
      if (!ways[i].eof && ways[i].queued < kMaxQueued) fds[i].events |= POLLIN;
    }
    ::poll(fds, 2, 2);
    const auto now = Clock::now();
    for (Way& w : ways) {
      if (w.eof || w.queued >= kMaxQueued) continue;
      const ssize_t n = ::recv(w.from, buf, sizeof buf, 0);
      if (n > 0) {
        w.queue.push_back({std::string(buf, static_cast<std::size_t>(n)), 0, now + options_.delay});
        w.queued += static_cast<std::size_t>(n);
      } else if (n == 0) {
        w.eof = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        broken = true;
      }
    }
    for (Way& w : ways) {
      while (!w.queue.empty() && w.queue.front().due <= now) {
        Chunk& c = w.queue.front();
        const std::size_t allowed = w.bucket->take(c.bytes.size() - c.sent);
        if (allowed == 0) break;
        const ssize_t n = ::send(w.to, c.bytes.data() + c.sent, allowed, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK) broken = true;
          break;
        }
        c.sent += static_cast<std::size_t>(n);
        w.queued -= static_cast<std::size_t>(n);
        *w.counter += static_cast<std::uint64_t>(n);
        if (c.sent < c.bytes.size()) break;
        w.queue.pop_front();
      }
      // One side finished and all it sent has gone through: pass the end on.
      if (w.eof && w.queue.empty()) ::shutdown(w.to, SHUT_WR);
    }
    if (ways[0].eof && ways[1].eof && ways[0].queue.empty() && ways[1].queue.empty()) break;
  }
  if (cut_ || broken) {
    reset(client);
    reset(server);
  } else {
    ::close(client);
    ::close(server);
  }
}

}  // namespace yilian::testing
