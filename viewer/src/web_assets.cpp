#include "yilian/viewer/web_assets.h"

#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

namespace yilian::viewer {
namespace {

namespace fs = std::filesystem;

struct Asset {
  std::string content_type;
  std::string bytes;
  std::string gzipped;  // empty when there is no NAME.gz
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string type_of(const fs::path& p) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".map", "application/json"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".woff2", "font/woff2"},
      {".ico", "image/x-icon"}};
  auto it = kTypes.find(p.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

Asset load(const fs::path& p) {
  Asset a{type_of(p), read_file(p), {}};
  fs::path gz = p;
  gz += ".gz";
  std::error_code ec;
  if (fs::is_regular_file(gz, ec)) a.gzipped = read_file(gz);
  return a;
}

bool accepts_gzip(const std::string& accept_encoding) {
  return accept_encoding.find("gzip") != std::string::npos;
}

http::Response answer(const Asset& a, const http::Request& req, const char* cache_control) {
  http::Response r;
  r.status = 200;
  r.content_type = a.content_type;
  const bool gz = !a.gzipped.empty() && accepts_gzip(req.accept_encoding);
  r.body = gz ? a.gzipped : a.bytes;
  r.headers.emplace_back("Cache-Control", cache_control);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (!a.gzipped.empty()) r.headers.emplace_back("Vary", "Accept-Encoding");
  if (gz) r.headers.emplace_back("Content-Encoding", "gzip");
  return r;
}

}  // namespace

Status register_web_routes(http::Router& router, const fs::path& root) {
  std::error_code ec;
  if (!fs::is_regular_file(root / "index.html", ec)) {
    return make_error(Errc::not_found, "no web front end in " + root.string() +
                                           " (index.html missing; it is built with the hub)");
  }
  auto index = std::make_shared<const Asset>(load(root / "index.html"));
  auto assets = std::make_shared<std::map<std::string, Asset>>();
  for (fs::directory_iterator it(root / "assets", ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (!it->is_regular_file(ec) || p.extension() == ".gz") continue;
    (*assets)[p.filename().string()] = load(p);
  }
  router.add("GET", "/", [index](const http::Request& req) {
    http::Response r = answer(*index, req, "no-cache");
    r.headers.emplace_back(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "connect-src 'self' ws: wss:; style-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    return r;
  });
  router.add("GET", "/assets/{name}", [assets](const http::Request& req) {
    auto it = assets->find(req.params.at("name"));
    if (it == assets->end()) return http::Response::error(404, "no such asset");
    return answer(it->second, req, "public, max-age=31536000, immutable");
  });
  return Status::Ok();
}

}  // namespace yilian::viewer
