// The slide routes of the pathology centre (docs/API.md, "Whole-slide images"):
//   GET /api/slides/{study}/{series}                               the slide: levels, tiling,
//                                                                  pixel spacing, images
//   GET /api/slides/{study}/{series}/tiles/{level}/{column}/{row}  one tile, image/jpeg
//   GET /api/slides/{study}/{series}/images/{label|overview|thumbnail}
// Tiles stored as colour JPEG are sent as stored (byte ranges of the file found by the
// frame index); others are decoded and encoded once. Access: the study read check; opening
// a slide is audited, its tiles (hundreds per minute of viewing) are not.
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/frame_index.h"
#include "yilian/pacs/index.h"
#include "yilian/storage/blob_store.h"

namespace yilian::pathology {

void register_slide_routes(http::Router& router, pacs::Index& index, storage::BlobStore& blobs,
                           identity::AuthService& auth, pacs::FrameIndexCache& frames);

}  // namespace yilian::pathology
