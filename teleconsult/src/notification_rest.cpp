#include <limits>

#include <nlohmann/json.hpp>

#include "yilian/common/text.h"
#include "yilian/net/json_body.h"
#include "yilian/teleconsult/consult_rest.h"

namespace yilian::teleconsult {
namespace {

using http::Request;
using http::Response;
using nlohmann::json;

void audit(identity::AuthService& auth, const Request& req, const std::string& action,
           const std::string& id, const std::string& outcome, const std::string& detail = {}) {
  auth.audit(req, action, "notification", id, outcome, detail);
}

}  // namespace

void register_notification_routes(http::Router& router, teleconsult::NotificationStore& store,
                                  identity::AuthService& auth) {
  router.add("GET", "/api/notifications", [&store, &auth](const Request& req) {
    const std::int64_t user = req.principal->user_id;
    auto before = req.int_query("before", 0, std::numeric_limits<std::int64_t>::max());
    if (!before.ok()) return Response::from_error(before.error());
    auto limit = req.int_query("limit", 50, 500);
    if (!limit.ok()) return Response::from_error(limit.error());
    auto count = store.count_pending_notifications(user);
    if (!count.ok()) return Response::from_error(count.error());
    auto rows = store.pending_notifications(user, static_cast<int>(*limit), *before);
    if (!rows.ok()) return Response::from_error(rows.error());
    json list = json::array();
    for (const auto& n : *rows) {
      list.push_back({{"id", n.id},
                      {"kind", n.kind},
                      {"at", n.created_at},
                      {"payload", json::parse(n.payload, nullptr, false)}});
    }
    audit(auth, req, "notification.list", "", "ok", std::to_string(rows->size()));
    return Response::json(200, json_text(json{{"pending", *count}, {"notifications", list}}));
  });

  router.add("POST", "/api/notifications/{id}/ack", [&store, &auth](const Request& req) {
    auto id = http::path_id(req, "id", "notification id");
    if (!id.ok()) return Response::from_error(id.error());
    auto done = store.acknowledge(*id, req.principal->user_id, auth.now());
    if (!done.ok()) return Response::from_error(done.error());
    if (!*done) {
      audit(auth, req, "notification.ack", std::to_string(*id), "not_found");
      return Response::error(404, "no pending notification of yours has this id");
    }
    audit(auth, req, "notification.ack", std::to_string(*id), "ok");
    return Response::json(200, json_text(json{{"notification", *id}, {"acked", true}}));
  });

  // Acknowledges everything up to an id the user has seen (a list's first, newest, entry).
  router.add("POST", "/api/notifications/ack", [&store, &auth](const Request& req) {
    auto body = http::json_object_body(req);
    if (!body.ok()) return Response::from_error(body.error());
    auto up_to = body->find("upTo");
    if (up_to == body->end() || !up_to->is_number_integer() || up_to->get<std::int64_t>() <= 0) {
      return Response::error(400, "upTo must be the positive id of the newest notification seen");
    }
    auto n =
        store.acknowledge_up_to(req.principal->user_id, up_to->get<std::int64_t>(), auth.now());
    if (!n.ok()) return Response::from_error(n.error());
    audit(auth, req, "notification.ack", "", "ok",
          "up to " + std::to_string(up_to->get<std::int64_t>()) + ": " + std::to_string(*n));
    return Response::json(200, json_text(json{{"acked", *n}}));
  });
}

}  // namespace yilian::teleconsult
