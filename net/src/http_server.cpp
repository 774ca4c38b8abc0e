#include "server_core.h"

#include <ev.h>
#include <libwebsockets.h>

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <iterator>
#include <memory>
#include <optional>

namespace yilian::net {
namespace {

// One HTTP transaction, owned by the per-session slot lws gives us.
struct Transaction {
  http::Request request;
  http::Response response;
  std::uint64_t id = 0;  // while a worker handles it
  bool head = false;     // HEAD: headers only
  bool ready = false;    // `response` is complete
  std::size_t sent = 0;  // of `response.body`, or of the current piece
  std::size_t piece = 0;
  int fd = -1;  // the current piece's file, open while it is being sent
  bool headers_sent = false;
  bool too_large = false;
  std::optional<Error> spool_failed;  // a spooled body that could not be kept
  bool close_after = false;           // the connection ends with this response
  bool dispatched = false;            // handed to a worker (or answered): never twice
  // The request's Content-Length; the body handed on must be exactly as long.
  std::optional<std::uint64_t> content_length;
  ~Transaction() {
    if (fd >= 0) ::close(fd);
  }
};

constexpr std::size_t kChunk = 32 * 1024;
// The longest URL answered (path and query); longer ones get 414. The request head may be
// longer (kMaxHeadBytes) so that such a URL is read whole and refused with a status.
constexpr std::size_t kMaxUrlBytes = 8 * 1024;
constexpr unsigned kMaxHeadBytes = 48 * 1024;

// Fills `out` with the next bytes of the body (at most kChunk). 0 at the end; -1 when a
// file piece cannot be read (the connection is then closed: the length was promised).
long next_chunk(Transaction& tx, unsigned char* out) {
  http::Response& r = tx.response;
  if (r.pieces.empty()) {
    std::size_t n = std::min(kChunk, r.body.size() - tx.sent);
    std::memcpy(out, r.body.data() + tx.sent, n);
    tx.sent += n;
    return static_cast<long>(n);
  }
  while (tx.piece < r.pieces.size() && tx.sent == r.pieces[tx.piece].size()) {
    if (tx.fd >= 0) ::close(tx.fd);
    tx.fd = -1;
    ++tx.piece;
    tx.sent = 0;
  }
  if (tx.piece == r.pieces.size()) return 0;
  const http::BodyPiece& p = r.pieces[tx.piece];
  std::size_t n = std::min<std::uint64_t>(kChunk, p.size() - tx.sent);
  if (p.file.empty()) {
    std::memcpy(out, p.bytes.data() + tx.sent, n);
  } else {
    if (tx.fd < 0) tx.fd = ::open(p.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (tx.fd < 0) return -1;
    ssize_t got = ::pread(tx.fd, out, n, static_cast<off_t>(p.offset + tx.sent));
    if (got <= 0) return -1;
    n = static_cast<std::size_t>(got);
  }
  tx.sent += n;
  return static_cast<long>(n);
}

struct Session {
  Transaction* tx;  // lws zero-fills the slot; we own what it points to
  // A WebSocket connection: its id, the message being assembled from fragments.
  std::uint64_t ws_conn;
  std::string* rx;
  bool rx_oversized;
};

// The client's address; IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d, and
// the plain form is what the audit records.
std::string peer_of(lws* wsi) {
  char peer[64] = {0};
  lws_get_peer_simple(wsi, peer, sizeof peer);
  std::string p = peer;
  if (p.rfind("::ffff:", 0) == 0 && p.find('.') != std::string::npos) p.erase(0, 7);
  return p;
}

const char* method_of(lws* wsi) {
  struct M {
    lws_token_indexes token;
    const char* name;
  };
  static constexpr M kMethods[] = {
      {WSI_TOKEN_GET_URI, "GET"},     {WSI_TOKEN_POST_URI, "POST"},
      {WSI_TOKEN_PUT_URI, "PUT"},     {WSI_TOKEN_DELETE_URI, "DELETE"},
      {WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
      {WSI_TOKEN_HEAD_URI, "HEAD"}};
  for (const M& m : kMethods) {
    if (lws_hdr_total_length(wsi, m.token) > 0) return m.name;
  }
  return "";
}

void read_query(lws* wsi, http::Request& req) {
  std::string buf;
  for (int n = 0;; ++n) {
    const int size = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, n);
    if (size <= 0) break;
    buf.resize(static_cast<std::size_t>(size) + 1);
    int len = lws_hdr_copy_fragment(wsi, buf.data(), size + 1, WSI_TOKEN_HTTP_URI_ARGS, n);
    if (len <= 0) break;
    std::string_view frag(buf.data(), static_cast<std::size_t>(len));
    std::size_t eq = frag.find('=');
    // lws has already URL-decoded the fragment.
    http::add_query_value(
        req.query, std::string(frag.substr(0, eq)),
        eq == std::string_view::npos ? std::string() : std::string(frag.substr(eq + 1)));
  }
}

// A request header's value; empty when absent or longer than `max` (not used then).
std::string header(lws* wsi, lws_token_indexes token, int max) {
  int n = lws_hdr_total_length(wsi, token);
  if (n <= 0 || n >= max) return {};
  std::string value(static_cast<std::size_t>(n) + 1, '\0');
  if (lws_hdr_copy(wsi, value.data(), n + 1, token) != n) return {};
  value.resize(static_cast<std::size_t>(n));
  return value;
}

// The headers without an lws token that routes read (Request::headers); h1 only, as lws
// reads custom headers of HTTP/1 requests.
void read_custom_headers(lws* wsi, http::Request& req) {
  static constexpr const char* kNames[] = {"tus-resumable:", "upload-offset:", "upload-length:",
                                           "upload-metadata:", "x-http-method-override:"};
  for (const char* name : kNames) {
    const int nlen = static_cast<int>(std::strlen(name));
    const int n = lws_hdr_custom_length(wsi, name, nlen);
    if (n <= 0 || n >= 4096) continue;
    std::string value(static_cast<std::size_t>(n) + 1, '\0');
    if (lws_hdr_custom_copy(wsi, value.data(), n + 1, name, nlen) != n) continue;
    value.resize(static_cast<std::size_t>(n));
    req.headers.emplace(std::string(name, static_cast<std::size_t>(nlen - 1)), std::move(value));
  }
}

const char* status_text_type(const http::Response& r) { return r.content_type.c_str(); }

// Writes the status line and headers; the body follows in WRITEABLE callbacks.
int send_headers_sized(lws* wsi, Transaction& tx, std::uint64_t content_length) {
  unsigned char buf[LWS_PRE + 2048];
  unsigned char* start = buf + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf + sizeof buf - 1;
  if (lws_add_http_common_headers(wsi, static_cast<unsigned int>(tx.response.status),
                                  status_text_type(tx.response), content_length, &p, end))
    return -1;
  // Answers are private patient data unless the handler says otherwise (static assets).
  const bool own_cache_control =
      std::any_of(tx.response.headers.begin(), tx.response.headers.end(),
                  [](const auto& h) { return strcasecmp(h.first.c_str(), "Cache-Control") == 0; });
  static constexpr char kNoStore[] = "no-store";
  if (!own_cache_control &&
      lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                   reinterpret_cast<const unsigned char*>(kNoStore),
                                   sizeof kNoStore - 1, &p, end))
    return -1;
  for (const auto& [name, value] : tx.response.headers) {
    std::string header = name + ":";  // lower case, as HTTP/2 requires
    for (char& ch : header) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(header.c_str()),
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), &p, end))
      return -1;
  }
  if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
  tx.headers_sent = true;
  lws_callback_on_writable(wsi);
  return 0;
}

// Hands the complete request to a worker; the answer comes back through deliver().
int dispatch(lws* wsi, ServerCore& server, Transaction& tx) {
  // lws also reports the completion of an empty body that was already dispatched.
  if (tx.dispatched) return 0;
  tx.dispatched = true;
  tx.head = tx.request.method == "HEAD";
  if (tx.too_large) {
    tx.response = http::Response::error(413, "request body too large");
    tx.ready = true;
    lws_callback_on_writable(wsi);
    return 0;
  }
  if (tx.spool_failed) {
    tx.response = http::Response::from_error(*tx.spool_failed);
    tx.ready = true;
    lws_callback_on_writable(wsi);
    return 0;
  }
  const std::uint64_t received =
      tx.request.spooled ? tx.request.spooled->size() : tx.request.body.size();
  if (tx.content_length.value_or(0) != received) {
    // Never hand on a body that is not the one announced (libwebsockets 4.1 can pass the
    // head of a request that followed on a kept-alive connection as body bytes): refused, and
    // the connection ends, since where the next request starts is not known.
    tx.response = http::Response::error(400, "the request body is " + std::to_string(received) +
                                                 " bytes, its Content-Length says " +
                                                 std::to_string(tx.content_length.value_or(0)) +
                                                 "; send it again");
    tx.response.headers.emplace_back("Connection", "close");
    tx.close_after = true;
    tx.ready = true;
    lws_callback_on_writable(wsi);
    return 0;
  }
  if (tx.request.spooled) {
    if (Status s = tx.request.spooled->finish(); !s) {
      tx.response = http::Response::from_error(s.error());
      tx.ready = true;
      lws_callback_on_writable(wsi);
      return 0;
    }
  }
  tx.id = server.submit(wsi, std::move(tx.request));
  return 0;
}

// Answers `tx` with an error at once, without reading its body, and ends the connection
// (what follows on it is not known to be a next request).
void refuse(lws* wsi, Transaction& tx, int status, std::string message) {
  tx.response = http::Response::error(status, message);
  tx.response.headers.emplace_back("Connection", "close");
  tx.close_after = true;
  tx.dispatched = true;
  tx.ready = true;
  lws_callback_on_writable(wsi);
}

// Sends the headers of a ready response; the body follows in WRITEABLE callbacks.
int start_response(lws* wsi, Transaction& tx) {
  std::uint64_t size = tx.response.body_size();
  if (tx.head) {  // the headers tell the length of the body that is not sent
    tx.response.pieces.clear();
    tx.response.body.clear();
  }
  return send_headers_sized(wsi, tx, size);
}

int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  auto* session = static_cast<Session*>(user);
  lws_context* ctx = lws_get_context(wsi);
  auto* server = ctx ? static_cast<ServerCore*>(lws_context_user(ctx)) : nullptr;

  switch (reason) {
    case LWS_CALLBACK_HTTP: {
      delete session->tx;
      session->tx = new Transaction();
      Transaction& tx = *session->tx;
      const std::size_t url_bytes =
          len +
          static_cast<std::size_t>(std::max(0, lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS)));
      if (url_bytes > kMaxUrlBytes) {
        // Longer than any request of ours needs: refused before anything reads it.
        refuse(wsi, tx, 414, "the URL is longer than " + std::to_string(kMaxUrlBytes) + " bytes");
        return 0;
      }
      tx.request.method = method_of(wsi);
      tx.request.path = static_cast<const char*>(in);
      read_query(wsi, tx.request);
      tx.request.peer = peer_of(wsi);
      tx.request.origin = header(wsi, WSI_TOKEN_ORIGIN, 1024);
      tx.request.content_type = header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, 4096);
      tx.request.accept = header(wsi, WSI_TOKEN_HTTP_ACCEPT, 4096);
      tx.request.range = header(wsi, WSI_TOKEN_HTTP_RANGE, 256);
      tx.request.accept_encoding = header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, 256);
      tx.request.authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, 8192);
      tx.request.cookie = header(wsi, WSI_TOKEN_HTTP_COOKIE, 8192);
      tx.request.if_none_match = header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, 256);
      read_custom_headers(wsi, tx.request);
      if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        // Chunked request bodies are not read here: say so at once instead of waiting for
        // a body that never completes, and close (the chunks are not a next request).
        refuse(wsi, tx, 411, "send the request body with a Content-Length, not chunked");
        return 0;
      }
      if (tx.request.method == "POST" || tx.request.method == "PUT" ||
          tx.request.method == "PATCH") {
        const std::string length = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, 32);
        if (!length.empty()) {
          std::uint64_t n = 0;
          auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
          if (ec != std::errc() || end != length.data() + length.size()) {
            refuse(wsi, tx, 400, "Content-Length is not a number");
            return 0;
          }
          tx.content_length = n;
        }
        const HttpServerOptions& o = server->options();
        if (tx.content_length.value_or(0) > o.max_body_bytes && o.spool && !o.spool_dir.empty() &&
            *tx.content_length <= o.max_spooled_bytes && o.spool(tx.request)) {
          // A large upload the handler takes from a file: kept there as it arrives.
          auto body = http::SpooledBody::create(o.spool_dir);
          if (!body.ok()) {
            refuse(wsi, tx, 503, body.error().message);
            return 0;
          }
          tx.request.spooled = std::move(*body);
        }
        if (tx.content_length.value_or(0) > 0) return 0;  // the body follows in HTTP_BODY callbacks
      }
      return dispatch(wsi, *server, tx);
    }
    case LWS_CALLBACK_HTTP_BODY: {
      if (!session->tx) return -1;
      Transaction& tx = *session->tx;
      if (tx.request.spooled) {
        if (!tx.spool_failed) {
          if (Status s = tx.request.spooled->append(in, len); !s) tx.spool_failed = s.error();
        }
        return 0;
      }
      if (tx.request.body.size() + len > server->options().max_body_bytes) {
        tx.too_large = true;
      } else {
        tx.request.body.append(static_cast<const char*>(in), len);
      }
      return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
      if (!session->tx) return -1;
      return dispatch(wsi, *server, *session->tx);

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      if (server) server->deliver();
      return 0;

    // WebSockets: upgrades on /ws only.
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
      if (!server || !server->ws_enabled()) return -1;
      char uri[16] = {0};
      int n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
      return n == 3 && std::strcmp(uri, "/ws") == 0 ? 0 : -1;
    }
    case LWS_CALLBACK_ESTABLISHED:
      session->rx = new std::string();
      session->rx_oversized = false;
      session->ws_conn =
          server->ws_opened(wsi, header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, 8192), peer_of(wsi));
      return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
      if (session->ws_conn) server->ws_heard(session->ws_conn);
      return 0;
    case LWS_CALLBACK_RECEIVE: {
      if (!session->ws_conn || !session->rx) return -1;
      server->ws_heard(session->ws_conn);
      std::string& rx = *session->rx;
      const std::size_t max = server->ws_options().max_message_bytes;
      if (rx.size() + len > max) {  // keep max+1 bytes: enough to say it was too large
        session->rx_oversized = true;
        if (rx.size() <= max) rx.append(static_cast<const char*>(in), max + 1 - rx.size());
      } else {
        rx.append(static_cast<const char*>(in), len);
      }
      if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        server->ws_received(session->ws_conn, std::move(rx), session->rx_oversized);
        rx = std::string();
        session->rx_oversized = false;
      }
      return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
      if (!session->ws_conn) return 0;
      return server->ws_writable(wsi, session->ws_conn);
    case LWS_CALLBACK_CLOSED:
      if (session && session->ws_conn) {
        server->ws_closed(session->ws_conn);
        session->ws_conn = 0;
      }
      if (session) {
        delete session->rx;
        session->rx = nullptr;
      }
      return 0;

    case LWS_CALLBACK_HTTP_WRITEABLE: {
      if (!session->tx || !session->tx->ready) return 0;
      Transaction& tx = *session->tx;
      if (!tx.headers_sent) {
        if (start_response(wsi, tx)) return -1;
        if (tx.response.body_size() > 0) return 0;  // the body follows
        // Nothing follows the headers: the client has the whole answer and may send its next
        // request at once, so the transaction ends now. (Ended in a later callback, a request
        // arriving in between was handed on by libwebsockets 4.1 with its head as body bytes.)
        const bool close_after = tx.close_after;
        delete session->tx;
        session->tx = nullptr;
        if (close_after || lws_http_transaction_completed(wsi)) return -1;
        return 0;
      }
      unsigned char buf[LWS_PRE + kChunk];
      long n = next_chunk(tx, buf + LWS_PRE);
      if (n < 0) return -1;
      // Look ahead: is this the last chunk? (an empty body ends at once)
      bool last = tx.response.pieces.empty() ? tx.sent == tx.response.body.size()
                                             : tx.piece + 1 >= tx.response.pieces.size() &&
                                                   (tx.piece >= tx.response.pieces.size() ||
                                                    tx.sent == tx.response.pieces[tx.piece].size());
      if (n > 0 && lws_write(wsi, buf + LWS_PRE, static_cast<std::size_t>(n),
                             last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < static_cast<int>(n))
        return -1;
      if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
      }
      const bool close_after = session->tx->close_after;
      delete session->tx;
      session->tx = nullptr;
      if (close_after || lws_http_transaction_completed(wsi)) return -1;
      return 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      if (server) server->forget(wsi);
      if (session) {
        delete session->tx;
        session->tx = nullptr;
      }
      return 0;
    default:
      break;
  }
  return lws_callback_http_dummy(wsi, reason, user, in, len);
}

// A WebSocket client that names no subprotocol gets the first one; "yilian.v1" may be named.
const lws_protocols kProtocols[] = {
    {"http", callback, sizeof(Session), 0, 0, nullptr, 0},
    {"yilian.v1", callback, sizeof(Session), 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

ServerCore::ServerCore(HttpServerOptions options, HttpService service)
    : options_(std::move(options)), handler_(std::move(service)) {}

std::uint64_t ServerCore::submit(lws* wsi, http::Request request) {
  const std::uint64_t id = next_id_++;
  waiting_[id] = wsi;
  {
    std::lock_guard lock(jobs_mu_);
    jobs_.push_back(Job{id, std::move(request)});
  }
  jobs_cv_.notify_one();
  return id;
}

void ServerCore::work() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(jobs_mu_);
      jobs_cv_.wait(lock, [this] { return stopping_workers_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    http::Response response = handler_(job.request);
    {
      std::lock_guard lock(done_mu_);
      done_.push_back(Done{job.id, std::move(response)});
    }
    lws_cancel_service(context_);  // wakes the service thread: deliver()
  }
}

void ServerCore::deliver() {
  if (ws_enabled_) ws_deliver();
  std::vector<Done> done;
  {
    std::lock_guard lock(done_mu_);
    done.swap(done_);
  }
  for (Done& d : done) {
    auto it = waiting_.find(d.id);
    if (it == waiting_.end()) continue;  // the client went away meanwhile
    lws* wsi = it->second;
    waiting_.erase(it);
    auto* session = static_cast<Session*>(lws_wsi_user(wsi));
    if (!session || !session->tx || session->tx->id != d.id) continue;
    session->tx->response = std::move(d.response);
    session->tx->ready = true;
    lws_callback_on_writable(wsi);
  }
}

void ServerCore::forget(lws* wsi) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it = it->second == wsi ? waiting_.erase(it) : std::next(it);
  }
}

ServerCore::~ServerCore() { stop(); }

Status ServerCore::start() {
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = options_.port;
  info.iface = options_.bind_address.empty() ? nullptr : options_.bind_address.c_str();
  info.protocols = kProtocols;
  info.user = this;
  info.timeout_secs = 30;
  info.max_http_header_data2 = kMaxHeadBytes;
  // A libev loop (epoll) of our own: waiting costs nothing per idle socket, where poll() walks
  // all of them on every wake-up, which thousands of open WebSockets make expensive.
  loop_ = ev_loop_new(EVFLAG_AUTO);
  if (!loop_) return make_error(Errc::unavailable, "cannot create the event loop");
  void* loops[] = {loop_};
  info.options |= LWS_SERVER_OPTION_LIBEV;
  info.foreign_loops = loops;
  // No lws retry/idle policy: its per-connection validity timer is re-inserted into a sorted
  // list on every frame, O(connections) each time. Silent WebSockets are found by
  // ws_check_idle() instead.
  info.retry_and_idle_policy = nullptr;
  if (!options_.tls_cert.empty()) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = options_.tls_cert.c_str();
    info.ssl_private_key_filepath = options_.tls_key.c_str();
  }
  context_ = lws_create_context(&info);
  if (!context_) {
    ev_loop_destroy(loop_);
    loop_ = nullptr;
    return make_error(Errc::unavailable,
                      "cannot listen for HTTP on port " + std::to_string(options_.port));
  }
  {
    int port = lws_get_vhost_listen_port(lws_get_vhost_by_name(context_, "default"));
    bound_port_ = port > 0 ? static_cast<std::uint16_t>(port) : options_.port;
  }
  for (unsigned i = 0; i < std::max(1u, options_.worker_threads); ++i) {
    workers_.emplace_back([this] { work(); });
  }
  // The service thread runs the loop; stop() wakes it through this watcher, which ends it.
  stop_watcher_ = std::make_unique<ev_async>();
  ev_async_init(stop_watcher_.get(),
                [](struct ev_loop* loop, ev_async*, int) { ev_break(loop, EVBREAK_ALL); });
  ev_async_start(loop_, stop_watcher_.get());
  if (ws_enabled_) {
    idle_watcher_ = std::make_unique<ev_timer>();
    ev_timer_init(
        idle_watcher_.get(),
        [](struct ev_loop*, ev_timer* w, int) {
          static_cast<ServerCore*>(w->data)->ws_check_idle();
        },
        1.0, 1.0);
    idle_watcher_->data = this;
    ev_timer_start(loop_, idle_watcher_.get());
  }
  service_ = std::thread([this] { ev_run(loop_, 0); });
  return Status::Ok();
}

void ServerCore::stop() {
  if (!context_) return;
  {
    std::lock_guard lock(jobs_mu_);
    stopping_workers_ = true;
  }
  jobs_cv_.notify_all();
  for (std::thread& t : workers_) t.join();  // each finishes the request it holds
  workers_.clear();
  ev_async_send(loop_, stop_watcher_.get());
  if (service_.joinable()) service_.join();
  // The service thread has ended: lws closes its sockets, the loop runs until they are gone.
  ev_async_stop(loop_, stop_watcher_.get());
  if (idle_watcher_) ev_timer_stop(loop_, idle_watcher_.get());
  lws_context_destroy(context_);
  context_ = nullptr;
  ev_run(loop_, 0);
  ev_loop_destroy(loop_);
  loop_ = nullptr;
}

void log_errors_only() { lws_set_log_level(LLL_ERR, nullptr); }

HttpServer::HttpServer(HttpServerOptions options, HttpService service)
    : core_(std::make_unique<ServerCore>(std::move(options), std::move(service))) {}
HttpServer::~HttpServer() = default;
void HttpServer::enable_websockets(WsHandler handler, WsOptions options) {
  core_->enable_websockets(std::move(handler), options);
}
Status HttpServer::start() { return core_->start(); }
std::uint16_t HttpServer::port() const { return core_->port(); }
void HttpServer::stop() { core_->stop(); }
void HttpServer::ws_send(std::uint64_t conn, std::string text) {
  core_->ws_send(conn, std::move(text));
}
void HttpServer::ws_close(std::uint64_t conn, int code, std::string reason) {
  core_->ws_close(conn, code, std::move(reason));
}
WsCounters HttpServer::ws_counters() const { return core_->ws_counters(); }

}  // namespace yilian::net
