// The hub's side of edge transfers (/api/edge/v1/, edge credentials only; docs/API.md):
//   GET     /api/edge/v1/whoami              the edge node and its institution
//   OPTIONS /api/edge/v1/uploads             tus discovery (version, extensions, max size)
//   POST    /api/edge/v1/uploads             tus creation: Upload-Length, Upload-Metadata
//   HEAD    /api/edge/v1/uploads/{id}        Upload-Offset: what the hub holds durably
//   PATCH   /api/edge/v1/uploads/{id}        append at Upload-Offset; durable before 204
//   GET     /api/edge/v1/uploads/{id}        state and, once stored, each instance's outcome
//   POST    /api/edge/v1/studies/{uid}/complete   the edge says the study is whole
//   GET     /api/admin/edge-transfers        (administrators) each edge node's uploads here
// An upload's bytes go to <uploads dir>/<id>.part and are synced before its offset is written
// to the index database; when the last byte has arrived, the bundle's instances are ingested
// (the same Ingestor as C-STORE and STOW-RS, filed under the edge's institution) and the file
// is removed. The offset is never ahead of the synced bytes, so a hub restart loses nothing
// acknowledged. An upload left unfinished and untouched for `expiry` (tus expiration: the
// creation and each PATCH answer Upload-Expires) is dropped, row and bytes, at the hub's start
// and at most hourly after; the edge, finding it gone (404), sends the bundle again whole.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/ingest.h"
#include "yilian/storage/database.h"

namespace yilian::edge {

// This module's steps of the index database's schema history.
std::span<const storage::SchemaStep> schema_steps();

struct UploadServiceOptions {
  std::filesystem::path dir;  // where uploads being received are kept (not the temp dir)
  // "The study is complete" from an edge (routes it in the reading queue at once); returns
  // the number of reading tasks it made or has.
  std::function<Result<std::size_t>(const Principal&, const std::string& study_uid)> study_complete;
  // Instances of a study arrived in an upload (the study is not said complete yet): a STAT
  // study gets its reading task now, marked arriving (ReadingQueue::study_arriving).
  std::function<void(const std::string& study_uid)> study_arriving;
  unsigned ingest_threads = 4;  // instances of one bundle ingested side by side
  // An unfinished upload untouched for this long is dropped ([edge] upload_expiry_hours).
  std::chrono::hours expiry{168};
};

class UploadService;

// Creates the service (the directory is made) and registers its routes. The service lives as
// long as the router's handlers may run.
Result<std::shared_ptr<UploadService>> register_upload_routes(http::Router& router,
                                                              storage::Database& db,
                                                              pacs::Ingestor& ingestor,
                                                              identity::AuthService& auth,
                                                              UploadServiceOptions options);

}  // namespace yilian::edge
