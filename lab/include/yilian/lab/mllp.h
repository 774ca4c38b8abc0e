// MLLP (HL7's minimal lower layer protocol): each message framed as <VT> message <FS><CR>.
// The framing is pure (MllpDecoder); MllpServer is the TCP listener laboratory systems connect
// to, one thread per connection (at most `max_connections`), each message answered with the
// acknowledgement its handler returns, in order.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "yilian/common/result.h"
#include "yilian/lab/hl7.h"

namespace yilian::lab {

inline constexpr char kMllpStart = 0x0b, kMllpEnd = 0x1c, kMllpCr = 0x0d;

std::string mllp_frame(std::string_view message);

class MllpDecoder {
 public:
  explicit MllpDecoder(std::size_t max_message = kMaxMessageBytes) : max_(max_message) {}
  // The messages completed by `bytes`. Between frames only whitespace may come; anything else,
  // or a frame longer than the limit, fails the decoder for good (the connection is closed
  // after one AR).
  std::vector<std::string> feed(std::string_view bytes);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::size_t max_;
  bool in_frame_ = false;
  bool saw_end_ = false;
  std::string current_;
  std::string error_;
};

struct MllpOptions {
  std::uint16_t port = 2575;  // 0: any free port (tests)
  std::string bind = "0.0.0.0";
  unsigned max_connections = 16;
  int idle_timeout_s = 300;  // a connection quiet this long is closed
};

class MllpServer {
 public:
  using Handler = std::function<std::string(std::string_view message)>;
  MllpServer(MllpOptions options, Handler handler);
  ~MllpServer();
  MllpServer(const MllpServer&) = delete;
  MllpServer& operator=(const MllpServer&) = delete;

  Status start();
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  void accept_loop();
  void serve(int fd);
  void reap();  // joins the threads of closed connections

  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  MllpOptions options_;
  Handler handler_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> open_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<Worker> workers_;
  std::vector<int> fds_;
};

}  // namespace yilian::lab
