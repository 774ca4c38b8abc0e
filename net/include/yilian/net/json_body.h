// Request helpers shared by the REST modules: a JSON object body, a numeric path id.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "yilian/common/result.h"
#include "yilian/net/http.h"

namespace yilian::http {

// The body as a JSON object ({} when empty); invalid_argument otherwise.
Result<nlohmann::json> json_object_body(const Request& req);
// The path parameter `name` as a positive integer; invalid_argument naming `what` otherwise.
Result<std::int64_t> path_id(const Request& req, const char* name, const char* what);
// A string member, or "" when absent or not a string.
std::string json_string(const nlohmann::json& j, const char* key);

}  // namespace yilian::http
