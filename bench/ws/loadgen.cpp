// WebSocket load generator: N connections to ws://127.0.0.1:PORT/ws in rooms of 4, chat at a
// set total rate, fan-out latency measured at every receiver (the send time travels in the
// message). One lws context on a libev (epoll) loop and one thread; every phase is bounded by a
// deadline. (With lws's default poll() loop the generator would walk all N sockets on every
// wake-up and take most of a core from the server it measures.)
//
// Each connection sends {"type":"hello","token":T} (when a token is given) and
// {"type":"join","consult":ROOM}, then takes part; chat is {"type":"chat","consult":ROOM,
// "text":"<send time, ns>"}. A peer relay that speaks this subset is measured the same way.
//
//   yilian_ws_loadgen --port P --connections 10000 --rate 2000 --seconds 20
//       --rooms-file rooms.txt      (one line per room: "<consult id> <token> <token> ...")
#include <ev.h>
#include <libwebsockets.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Conn {
  lws* wsi = nullptr;
  std::int64_t room = 0;
  std::string token;
  bool established = false, joined = false, closed = false;
  std::deque<std::string> out;
};

struct Load {
  std::vector<Conn> conns;
  std::vector<std::pair<std::int64_t, double>> timeline;  // (send time ns, latency ms)
  std::uint64_t sent = 0, received = 0, errors = 0;
  bool measuring = false;
  std::string join_type = "joined";
};

void queue(Conn& c, std::string text) {
  c.out.push_back(std::move(text));
  if (c.wsi) lws_callback_on_writable(c.wsi);
}

int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  auto* c = static_cast<Conn*>(user ? *static_cast<Conn**>(user) : nullptr);
  auto* load = static_cast<Load*>(lws_context_user(lws_get_context(wsi)));
  switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      if (!c) return -1;
      c->established = true;
      if (!c->token.empty())
        queue(*c, nlohmann::json{{"type", "hello"}, {"token", c->token}}.dump());
      queue(*c, nlohmann::json{{"type", "join"}, {"consult", c->room}}.dump());
      break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
      if (!c) break;
      std::string_view m(static_cast<const char*>(in), len);
      if (m.find("\"type\":\"chat\"") != std::string_view::npos) {
        ++load->received;
        // The text is the sender's clock in ns.
        auto p = m.find("\"text\":\"");
        if (p != std::string_view::npos && load->measuring) {
          const std::int64_t sent = std::atoll(std::string(m.substr(p + 8, 20)).c_str());
          load->timeline.emplace_back(sent, static_cast<double>(now_ns() - sent) / 1e6);
        }
      } else if (m.find("\"type\":\"replayed\"") != std::string_view::npos ||
                 m.find("\"type\":\"joined\"") != std::string_view::npos) {
        c->joined = true;
      } else if (m.find("\"type\":\"error\"") != std::string_view::npos) {
        ++load->errors;
      }
      break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (!c || c->out.empty()) break;
      std::string text = std::move(c->out.front());
      c->out.pop_front();
      std::vector<unsigned char> buf(LWS_PRE + text.size());
      std::memcpy(buf.data() + LWS_PRE, text.data(), text.size());
      if (lws_write(wsi, buf.data() + LWS_PRE, text.size(), LWS_WRITE_TEXT) <
          static_cast<int>(text.size()))
        return -1;
      if (!c->out.empty()) lws_callback_on_writable(wsi);
      break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
      if (c) {
        c->closed = true;
        c->wsi = nullptr;
      }
      break;
    default:
      break;
  }
  return 0;
}

const lws_protocols kProtocols[] = {{"load", callback, sizeof(Conn*), 0, 0, nullptr, 0},
                                    {nullptr, nullptr, 0, 0, 0, nullptr, 0}};

// Wakes the event loop every millisecond (it sleeps until an event otherwise).
struct Ticker {
  lws_sorted_usec_list_t sul;
  lws_context* ctx = nullptr;
};
void tick(lws_sorted_usec_list_t* sul) {
  auto* t = lws_container_of(sul, Ticker, sul);
  lws_sul_schedule(t->ctx, 0, &t->sul, tick, LWS_US_PER_MS);
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"WebSocket fan-out load generator"};
  int port = 0, port2 = 0, connections = 4000, rate = 2000, seconds = 20, server_pid = 0;
  std::string rooms_file, label = "server";
  app.add_option("--port", port)->required();
  app.add_option("--port2", port2,
                 "a second node: every other connection goes there (rooms span both nodes)");
  app.add_option("--connections", connections);
  app.add_option("--rate", rate, "chat messages per second, all connections together");
  app.add_option("--seconds", seconds, "measured sending time");
  app.add_option("--rooms-file", rooms_file,
                 "a line per room: consult id then 4 tokens (none: rooms 1.. without tokens)");
  app.add_option("--server-pid", server_pid, "to read its memory before and after connecting");
  app.add_option("--label", label);
  CLI11_PARSE(app, argc, argv);

  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);

  Load load;
  load.conns.resize(static_cast<std::size_t>(connections));
  {
    std::vector<std::pair<std::int64_t, std::vector<std::string>>> rooms;
    if (!rooms_file.empty()) {
      std::ifstream in(rooms_file);
      std::string line;
      while (std::getline(in, line)) {
        std::istringstream f(line);
        std::int64_t id = 0;
        f >> id;
        std::vector<std::string> tokens;
        for (std::string t; f >> t;) tokens.push_back(t);
        rooms.emplace_back(id, tokens);
      }
    }
    for (std::size_t i = 0; i < load.conns.size(); ++i) {
      const std::size_t r = i / 4;
      if (!rooms.empty()) {
        if (r >= rooms.size()) {
          std::fprintf(stderr, "not enough rooms in %s\n", rooms_file.c_str());
          return 2;
        }
        load.conns[i].room = rooms[r].first;
        const auto& tokens = rooms[r].second;
        load.conns[i].token = tokens.empty() ? "" : tokens[i % 4 % tokens.size()];
      } else {
        load.conns[i].room = static_cast<std::int64_t>(r) + 1;
      }
    }
  }

  lws_set_log_level(LLL_ERR, nullptr);
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = kProtocols;
  info.user = &load;
  info.fd_limit_per_thread = static_cast<unsigned int>(connections + 64);
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  if (!loop) return 2;
  void* loops[] = {loop};
  info.options |= LWS_SERVER_OPTION_LIBEV;
  info.foreign_loops = loops;
  lws_context* ctx = lws_create_context(&info);
  if (!ctx) return 2;
  auto service = [loop] { ev_run(loop, EVRUN_ONCE); };

  Ticker ticker{};
  ticker.ctx = ctx;
  lws_sul_schedule(ctx, 0, &ticker.sul, tick, LWS_US_PER_MS);
  const long rss_before = server_pid ? rss_kib(server_pid) : -1;
  // Connect in waves so the listen backlog is never the limit.
  std::vector<Conn*> slots(load.conns.size());
  const auto connect_deadline = Clock::now() + std::chrono::seconds(120);
  std::size_t next = 0;
  auto all_joined = [&] {
    return std::all_of(load.conns.begin(), load.conns.end(),
                       [](const Conn& c) { return c.joined || c.closed; });
  };
  while (Clock::now() < connect_deadline) {
    std::size_t pending = 0;
    for (std::size_t i = 0; i < next; ++i)
      pending += !load.conns[i].joined && !load.conns[i].closed;
    while (next < load.conns.size() && pending < 200) {
      Conn& c = load.conns[next];
      slots[next] = &c;
      lws_client_connect_info ci;
      std::memset(&ci, 0, sizeof ci);
      ci.context = ctx;
      ci.address = "127.0.0.1";
      ci.port = (port2 != 0 && next % 2 == 1) ? port2 : port;
      ci.path = "/ws";
      ci.host = "127.0.0.1";
      ci.origin = "127.0.0.1";
      ci.local_protocol_name = "load";
      ci.userdata = &slots[next];
      ci.pwsi = &c.wsi;
      if (!lws_client_connect_via_info(&ci)) c.closed = true;
      ++next;
      ++pending;
    }
    service();
    if (next == load.conns.size() && all_joined()) break;
  }
  std::size_t held = 0;
  for (const Conn& c : load.conns) held += c.joined && !c.closed;
  // Let the server settle, then read its memory.
  for (auto until = Clock::now() + std::chrono::seconds(2); Clock::now() < until;) service();
  const long rss_after = server_pid ? rss_kib(server_pid) : -1;

  // Send at the rate, spread evenly over the live connections.
  load.measuring = true;
  std::fprintf(stderr, "%s: measuring\n", label.c_str());  // a mark to start a profiler on
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  const double interval_ns = 1e9 / std::max(1, rate);
  std::uint64_t due = 0;
  std::size_t cursor = 0;
  while (Clock::now() < end) {
    const double elapsed_ns = static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    const auto should = static_cast<std::uint64_t>(elapsed_ns / interval_ns);
    for (; due < should; ++due) {
      for (std::size_t tries = 0; tries < load.conns.size(); ++tries) {
        Conn& c = load.conns[cursor];
        cursor = (cursor + 1) % load.conns.size();
        if (!c.joined || c.closed) continue;
        queue(c, "{\"type\":\"chat\",\"consult\":" + std::to_string(c.room) + ",\"text\":\"" +
                     std::to_string(now_ns()) + "\"}");
        ++load.sent;
        break;
      }
    }
    service();
  }
  // Drain what is in flight (bounded).
  const std::uint64_t expected = load.sent * 4;
  for (auto until = Clock::now() + std::chrono::seconds(10);
       Clock::now() < until && load.received < expected;)
    service();
  std::size_t still = 0;
  for (const Conn& c : load.conns) still += c.joined && !c.closed;
  lws_sul_cancel(&ticker.sul);
  lws_context_destroy(ctx);
  ev_run(loop, 0);  // lws closes its sockets on the loop
  ev_loop_destroy(loop);

  // All latencies, and those of each second of sending (where the tail comes from: p50/p99/max
  // per second on stderr).
  std::sort(load.timeline.begin(), load.timeline.end());
  std::vector<double> latencies_ms;
  std::vector<std::vector<double>> secs;
  for (const auto& [sent_ns, ms] : load.timeline) {
    latencies_ms.push_back(ms);
    const auto s =
        static_cast<std::size_t>((sent_ns - load.timeline.front().first) / 1'000'000'000);
    if (secs.size() <= s) secs.resize(s + 1);
    secs[s].push_back(ms);
  }
  for (std::size_t s = 0; s < secs.size(); ++s) {
    std::fprintf(stderr, "%s second %zu: %zu receipts, p50 %.2f p99 %.2f max %.1f ms\n",
                 label.c_str(), s, secs[s].size(), percentile(secs[s], 0.5),
                 percentile(secs[s], 0.99), percentile(secs[s], 1.0));
  }
  nlohmann::json out = {{"label", label},
                        {"connections", connections},
                        {"held", held},
                        {"heldAtEnd", still},
                        {"rate", rate},
                        {"seconds", seconds},
                        {"sent", load.sent},
                        {"received", load.received},
                        {"expected", expected},
                        {"errors", load.errors},
                        {"p50_ms", percentile(latencies_ms, 0.50)},
                        {"p99_ms", percentile(latencies_ms, 0.99)},
                        {"max_ms", percentile(latencies_ms, 1.0)},
                        {"serverRssBeforeKiB", rss_before},
                        {"serverRssAfterKiB", rss_after},
                        {"serverKiBPerConnection",
                         rss_before > 0 && held > 0 ? static_cast<double>(rss_after - rss_before) /
                                                          static_cast<double>(held)
                                                    : 0.0}};
  std::printf("%s\n", out.dump().c_str());
  return held == static_cast<std::size_t>(connections) ? 0 : 1;
}
