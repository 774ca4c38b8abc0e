// A libwebsockets client for tests: connects to ws://127.0.0.1:port/ws (optionally with an
// Authorization header), sends text messages and hands received ones out in order. Its own
// lws context and service thread; every wait is bounded.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

struct lws_context;
struct lws;

namespace yilian::testing {

class WsClient {
 public:
  // `authorization`: e.g. "Bearer <token>", or empty. `read_paused`: the client does not read
  // what the server sends (a slow or stuck client) until resume_reading().
  WsClient(std::uint16_t port, std::string authorization = {}, bool read_paused = false);
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Waits (bounded) for the connection; false if it failed or was refused.
  bool wait_connected(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void send(std::string text);
  // The next message received, or nothing within `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // The next message whose JSON type is `type`, skipping others (bounded by `timeout`).
  std::optional<std::string> next_of(const std::string& type,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool closed() const;
  int close_code() const;
  // Waits (bounded) until the server closes the connection.
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void pause_reading();
  void resume_reading();
  void close();

  // Used by the lws callback.
  struct State;

 private:
  std::unique_ptr<State> state_;
  std::thread thread_;
};

}  // namespace yilian::testing
