// The /ws message protocol, version 1: JSON text frames, each an object with a `type`.
// Parsing and validation only (no I/O): a message either parses into an Inbound whose fields
// the hub may rely on, or yields the error the client is told. See docs/API.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "yilian/common/result.h"

namespace yilian::teleconsult::protocol {

inline constexpr int kVersion = 1;
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;  // a frame larger is refused
inline constexpr std::size_t kMaxChatBytes = 8000;
inline constexpr std::size_t kMaxStateBytes = 16 * 1024;  // view state, annotation, rtc data
inline constexpr std::size_t kMaxAttachments = 10;
inline constexpr std::int64_t kReplayPage = 500;  // messages replayed per join/history

enum class Type {
  hello,       // {token}: authenticate (unless the upgrade carried Authorization: Bearer)
  join,        // {consult, afterSeq}: enter the room; missed messages are replayed
  leave,       // {consult}
  chat,        // {consult, text, clientId?, attachments?}
  history,     // {consult, afterSeq}: the next page of a long replay
  receipt,     // {consult, delivered?, read?}: delivery/read acknowledgements up to a seq
  typing,      // {consult, active}
  presence,    // {status: online|away}
  drive,       // {consult}: take the shared view's lead
  view,        // {consult, state}: the driver's view (study, series, frame, window, zoom...)
  annotation,  // {consult, annotation}: save an annotation
  rtc,         // {consult, to, signal: offer|answer|ice|hangup, data}
  ping,        // {} -> pong
  case_join,   // "case.join" {case}: follow an emergency case's clocks
  case_leave,  // "case.leave" {case}
  case_ack,    // "case.ack" {case}: acknowledge an emergency alert (one tap)
  ack,         // {notification}: acknowledge a notification (it is no longer re-sent)
};

struct Inbound {
  Type type = Type::ping;
  std::string type_name;
  std::string ref;  // the client's correlation id, echoed in the answer
  std::int64_t consult = 0;
  std::int64_t target = 0;  // the case (case.*) or notification (ack) id
  nlohmann::json body;      // the whole message, validated for its type
};

// Errors carry the code sent to the client: bad_message, unsupported_version, unknown_type,
// too_large.
struct ProtocolError {
  std::string code, message, ref;
};
struct Parsed {
  std::optional<Inbound> message;
  std::optional<ProtocolError> error;
};
Parsed parse(std::string_view text);

// Server -> client messages.
std::string error(const std::string& code, const std::string& message, const std::string& ref);
std::string make(const std::string& type, nlohmann::json fields);

}  // namespace yilian::teleconsult::protocol
