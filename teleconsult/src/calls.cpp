#include "yilian/teleconsult/calls.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/crypto.h"
#include "yilian/storage/clock.h"

namespace yilian::teleconsult {

std::vector<IceServer> ice_servers(const CallOptions& options, std::string_view user,
                                   std::int64_t now_unix) {
  std::vector<IceServer> out;
  if (!options.stun.empty()) out.push_back({options.stun, {}, {}});
  if (!options.turn.empty() && !options.turn_secret.empty()) {
    const std::int64_t expiry = now_unix + std::int64_t{options.turn_credential_hours} * 3600;
    std::string username = std::to_string(expiry) + ":" + std::string(user);
    std::string credential = identity::hmac_sha1_base64(options.turn_secret, username);
    out.push_back({options.turn, std::move(username), std::move(credential)});
  }
  return out;
}

bool is_ice_url(std::string_view url, bool turn) {
  const char* schemes[2][2] = {{"stun:", "stuns:"}, {"turn:", "turns:"}};
  std::size_t rest = 0;
  for (const char* scheme : schemes[turn ? 1 : 0]) {
    const std::string_view s(scheme);
    if (url.substr(0, s.size()) == s) rest = s.size();
  }
  if (rest == 0 || url.size() == rest || url.size() > 256) return false;
  return std::none_of(url.begin(), url.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '"';
  });
}

void register_call_routes(http::Router& router, const CallOptions& options,
                          identity::AuthService& auth) {
  router.add("GET", "/api/calls/ice-servers", [&options, &auth](const http::Request& req) {
    const auto now = storage::parse_iso8601(auth.now());
    const std::int64_t now_unix =
        now ? std::chrono::duration_cast<std::chrono::seconds>(now->time_since_epoch()).count() : 0;
    nlohmann::json list = nlohmann::json::array();
    for (const IceServer& s : ice_servers(options, req.principal->username, now_unix)) {
      nlohmann::json j = {{"urls", s.urls}};
      if (!s.username.empty()) {
        j["username"] = s.username;
        j["credential"] = s.credential;
      }
      list.push_back(std::move(j));
    }
    nlohmann::json body = {{"iceServers", std::move(list)}};
    if (!options.turn.empty() && now) {
      body["expiresAt"] =
          storage::to_iso8601(*now + std::chrono::hours(options.turn_credential_hours));
    }
    return http::Response::json(200, json_text(body));
  });
}

}  // namespace yilian::teleconsult
