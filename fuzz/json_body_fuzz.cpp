// JSON request bodies, and the writer every JSON answer goes through.
#include <cstdint>
#include <string>

#include "yilian/common/text.h"
#include "yilian/net/json_body.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  yilian::http::Request req;
  req.body.assign(reinterpret_cast<const char*>(data), size);
  auto j = yilian::http::json_object_body(req);
  if (j.ok()) {
    std::string text = yilian::json_text(*j);
    if (!yilian::is_valid_utf8(text)) __builtin_trap();
    (void)yilian::http::json_string(*j, "username");
  }
  // Raw bytes as a string value: written without throwing, always valid UTF-8.
  std::string text = yilian::json_text(nlohmann::json{{"v", req.body}});
  if (!yilian::is_valid_utf8(text)) __builtin_trap();
  return 0;
}
