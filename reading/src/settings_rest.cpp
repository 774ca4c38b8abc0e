#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/identity/rest.h"
#include "yilian/net/json_body.h"
#include "yilian/reading/worklist_rest.h"

namespace yilian::reading {

using http::Request;
using http::Response;
using nlohmann::json;

void register_queue_settings_routes(http::Router& router, ReadingQueue& queue,
                                    identity::AuthService& auth, std::set<std::string> file_keys) {
  router.add("GET", "/api/admin/settings/queue", [&queue, &auth, file_keys](const Request& req) {
    if (auto no = identity::refuse_non_admin(auth, req, "setting.list", "setting")) return *no;
    auto rows = queue.store().queue_settings();
    if (!rows.ok()) return Response::from_error(rows.error());
    const auto now = queue.rules();
    json list = json::array();
    for (const std::string& key : queue_setting_keys()) {
      json item = {{"key", key},
                   {"value", queue_setting(*now, key)},
                   {"fileValue", queue_setting(queue.file_rules(), key)},
                   {"source", file_keys.count(key) ? "file" : "default"},
                   {"changedBy", nullptr},
                   {"changedAt", nullptr}};
      for (const QueueSettingRow& row : *rows) {
        if (row.key != key) continue;
        item["source"] = "screen";
        item["changedBy"] = row.changed_by;
        item["changedAt"] = row.changed_at;
      }
      list.push_back(std::move(item));
    }
    return Response::json(200, json_text(json{{"settings", list}}));
  });

  router.add("PUT", "/api/admin/settings/queue/{key}", [&queue, &auth](const Request& req) {
    if (auto no = identity::refuse_non_admin(auth, req, "setting.change", "setting")) return *no;
    const std::string& key = req.params.at("key");
    auto body = http::json_object_body(req);
    if (!body.ok()) return Response::from_error(body.error());
    auto value = body->find("value");
    if (value == body->end()) return Response::error(400, "value is required");
    Status s = queue.change_setting(key, *value, req.principal->username);
    auth.audit(req, "setting.change", "setting", "queue." + key, s.ok() ? "ok" : "failed",
               s.ok() ? clip_utf8(value->dump(), 1500) : s.error().message);
    if (!s) return Response::from_error(s.error());
    return Response::json(
        200, json_text(json{{"key", key}, {"value", queue_setting(*queue.rules(), key)}}));
  });

  router.add("DELETE", "/api/admin/settings/queue/{key}", [&queue, &auth](const Request& req) {
    if (auto no = identity::refuse_non_admin(auth, req, "setting.reset", "setting")) return *no;
    const std::string& key = req.params.at("key");
    Status s = queue.reset_setting(key);
    auth.audit(req, "setting.reset", "setting", "queue." + key, s.ok() ? "ok" : "failed",
               s.ok() ? "back to the configuration file's value" : s.error().message);
    if (!s) return Response::from_error(s.error());
    return Response::json(
        200, json_text(json{{"key", key}, {"value", queue_setting(*queue.rules(), key)}}));
  });
}

}  // namespace yilian::reading
