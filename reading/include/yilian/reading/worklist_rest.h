// REST endpoints of the reading queue (see docs/API.md, "Reading queue").
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"
#include "yilian/reading/reading_queue.h"

namespace yilian::reading {

// Whether a code names a statement of the ECG statement catalogue; a report that proposes or
// signs any other code is refused (400). Empty: codes are checked for their form only.
using StatementKnown = std::function<bool(std::string_view code)>;

void register_worklist_routes(http::Router& router, ReadingQueue& queue,
                              identity::AuthService& auth, StatementKnown statement_known = {});

// Admin only: GET /api/admin/settings/queue, PUT and DELETE /api/admin/settings/queue/{key}.
// `file_keys`: the [queue] keys the configuration file sets (a setting's source is "screen"
// when set there, else "file" when the file sets it, else "default").
void register_queue_settings_routes(http::Router& router, ReadingQueue& queue,
                                    identity::AuthService& auth, std::set<std::string> file_keys);

}  // namespace yilian::reading
