// WADO-RS (PS3.18 10.4): retrieve of studies, series and instances; metadata; frames; bulk
// data; rendered frames and thumbnails (cached); cine video of multi-frame objects.
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/frame_index.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/blob_store.h"
#include "yilian/storage/disk_cache.h"

namespace yilian::pacs {

void register_wado_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                          identity::AuthService& auth, storage::DiskCache& cache,
                          FrameIndexCache& frames);

}  // namespace yilian::pacs
