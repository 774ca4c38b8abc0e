// REST endpoints of the reading queue (see docs/API.md, "Reading queue").
#pragma once

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/reading/reading_queue.h"

namespace yilian::reading {

void register_worklist_routes(http::Router& router, ReadingQueue& queue,
                              identity::AuthService& auth);

}  // namespace yilian::reading
