#include "yilian/teleconsult/protocol.h"
#include "yilian/common/text.h"

#include <map>

namespace yilian::teleconsult::protocol {
namespace {

const std::map<std::string, Type, std::less<>> kTypes = {{"hello", Type::hello},
                                                         {"join", Type::join},
                                                         {"leave", Type::leave},
                                                         {"chat", Type::chat},
                                                         {"history", Type::history},
                                                         {"receipt", Type::receipt},
                                                         {"typing", Type::typing},
                                                         {"presence", Type::presence},
                                                         {"drive", Type::drive},
                                                         {"view", Type::view},
                                                         {"annotation", Type::annotation},
                                                         {"rtc", Type::rtc},
                                                         {"ping", Type::ping},
                                                         {"case.join", Type::case_join},
                                                         {"case.leave", Type::case_leave},
                                                         {"case.ack", Type::case_ack},
                                                         {"ack", Type::ack}};

Parsed fail(std::string code, std::string message, std::string ref = {}) {
  Parsed p;
  p.error = ProtocolError{std::move(code), std::move(message), std::move(ref)};
  return p;
}

bool non_negative_int(const nlohmann::json& j, const char* key, bool required) {
  if (!j.contains(key)) return !required;
  return j[key].is_number_integer() && j[key].get<std::int64_t>() >= 0;
}

std::size_t dumped_size(const nlohmann::json& j) { return json_text(j).size(); }

}  // namespace

Parsed parse(std::string_view text) {
  if (text.size() > kMaxMessageBytes) {
    return fail("too_large",
                "messages are limited to " + std::to_string(kMaxMessageBytes) + " bytes");
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("bad_message", "a message is a JSON object");
  std::string ref;
  if (j.contains("ref")) {
    if (!j["ref"].is_string() || j["ref"].get<std::string>().size() > 64)
      return fail("bad_message", "ref is a string of at most 64 characters");
    ref = j["ref"].get<std::string>();
  }
  if (j.contains("v") && j["v"] != kVersion) {
    return fail("unsupported_version", "this server speaks protocol version 1", ref);
  }
  if (!j.contains("type") || !j["type"].is_string())
    return fail("bad_message", "a message needs a string type", ref);
  const std::string type = j["type"].get<std::string>();
  auto it = kTypes.find(type);
  if (it == kTypes.end()) return fail("unknown_type", "unknown message type '" + type + "'", ref);

  Inbound in;
  in.type = it->second;
  in.type_name = type;
  in.ref = ref;
  auto bad = [&](const std::string& why) { return fail("bad_message", type + ": " + why, ref); };
  const bool targets = in.type == Type::case_join || in.type == Type::case_leave ||
                       in.type == Type::case_ack ||
                       in.type == Type::ack;  // a case or a notification, not a consult
  if (targets) {
    const char* key = in.type == Type::ack ? "notification" : "case";
    if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<std::int64_t>() <= 0)
      return bad(std::string(key) + " (a positive integer) is required");
    in.target = j[key].get<std::int64_t>();
  }
  const bool needs_consult =
      !targets && in.type != Type::hello && in.type != Type::presence && in.type != Type::ping;
  if (needs_consult) {
    if (!j.contains("consult") || !j["consult"].is_number_integer() ||
        j["consult"].get<std::int64_t>() <= 0)
      return bad("consult (a positive integer) is required");
    in.consult = j["consult"].get<std::int64_t>();
  }
  switch (in.type) {
    case Type::hello:
      if (j.contains("token") && !j["token"].is_string()) return bad("token is a string");
      break;
    case Type::join:
    case Type::history:
      if (!non_negative_int(j, "afterSeq", false)) return bad("afterSeq is a sequence number");
      break;
    case Type::chat: {
      if (!j.contains("text") || !j["text"].is_string()) return bad("text is required");
      const std::string& t = j["text"].get_ref<const std::string&>();
      if (t.empty() || t.size() > kMaxChatBytes)
        return bad("text must have 1 to " + std::to_string(kMaxChatBytes) + " bytes");
      if (j.contains("clientId") &&
          (!j["clientId"].is_string() || j["clientId"].get<std::string>().empty() ||
           j["clientId"].get<std::string>().size() > 64))
        return bad("clientId is a string of 1 to 64 characters");
      if (j.contains("attachments")) {
        const auto& a = j["attachments"];
        if (!a.is_array() || a.size() > kMaxAttachments)
          return bad("attachments is an array of at most 10 references");
        for (const auto& r : a) {
          if (!r.is_object() || !r.contains("kind") || !r["kind"].is_string() ||
              !r.contains("ref") || !r["ref"].is_string())
            return bad("an attachment is {kind, ref}");
          const std::string kind = r["kind"].get<std::string>();
          if (kind != "study" && kind != "series" && kind != "instance" && kind != "ecg" &&
              kind != "report")
            return bad("attachment kinds are study, series, instance, ecg, report");
          if (r["ref"].get<std::string>().empty() || r["ref"].get<std::string>().size() > 128)
            return bad("an attachment's ref has 1 to 128 characters");
        }
      }
      break;
    }
    case Type::receipt:
      if (!non_negative_int(j, "delivered", false) || !non_negative_int(j, "read", false) ||
          (!j.contains("delivered") && !j.contains("read")))
        return bad("delivered and/or read: sequence numbers");
      break;
    case Type::typing:
      if (!j.contains("active") || !j["active"].is_boolean()) return bad("active is a boolean");
      break;
    case Type::presence:
      if (!j.contains("status") || (j["status"] != "online" && j["status"] != "away"))
        return bad("status is online or away");
      break;
    case Type::view:
      if (!j.contains("state") || !j["state"].is_object()) return bad("state is an object");
      if (dumped_size(j["state"]) > kMaxStateBytes) return bad("state is too large");
      break;
    case Type::annotation:
      if (!j.contains("annotation") || !j["annotation"].is_object() ||
          !j["annotation"].contains("kind") || !j["annotation"]["kind"].is_string())
        return bad("annotation is an object with a kind");
      if (dumped_size(j["annotation"]) > kMaxStateBytes) return bad("annotation is too large");
      break;
    case Type::rtc:
      if (!j.contains("to") || !j["to"].is_string()) return bad("to names the user called");
      if (!j.contains("signal") || (j["signal"] != "offer" && j["signal"] != "answer" &&
                                    j["signal"] != "ice" && j["signal"] != "hangup"))
        return bad("signal is offer, answer, ice or hangup");
      if (j.contains("data") && dumped_size(j["data"]) > kMaxStateBytes)
        return bad("data is too large");
      break;
    case Type::leave:
    case Type::drive:
    case Type::ping:
    case Type::case_join:
    case Type::case_leave:
    case Type::case_ack:
    case Type::ack:
      break;
  }
  in.body = std::move(j);
  Parsed p;
  p.message = std::move(in);
  return p;
}

std::string error(const std::string& code, const std::string& message, const std::string& ref) {
  nlohmann::json j = {{"v", kVersion}, {"type", "error"}, {"code", code}, {"message", message}};
  if (!ref.empty()) j["ref"] = ref;
  return json_text(j);
}

std::string make(const std::string& type, nlohmann::json fields) {
  fields["v"] = kVersion;
  fields["type"] = type;
  return json_text(fields);
}

}  // namespace yilian::teleconsult::protocol
