// What the hub's source files share (private to teleconsult).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "yilian/common/principal.h"
#include "yilian/teleconsult/consult_store.h"
#include "yilian/teleconsult/protocol.h"

namespace yilian::teleconsult::hub_detail {

using nlohmann::json;
namespace proto = protocol;

// WebSocket close codes (4000-4999 are the application's).
inline constexpr int kCloseUnauthenticated = 4401;
inline constexpr int kCloseSessionEnded = 4403;
inline constexpr int kCloseTooMany = 4429;  // over the per-user or per-address connection limit
// Pending notifications replayed on each new authenticated connection, newest ones.
inline constexpr int kNotificationsReplayedAtHello = 50;

// What the hub's parts (notifier, emergency cases) send through: the hub's connections.
class Outbox {
 public:
  virtual ~Outbox() = default;
  virtual void send(std::uint64_t conn, std::string text) = 0;
  // Every authenticated connection, with its user.
  virtual void each_user_connection(
      const std::function<void(std::uint64_t conn, const Principal& who)>& f) = 0;
  // To the other nodes (see Hub::set_relay); nothing with one node.
  virtual void relay(const nlohmann::json& envelope) = 0;
};

inline json consult_summary(const teleconsult::ConsultRow& c) {
  return {{"id", c.id},
          {"status", c.status},
          {"urgency", c.urgency},
          {"specialty", c.specialty},
          {"requester", c.requester},
          {"assignee", c.assignee.empty() ? json(nullptr) : json(c.assignee)},
          {"updatedAt", c.updated_at}};
}

inline json chat_json(const teleconsult::ChatMessage& m) {
  json j = {{"consult", m.consult_id}, {"seq", m.seq},
            {"from", m.author},        {"at", m.at},
            {"text", m.text},          {"attachments", json::parse(m.attachments, nullptr, false)}};
  if (!m.client_id.empty()) j["clientId"] = m.client_id;
  return j;
}

// A room's message `text` for the other nodes; `seq`: a chat message's (0: not chat), which
// lets them skip connections whose replay held it.
inline json room_envelope(std::int64_t consult, const std::string& text, std::int64_t seq = 0) {
  json e = {{"k", "room"}, {"id", consult}, {"t", text}};
  if (seq > 0) e["seq"] = seq;
  return e;
}

}  // namespace yilian::teleconsult::hub_detail
