// DICOMweb (PS3.18) under /dicom-web/. Implemented so far: WADO-RS rendered resources.
//   GET /dicom-web/studies/{study}/series/{series}/instances/{instance}/rendered
//   GET .../instances/{instance}/frames/{frame}/rendered
//   GET .../instances/{instance}/thumbnail
// Query parameters: window=center,width[,function] (function "linear" only), viewport=w,h,
// quality=1..100; Accept: image/jpeg (default) or image/png.
#pragma once

#include "yilian/common/http.h"
#include "yilian/identity/auth.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/index.h"

namespace yilian::pacs {

void register_dicomweb_routes(http::Router& router, storage::Index& index,
                              storage::BlobStore& blobs, identity::AuthService& auth);

}  // namespace yilian::pacs
