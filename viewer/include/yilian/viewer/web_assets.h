// The built web front end (viewer/web), served by `yilian serve` from a directory holding
// index.html and assets/:
//   GET /                 index.html: no-cache, and a Content-Security-Policy that keeps the
//                         page to its own origin (no asset is ever fetched from elsewhere)
//   GET /assets/{name}    a built file; names carry a content hash, so cached for a year
// The files are read once, at start. A NAME.gz beside a file goes to clients that accept gzip
// (township links are thin). Paths are not under /api, so no token is needed: the page itself
// holds no patient data.
#pragma once

#include <filesystem>

#include "yilian/common/result.h"
#include "yilian/net/http.h"

namespace yilian::viewer {

// Registers the routes; not_found when `root` has no index.html (the front end is not built).
Status register_web_routes(http::Router& router, const std::filesystem::path& root);

}  // namespace yilian::viewer
