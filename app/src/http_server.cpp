#include "http_server.h"

#include <libwebsockets.h>

#include <cctype>
#include <cstring>
#include <memory>

namespace yilian::app {
namespace {

// One HTTP transaction, owned by the per-session slot lws gives us.
struct Transaction {
  http::Request request;
  http::Response response;
  std::size_t sent = 0;
  bool headers_sent = false;
  bool too_large = false;
};

struct Session {
  Transaction* tx;  // lws zero-fills the slot; we own what it points to
};

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
  char buf[1024];
  for (int n = 0;; ++n) {
    int len = lws_hdr_copy_fragment(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_URI_ARGS, n);
    if (len <= 0) break;
    std::string_view frag(buf, static_cast<std::size_t>(len));
    std::size_t eq = frag.find('=');
    // lws has already URL-decoded the fragment.
    req.query.emplace(std::string(frag.substr(0, eq)), eq == std::string_view::npos
                                                           ? std::string()
                                                           : std::string(frag.substr(eq + 1)));
  }
}

const char* status_text_type(const http::Response& r) { return r.content_type.c_str(); }

// Writes the status line and headers; the body follows in WRITEABLE callbacks.
int send_headers(lws* wsi, Transaction& tx) {
  unsigned char buf[LWS_PRE + 2048];
  unsigned char* start = buf + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = buf + sizeof buf - 1;
  if (lws_add_http_common_headers(wsi, static_cast<unsigned int>(tx.response.status),
                                  status_text_type(tx.response), tx.response.body.size(), &p, end))
    return -1;
  static constexpr char kNoStore[] = "no-store";
  if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
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

int dispatch(lws* wsi, HttpServer& server, Transaction& tx) {
  if (tx.too_large) {
    tx.response = http::Response::error(413, "payload_too_large", "request body too large");
  } else {
    tx.response = server.handle(tx.request);
  }
  if (tx.request.method == "HEAD") tx.response.body.clear();
  return send_headers(wsi, tx);
}

int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
  auto* session = static_cast<Session*>(user);
  lws_context* ctx = lws_get_context(wsi);
  auto* server = ctx ? static_cast<HttpServer*>(lws_context_user(ctx)) : nullptr;

  switch (reason) {
    case LWS_CALLBACK_HTTP: {
      delete session->tx;
      session->tx = new Transaction();
      Transaction& tx = *session->tx;
      tx.request.method = method_of(wsi);
      tx.request.path = static_cast<const char*>(in);
      read_query(wsi, tx.request);
      char peer[64] = {0};
      lws_get_peer_simple(wsi, peer, sizeof peer);
      tx.request.peer = peer;
      // IPv4 clients of a dual-stack socket appear as ::ffff:a.b.c.d; audit the plain form.
      if (tx.request.peer.rfind("::ffff:", 0) == 0 &&
          tx.request.peer.find('.') != std::string::npos)
        tx.request.peer.erase(0, 7);
      if (int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN); n > 0 && n < 1024) {
        std::string origin(static_cast<std::size_t>(n) + 1, '\0');
        if (lws_hdr_copy(wsi, origin.data(), n + 1, WSI_TOKEN_ORIGIN) == n) {
          origin.resize(static_cast<std::size_t>(n));
          tx.request.origin = std::move(origin);
        }
      }
      if (int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE); n > 0 && n < 4096) {
        std::string ct(static_cast<std::size_t>(n) + 1, '\0');
        if (lws_hdr_copy(wsi, ct.data(), n + 1, WSI_TOKEN_HTTP_CONTENT_TYPE) == n) {
          ct.resize(static_cast<std::size_t>(n));
          tx.request.content_type = std::move(ct);
        }
      }
      if (int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_ACCEPT); n > 0 && n < 4096) {
        std::string accept(static_cast<std::size_t>(n) + 1, '\0');
        if (lws_hdr_copy(wsi, accept.data(), n + 1, WSI_TOKEN_HTTP_ACCEPT) == n) {
          accept.resize(static_cast<std::size_t>(n));
          tx.request.accept = std::move(accept);
        }
      }
      if (int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION); n > 0 && n < 8192) {
        std::string auth(static_cast<std::size_t>(n) + 1, '\0');
        if (lws_hdr_copy(wsi, auth.data(), n + 1, WSI_TOKEN_HTTP_AUTHORIZATION) == n) {
          auth.resize(static_cast<std::size_t>(n));
          tx.request.authorization = std::move(auth);
        }
      }
      if (tx.request.method == "POST" || tx.request.method == "PUT" ||
          tx.request.method == "PATCH") {
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
            lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
          return 0;  // the body follows in HTTP_BODY callbacks
      }
      return dispatch(wsi, *server, tx);
    }
    case LWS_CALLBACK_HTTP_BODY: {
      if (!session->tx) return -1;
      Transaction& tx = *session->tx;
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

    case LWS_CALLBACK_HTTP_WRITEABLE: {
      if (!session->tx || !session->tx->headers_sent) return 0;
      Transaction& tx = *session->tx;
      const std::string& body = tx.response.body;
      constexpr std::size_t kChunk = 32 * 1024;
      std::size_t n = std::min(kChunk, body.size() - tx.sent);
      if (n > 0) {
        std::unique_ptr<unsigned char[]> buf(new unsigned char[LWS_PRE + n]);
        std::memcpy(buf.get() + LWS_PRE, body.data() + tx.sent, n);
        bool last = tx.sent + n == body.size();
        if (lws_write(wsi, buf.get() + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
            static_cast<int>(n))
          return -1;
        tx.sent += n;
      }
      if (tx.sent < body.size()) {
        lws_callback_on_writable(wsi);
        return 0;
      }
      delete session->tx;
      session->tx = nullptr;
      if (lws_http_transaction_completed(wsi)) return -1;
      return 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
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

const lws_protocols kProtocols[] = {
    {"http", callback, sizeof(Session), 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, HttpService service)
    : options_(std::move(options)), handler_(std::move(service)) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = options_.port;
  info.iface = options_.bind_address.empty() ? nullptr : options_.bind_address.c_str();
  info.protocols = kProtocols;
  info.user = this;
  info.timeout_secs = 30;
  if (!options_.tls_cert.empty()) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = options_.tls_cert.c_str();
    info.ssl_private_key_filepath = options_.tls_key.c_str();
  }
  context_ = lws_create_context(&info);
  if (!context_) {
    return make_error(Errc::unavailable,
                      "cannot listen for HTTP on port " + std::to_string(options_.port));
  }
  service_ = std::thread([this] {
    while (!stop_.load()) {
      if (lws_service(context_, 0) < 0) break;
    }
  });
  return Status::Ok();
}

void HttpServer::stop() {
  if (!context_) return;
  stop_.store(true);
  lws_cancel_service(context_);
  if (service_.joinable()) service_.join();
  lws_context_destroy(context_);
  context_ = nullptr;
}

}  // namespace yilian::app
