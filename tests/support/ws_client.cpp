#include "ws_client.h"

#include <libwebsockets.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

namespace yilian::testing {

struct WsClient::State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> inbox, outbox;
  std::string partial;
  bool connected = false, failed = false, is_closed = false, stop = false, paused = false;
  bool close_requested = false;
  int close_code = 0;
  std::string authorization;
  lws_context* context = nullptr;
  lws* wsi = nullptr;
};

namespace {

int callback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, std::size_t len) {
  auto* s = static_cast<WsClient::State*>(lws_context_user(lws_get_context(wsi)));
  switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      if (!s || s->authorization.empty()) break;
      auto** p = static_cast<unsigned char**>(in);
      if (lws_add_http_header_by_token(
              wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
              reinterpret_cast<const unsigned char*>(s->authorization.data()),
              static_cast<int>(s->authorization.size()), p, *p + len))
        return -1;
      break;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
      std::lock_guard lock(s->mu);
      s->connected = true;
      if (s->paused) lws_rx_flow_control(wsi, 0);
      s->cv.notify_all();
      break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      std::lock_guard lock(s->mu);
      s->failed = true;
      s->is_closed = true;
      s->cv.notify_all();
      break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      std::lock_guard lock(s->mu);
      s->partial.append(static_cast<const char*>(in), len);
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        s->inbox.push_back(std::move(s->partial));
        s->partial.clear();
        s->cv.notify_all();
      }
      break;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      std::lock_guard lock(s->mu);
      if (len >= 2) {
        const auto* b = static_cast<const unsigned char*>(in);
        s->close_code = (b[0] << 8) | b[1];
      }
      break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      std::string text;
      {
        std::lock_guard lock(s->mu);
        if (s->close_requested) {
          lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, nullptr, 0);
          return -1;
        }
        if (s->outbox.empty()) break;
        text = std::move(s->outbox.front());
        s->outbox.pop_front();
        if (!s->outbox.empty()) lws_callback_on_writable(wsi);
      }
      std::vector<unsigned char> buf(LWS_PRE + text.size());
      std::memcpy(buf.data() + LWS_PRE, text.data(), text.size());
      if (lws_write(wsi, buf.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT) <
          static_cast<int>(text.size()))
        return -1;
      break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED: {
      std::lock_guard lock(s->mu);
      s->is_closed = true;
      s->wsi = nullptr;
      s->cv.notify_all();
      break;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
      std::lock_guard lock(s->mu);
      if (s->wsi && (!s->outbox.empty() || s->close_requested)) lws_callback_on_writable(s->wsi);
      if (s->wsi) lws_rx_flow_control(s->wsi, s->paused ? 0 : 1);
      break;
    }
    default:
      break;
  }
  return 0;
}

const lws_protocols kProtocols[] = {{"yilian-test", callback, 0, 0, 0, nullptr, 0},
                                    {nullptr, nullptr, 0, 0, 0, nullptr, 0}};

}  // namespace

WsClient::WsClient(std::uint16_t port, std::string authorization, bool read_paused)
    : state_(std::make_unique<State>()) {
  state_->authorization = std::move(authorization);
  state_->paused = read_paused;
  lws_set_log_level(LLL_ERR, nullptr);
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.user = state_.get();
  state_->context = lws_create_context(&info);
  if (!state_->context) {
    state_->failed = state_->is_closed = true;
    return;
  }
  lws_client_connect_info ci;
  std::memset(&ci, 0, sizeof ci);
  ci.context = state_->context;
  ci.address = "127.0.0.1";
  ci.port = port;
  ci.path = "/ws";
  ci.host = "127.0.0.1";
  ci.origin = "127.0.0.1";
  ci.protocol = nullptr;
  ci.local_protocol_name = "yilian-test";
  state_->wsi = lws_client_connect_via_info(&ci);
  if (!state_->wsi) {
    state_->failed = state_->is_closed = true;
    return;
  }
  thread_ = std::thread([s = state_.get()] {
    while (true) {
      {
        std::lock_guard lock(s->mu);
        if (s->stop) break;
      }
      lws_service(s->context, 0);
    }
  });
}

WsClient::~WsClient() {
  if (state_->context) {
    {
      std::lock_guard lock(state_->mu);
      state_->stop = true;
    }
    lws_cancel_service(state_->context);
    if (thread_.joinable()) thread_.join();
    lws_context_destroy(state_->context);
  }
}

bool WsClient::wait_connected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, timeout, [&] { return state_->connected || state_->failed; });
  return state_->connected && !state_->failed;
}

void WsClient::send(std::string text) {
  {
    std::lock_guard lock(state_->mu);
    state_->outbox.push_back(std::move(text));
  }
  if (state_->context) lws_cancel_service(state_->context);
}

std::optional<std::string> WsClient::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, timeout, [&] { return !state_->inbox.empty() || state_->is_closed; });
  if (state_->inbox.empty()) return std::nullopt;
  std::string m = std::move(state_->inbox.front());
  state_->inbox.pop_front();
  return m;
}

std::optional<std::string> WsClient::next_of(const std::string& type,
                                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = next(left);
    if (!m) return std::nullopt;
    auto j = nlohmann::json::parse(*m, nullptr, false);
    if (j.is_object() && j.value("type", "") == type) return m;
  }
}

bool WsClient::closed() const {
  std::lock_guard lock(state_->mu);
  return state_->is_closed;
}

int WsClient::close_code() const {
  std::lock_guard lock(state_->mu);
  return state_->close_code;
}

bool WsClient::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_->mu);
  return state_->cv.wait_for(lock, timeout, [&] { return state_->is_closed; });
}

void WsClient::pause_reading() {
  {
    std::lock_guard lock(state_->mu);
    state_->paused = true;
  }
  if (state_->context) lws_cancel_service(state_->context);
}

void WsClient::resume_reading() {
  {
    std::lock_guard lock(state_->mu);
    state_->paused = false;
  }
  if (state_->context) lws_cancel_service(state_->context);
}

void WsClient::close() {
  {
    std::lock_guard lock(state_->mu);
    state_->close_requested = true;
  }
  if (state_->context) lws_cancel_service(state_->context);
  wait_closed();
}

}  // namespace yilian::testing
