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

// The advanced viewer: the built OHIF Viewer that the build installs beside the executable
// (viewer/ohif/install.mjs), served from the same origin:
//   GET /ohif/{path...}   a file of the installed viewer, read from disk as it is sent (about
//                         200 MB: nothing is held in memory); names with a content hash are
//                         cached for a year, the rest revalidated;
//   GET /ohif/app-config.js   OHIF's configuration, generated here: one DICOMweb data source,
//                         this hub's /dicom-web, and nothing fetched from anywhere else;
//   any other path        a route of the viewer's single-page app: its index.html.
// The viewer's own files hold no patient data; its DICOMweb requests are authenticated by the
// viewer cookie (identity/auth.h). not_found when `root` holds no installed viewer.
Status register_ohif_routes(http::Router& router, const std::filesystem::path& root);
// The generated app-config.js (pure: tested without a server).
std::string ohif_app_config();

}  // namespace yilian::viewer
