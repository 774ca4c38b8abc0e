// Administration endpoints that look at the running hub as a whole rather than one module:
// the system page (disk, database size, last backup) and the C-ECHO test of a modality.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "config.h"
#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/reading/queue_store.h"
#include "yilian/storage/database.h"

namespace yilian::app {

struct SystemFacts {
  std::filesystem::path data;  // the data directory (disk space, SQLite files, last backup)
  std::filesystem::path blobs;
  std::string version;
  std::string started_at;
  std::string ae_title;  // the hub's own, the calling AE title of an echo
  std::vector<DicomPeerConfig> peers;
};

// Admin only: GET /api/admin/system, POST /api/admin/dicom-echo.
void register_admin_system_routes(http::Router& router, identity::AuthService& auth,
                                  storage::Database& database, reading::QueueStore& queue,
                                  SystemFacts facts);

}  // namespace yilian::app
