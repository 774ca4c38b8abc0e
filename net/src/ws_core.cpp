// The WebSocket side of the server core: connections opened and closed on the service thread,
// frames handed to the handler's thread, bounded per-connection send queues, idle pings.
#include <ev.h>
#include <libwebsockets.h>

#include <algorithm>
#include <cstring>

#include "server_core.h"

namespace yilian::net {

void ServerCore::enable_websockets(WsHandler handler, WsOptions options) {
  ws_handler_ = std::move(handler);
  ws_options_ = options;
  ws_enabled_ = true;
}

std::uint64_t ServerCore::ws_opened(lws* wsi, std::string authorization, std::string peer) {
  const std::uint64_t id = next_ws_id_++;
  WsConn& c = ws_conns_[id];
  c.wsi = wsi;
  c.heard = ev_now(loop_);
  {
    std::lock_guard lock(ws_counters_mu_);
    ++ws_counters_.open;
    ++ws_counters_.accepted;
  }
  ws_handler_.opened(id, std::move(authorization), std::move(peer));
  return id;
}

void ServerCore::ws_received(std::uint64_t conn, std::string text, bool oversized) {
  {
    std::lock_guard lock(ws_counters_mu_);
    ++ws_counters_.frames_in;
    if (oversized) ++ws_counters_.oversized;
  }
  ws_handler_.message(conn, std::move(text));
}

void ServerCore::ws_heard(std::uint64_t conn) {
  auto it = ws_conns_.find(conn);
  if (it == ws_conns_.end()) return;
  it->second.heard = ev_now(loop_);
  it->second.pinged = false;
}

void ServerCore::ws_check_idle() {
  const double now = ev_now(loop_);
  std::uint64_t pings = 0, closed = 0;
  for (auto& [id, c] : ws_conns_) {
    if (c.hung_up) continue;
    const double silent = now - c.heard;
    if (silent >= ws_options_.hangup_after_idle_s) {
      // A close frame if the socket still takes one; lws ends the connection either way.
      c.hung_up = true;
      c.queue.clear();
      c.queued_bytes = 0;
      if (!c.close_code) {
        c.close_code = 1001;
        c.close_reason = "no answer to ping";
      }
      lws_set_timeout(c.wsi, PENDING_TIMEOUT_USER_OK, 5);
      lws_callback_on_writable(c.wsi);
      ++closed;
    } else if (silent >= ws_options_.ping_after_idle_s && !c.pinged) {
      c.pinged = true;
      c.ping_due = true;
      lws_callback_on_writable(c.wsi);
      ++pings;
    }
  }
  if (pings || closed) {
    std::lock_guard lock(ws_counters_mu_);
    ws_counters_.pings += pings;
    ws_counters_.idle_closed += closed;
  }
}

void ServerCore::ws_closed(std::uint64_t conn) {
  ws_conns_.erase(conn);
  {
    std::lock_guard lock(ws_counters_mu_);
    --ws_counters_.open;
  }
  ws_handler_.closed(conn);
}

void ServerCore::ws_send(std::uint64_t conn, std::string text) {
  bool wake = false;
  {
    std::lock_guard lock(ws_mu_);
    wake = ws_outbox_.empty();
    ws_outbox_.push_back(WsOut{conn, std::move(text), 0});
  }
  if (wake && context_) lws_cancel_service(context_);
}

void ServerCore::ws_close(std::uint64_t conn, int code, std::string reason) {
  bool wake = false;
  {
    std::lock_guard lock(ws_mu_);
    wake = ws_outbox_.empty();
    ws_outbox_.push_back(WsOut{conn, std::move(reason), code});
  }
  if (wake && context_) lws_cancel_service(context_);
}

WsCounters ServerCore::ws_counters() const {
  std::lock_guard lock(ws_counters_mu_);
  return ws_counters_;
}

// Service thread: moves queued frames to their connections' bounded queues. A connection
// whose queue is full is too slow to follow: it is closed (1008) rather than allowed to hold
// memory or delay anyone; its client reconnects and resumes from its last sequence number.
void ServerCore::ws_deliver() {
  std::vector<WsOut> out;
  {
    std::lock_guard lock(ws_mu_);
    out.swap(ws_outbox_);
  }
  std::uint64_t dropped = 0, peak = 0, sent = 0;
  for (WsOut& o : out) {
    auto it = ws_conns_.find(o.conn);
    if (it == ws_conns_.end()) continue;
    WsConn& c = it->second;
    if (c.close_code) continue;
    if (o.close_code) {
      c.close_code = o.close_code;
      c.close_reason = std::move(o.text);
    } else if (c.queue.size() >= ws_options_.max_queued_messages ||
               c.queued_bytes + o.text.size() > ws_options_.max_queued_bytes) {
      ++dropped;
      c.queue.clear();
      c.queued_bytes = 0;
      c.close_code = 1008;
      c.close_reason = "too slow: send queue full";
    } else {
      c.queued_bytes += o.text.size();
      c.queue.push_back(std::move(o.text));
      peak = std::max<std::uint64_t>(peak, c.queue.size());
      ++sent;
    }
    lws_callback_on_writable(c.wsi);
  }
  if (dropped || peak) {
    std::lock_guard lock(ws_counters_mu_);
    ws_counters_.slow_dropped += dropped;
    ws_counters_.queued_peak = std::max(ws_counters_.queued_peak, peak);
  }
  (void)sent;
}

int ServerCore::ws_writable(lws* wsi, std::uint64_t conn) {
  auto it = ws_conns_.find(conn);
  if (it == ws_conns_.end()) return -1;
  WsConn& c = it->second;
  if (c.ping_due) {
    c.ping_due = false;
    // With a payload: lws hands a pong to the callback only when it carries one.
    unsigned char ping[LWS_PRE + 4] = {};
    std::memcpy(ping + LWS_PRE, "live", 4);
    if (lws_write(wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 4) return -1;
    if (!c.queue.empty() || c.close_code) lws_callback_on_writable(wsi);
    return 0;
  }
  if (!c.queue.empty()) {
    // As many queued frames as the socket takes now (one wake-up per burst, not per frame:
    // a fan-out to thousands of connections costs a system call or two per connection).
    std::uint64_t written = 0;
    std::vector<unsigned char> buf;
    do {
      std::string& text = c.queue.front();
      buf.resize(LWS_PRE + text.size());
      std::memcpy(buf.data() + LWS_PRE, text.data(), text.size());
      if (lws_write(wsi, buf.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT) <
          static_cast<int>(text.size()))
        return -1;
      c.queued_bytes -= text.size();
      c.queue.pop_front();
      ++written;
    } while (!c.queue.empty() && !lws_send_pipe_choked(wsi));
    {
      std::lock_guard lock(ws_counters_mu_);
      ws_counters_.frames_out += written;
    }
    if (!c.queue.empty() || c.close_code) lws_callback_on_writable(wsi);
    return 0;
  }
  if (c.close_code) {
    lws_close_reason(wsi, static_cast<lws_close_status>(c.close_code),
                     reinterpret_cast<unsigned char*>(c.close_reason.data()),
                     c.close_reason.size());
    return -1;
  }
  return 0;
}

}  // namespace yilian::net
