// What a consult's video call needs besides the hub's signalling: the ICE servers a browser
// uses to reach the other side across the clinics' NATs. STUN servers are given as configured;
// TURN servers with a credential that expires, made from the secret the TURN server shares
// with the hub (the "TURN REST API" coturn checks with use-auth-secret), so no lasting TURN
// password ever reaches a browser. See docs/API.md, "Video calls".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "yilian/identity/auth.h"
#include "yilian/net/http.h"

namespace yilian::teleconsult {

// [calls] in the configuration file.
struct CallOptions {
  std::vector<std::string> stun;  // "stun:host:port"
  std::vector<std::string> turn;  // "turn:host:port?transport=udp", "turns:host:5349"
  std::string turn_secret;        // coturn's static-auth-secret; required with `turn`
  int turn_credential_hours = 12;
};

struct IceServer {
  std::vector<std::string> urls;
  std::string username, credential;  // TURN only
};

// Pure: the ICE servers for `user` at `now_unix` (seconds): the STUN servers, then the TURN
// servers with username "<expiry>:<user>" (expiry = now + the credential's hours) and credential
// base64(HMAC-SHA1(secret, username)). None configured: none (calls then work within one
// network only).
std::vector<IceServer> ice_servers(const CallOptions& options, std::string_view user,
                                   std::int64_t now_unix);

// Whether a URL is one an RTCPeerConnection takes as an ICE server of that kind: "stun:" or
// "stuns:" for STUN; "turn:" or "turns:" for TURN; a host after the scheme; no spaces.
bool is_ice_url(std::string_view url, bool turn);

// GET /api/calls/ice-servers: for any signed-in user.
void register_call_routes(http::Router& router, const CallOptions& options,
                          identity::AuthService& auth);

}  // namespace yilian::teleconsult
