// DICOMweb (PS3.18) under /dicom-web/: STOW-RS, QIDO-RS and WADO-RS (wado.h), each
// limited by the study access rules. See docs/API.md for the conformance statement.
//   POST /studies, /studies/{study}                      STOW-RS (multipart/related)
//   GET /studies, /series, /instances                     QIDO-RS, and within a study/series
//   GET /studies/{study}[/series/{series}[/instances/{instance}]]   retrieve, .../metadata
//   GET .../instances/{instance}/frames/{list}, /bulkdata/{tag}, /rendered, /thumbnail
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/frame_index.h"
#include "yilian/pacs/index.h"
#include "yilian/pacs/ingest.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/disk_cache.h"

namespace yilian::pacs {

// `cache` keeps rendered frames, cine videos and series metadata (derived data); `frames`
// where each frame lies in its stored file (frames served as stored).
void register_dicomweb_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                              Ingestor& ingestor, identity::AuthService& auth,
                              storage::DiskCache& cache, FrameIndexCache& frames);

// Splits a multipart/related or multipart/form-data body; `content_type` is the request's
// Content-Type (its boundary parameter is used). Each part: its Content-Type, the file name
// its Content-Disposition gives (form uploads), and its bytes.
struct BodyPart {
  std::string content_type;
  std::string filename;
  std::string_view bytes;
};
Result<std::vector<BodyPart>> split_multipart(const std::string& content_type,
                                              std::string_view body);

}  // namespace yilian::pacs
