#include "yilian/net/json_body.h"

#include <charconv>

namespace yilian::http {

Result<nlohmann::json> json_object_body(const Request& req) {
  if (req.body.empty()) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::invalid_argument, "the request body must be a JSON object");
  }
  return j;
}

Result<std::int64_t> path_id(const Request& req, const char* name, const char* what) {
  auto it = req.params.find(name);
  const std::string s = it == req.params.end() ? std::string() : it->second;
  std::int64_t id = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || id <= 0) {
    return make_error(Errc::invalid_argument, std::string("a ") + what + " is a positive integer");
  }
  return id;
}

std::string json_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace yilian::http
