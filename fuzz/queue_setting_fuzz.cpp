// The queue settings as JSON from outside: the admin screen's values, and the hub's priority
// rules an edge node takes from its back channel. Whatever the bytes, the rules either take
// the value whole or stay as they were, and what they hold is written back as JSON.
#include <cstdint>
#include <string>

#include "yilian/common/text.h"
#include "yilian/reading/queue_settings.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the key, the rest is the value.
  const auto& keys = yilian::reading::queue_setting_keys();
  const std::string& key = keys[data[0] % keys.size()];
  auto value = nlohmann::json::parse(reinterpret_cast<const char*>(data) + 1,
                                     reinterpret_cast<const char*>(data) + size, nullptr, false);
  if (value.is_discarded()) return 0;
  yilian::reading::QueueRules rules;
  const nlohmann::json before = yilian::reading::queue_setting(rules, key);
  if (!yilian::reading::apply_queue_setting(rules, key, value)) {
    if (yilian::reading::queue_setting(rules, key) != before) __builtin_trap();  // half applied
    return 0;
  }
  const std::string text = yilian::json_text(yilian::reading::queue_setting(rules, key));
  if (!yilian::is_valid_utf8(text)) __builtin_trap();
  // What was taken is taken again as it is.
  yilian::reading::QueueRules again;
  if (!yilian::reading::apply_queue_setting(again, key, yilian::reading::queue_setting(rules, key)))
    __builtin_trap();
  return 0;
}
