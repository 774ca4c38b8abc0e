// DICOMweb (PS3.18) under /dicom-web/. Implemented so far: STOW-RS (POST /studies) and the
// WADO-RS rendered resources.
//   POST /dicom-web/studies   multipart/related; type="application/dicom"
//   GET /dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered
//   GET .../instances/{instance}/frames/{frame}/rendered
//   GET .../instances/{instance}/thumbnail
// Query parameters: window=center,width[,function] (function "linear" only), viewport=w,h,
// quality=1..100; Accept: image/jpeg (default) or image/png.
#pragma once

#include "yilian/common/http.h"
#include "yilian/identity/auth.h"
#include "yilian/pacs/ingest.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/disk_cache.h"
#include "yilian/storage/index.h"

namespace yilian::pacs {

// `cache` keeps rendered frames, cine videos and series metadata (derived data).
void register_dicomweb_routes(http::Router& router, storage::Index& index,
                              storage::BlobStore& blobs, Ingestor& ingestor,
                              identity::AuthService& auth, storage::DiskCache& cache);

// Splits a multipart/related body; `content_type` is the request's Content-Type (its
// boundary parameter is used). Each part: its Content-Type and its bytes.
struct BodyPart {
  std::string content_type;
  std::string_view bytes;
};
Result<std::vector<BodyPart>> split_multipart(const std::string& content_type,
                                              std::string_view body);

}  // namespace yilian::pacs
