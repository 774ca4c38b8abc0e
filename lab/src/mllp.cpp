#include "yilian/lab/mllp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

namespace yilian::lab {

std::string mllp_frame(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 3);
  out += kMllpStart;
  out += message;
  out += kMllpEnd;
  out += kMllpCr;
  return out;
}

std::vector<std::string> MllpDecoder::feed(std::string_view bytes) {
  std::vector<std::string> out;
  for (char c : bytes) {
    if (failed()) break;
    if (!in_frame_) {
      if (c == kMllpStart) {
        in_frame_ = true;
        current_.clear();
      } else if (c != '\r' && c != '\n' && c != ' ' && c != '\t') {
        error_ = "bytes outside an MLLP frame (a message starts with 0x0B)";
      }
      continue;
    }
    if (saw_end_) {
      saw_end_ = false;
      in_frame_ = false;
      if (c != kMllpCr) {
        error_ = "an MLLP frame ends with 0x1C 0x0D";
        break;
      }
      out.push_back(std::move(current_));
      current_.clear();
      continue;
    }
    if (c == kMllpEnd) {
      saw_end_ = true;
    } else if (c == kMllpStart) {
      error_ = "a new MLLP frame began before the last one ended";
    } else if (current_.size() >= max_) {
      error_ = "message larger than " + std::to_string(max_) + " bytes";
    } else {
      current_ += c;
    }
  }
  return out;
}

MllpServer::MllpServer(MllpOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

MllpServer::~MllpServer() { stop(); }

Status MllpServer::start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return make_error(Errc::io, std::string("MLLP socket: ") + strerror(errno));
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options_.port);
  if (::inet_pton(AF_INET, options_.bind.c_str(), &addr.sin_addr) != 1) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return make_error(Errc::invalid_argument, "MLLP bind address " + options_.bind);
  }
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    const std::string why = strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return make_error(Errc::io, "MLLP port " + std::to_string(options_.port) + ": " + why);
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
  return Status::Ok();
}

void MllpServer::stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  std::vector<Worker> workers;
  {
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.thread.join();
}

void MllpServer::reap() {
  std::vector<Worker> finished;
  {
    std::lock_guard lock(mu_);
    auto done = std::partition(workers_.begin(), workers_.end(),
                               [](const Worker& w) { return !w.done->load(); });
    std::move(done, workers_.end(), std::back_inserter(finished));
    workers_.erase(done, workers_.end());
  }
  for (auto& w : finished) w.thread.join();
}

void MllpServer::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;
    reap();
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (open_ >= options_.max_connections) {
      spdlog::warn("lab: MLLP connection refused: {} open already", open_.load());
      ::close(fd);
      continue;
    }
    ++open_;
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      --open_;
      break;
    }
    fds_.push_back(fd);
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back({std::thread([this, fd, done] {
                          serve(fd);
                          done->store(true);
                        }),
                        done});
  }
}

namespace {

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

void MllpServer::serve(int fd) {
  MllpDecoder decoder;
  char buf[16384];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, options_.idle_timeout_s * 1000);
    if (ready <= 0 || stopping_) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    bool open = true;
    for (const std::string& message :
         decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
      if (!send_all(fd, mllp_frame(handler_(message)))) {
        open = false;
        break;
      }
    }
    if (decoder.failed()) {
      // One rejection that says why, then the connection is closed: what follows cannot be
      // framed any more.
      Hl7Error e{"AR", 100, "", decoder.error()};
      (void)send_all(fd, mllp_frame(make_ack(nullptr, "AR", &e, e.text, "YL-MLLP", "")));
      spdlog::warn("lab: MLLP connection closed: {}", decoder.error());
      break;
    }
    if (!open) break;
  }
  {
    std::lock_guard lock(mu_);
    fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
  }
  ::close(fd);
  --open_;
}

}  // namespace yilian::lab
