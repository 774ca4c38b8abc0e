// Yilian's own REST endpoints over the study index. Every handler runs behind the
// authentication gate (request.principal is set) and asks identity/policy.h what the
// principal may see; every access is audited.
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/pacs/index.h"

namespace yilian::pacs {

// GET  /api/studies?limit=&offset=            newest first, only what the caller may see
// GET  /api/studies/{StudyInstanceUID}         404 when not visible or not there (no hint which)
// POST /api/studies/{StudyInstanceUID}/shares  share with an institution or a user
void register_study_routes(http::Router& router, pacs::Index& index, identity::AuthService& auth);

}  // namespace yilian::pacs
