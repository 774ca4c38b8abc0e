#include "yilian/identity/crypto.h"

#include <argon2.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

namespace yilian::identity {
namespace {

std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

void random_bytes(unsigned char* p, std::size_t n) {
  if (RAND_bytes(p, static_cast<int>(n)) != 1) {
    // No entropy means no safe token or salt: never continue with a weak one.
    throw std::runtime_error("the system random generator failed");
  }
}

}  // namespace

Result<std::string> hash_password(std::string_view password, const PasswordParams& params) {
  constexpr std::size_t kSalt = 16, kHash = 32;
  unsigned char salt[kSalt];
  random_bytes(salt, kSalt);
  std::size_t len = argon2_encodedlen(params.time_cost, params.memory_kib, params.parallelism,
                                      kSalt, kHash, Argon2_id);
  std::vector<char> encoded(len);
  int rc = argon2id_hash_encoded(params.time_cost, params.memory_kib, params.parallelism,
                                 password.data(), password.size(), salt, kSalt, kHash,
                                 encoded.data(), encoded.size());
  if (rc != ARGON2_OK) {
    return make_error(Errc::internal,
                      std::string("password hashing failed: ") + argon2_error_message(rc));
  }
  return std::string(encoded.data());
}

bool verify_password(std::string_view password, const std::string& encoded) {
  if (encoded.rfind("$argon2id$", 0) != 0) return false;
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

Status check_password_policy(std::string_view password) {
  if (password.size() < 10) {
    return make_error(Errc::invalid_argument, "a password needs at least 10 characters");
  }
  if (password.size() > 1024) {
    return make_error(Errc::invalid_argument, "a password is at most 1024 characters");
  }
  return Status::Ok();
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  random_bytes(buf.data(), buf.size());
  return to_hex(buf.data(), buf.size());
}

std::string new_token() { return random_hex(32); }

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(md, len);
}

std::string hmac_sha1_base64(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), md, static_cast<int>(len));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace yilian::identity
