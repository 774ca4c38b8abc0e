// Yilian's own REST endpoints over the study index.
#pragma once

#include "yilian/common/http.h"
#include "yilian/storage/index.h"

namespace yilian::pacs {

// GET /api/studies?limit=&offset=   newest first
// GET /api/studies/{StudyInstanceUID}
void register_study_routes(http::Router& router, storage::Index& index);

}  // namespace yilian::pacs
