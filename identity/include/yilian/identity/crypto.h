// Password hashing (Argon2id) and bearer tokens (random, stored only as SHA-256).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "yilian/common/result.h"

namespace yilian::identity {

struct PasswordParams {
  std::uint32_t time_cost = 2;
  std::uint32_t memory_kib = 19 * 1024;  // OWASP's Argon2id minimum
  std::uint32_t parallelism = 1;
};

// The encoded Argon2id hash ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
Result<std::string> hash_password(std::string_view password, const PasswordParams& params = {});
bool verify_password(std::string_view password, const std::string& encoded);
// At least 10 characters; refuses nothing else (length beats composition rules).
Status check_password_policy(std::string_view password);

// `bytes` random bytes as lowercase hex.
std::string random_hex(std::size_t bytes);
// A new bearer token: 32 random bytes, hex.
std::string new_token();
std::string sha256_hex(std::string_view data);
// HMAC-SHA1 of `data` under `key`, base64: the TURN servers' time-limited credentials (the
// "TURN REST API" coturn checks with use-auth-secret).
std::string hmac_sha1_base64(std::string_view key, std::string_view data);

}  // namespace yilian::identity
