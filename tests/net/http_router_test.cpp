#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "yilian/net/http.h"

namespace yilian::http {
namespace {

TEST(Router, matches_literal_and_parameter_segments) {
  Router r;
  r.add("GET", "/api/studies", [](const Request&) { return Response::json(200, "list"); });
  r.add("GET", "/api/studies/{uid}",
        [](const Request& q) { return Response::json(200, q.params.at("uid")); });
  Request a;
  a.method = "GET";
  a.path = "/api/studies";
  EXPECT_EQ(r.dispatch(a).body, "list");
  Request b;
  b.method = "GET";
  b.path = "/api/studies/1.2.3";
  EXPECT_EQ(r.dispatch(b).body, "1.2.3");
  Request c;
  c.method = "GET";
  c.path = "/api/studies/1.2.3/";
  EXPECT_EQ(r.dispatch(c).body, "1.2.3");
}

TEST(Router, a_rest_segment_takes_the_remaining_path_or_none) {
  Router r;
  r.add("GET", "/ohif/{path...}",
        [](const Request& q) { return Response::json(200, "[" + q.params.at("path") + "]"); });
  r.add("GET", "/other", [](const Request&) { return Response::json(200, "other"); });
  auto get = [&](std::string path) {
    Request q;
    q.method = "GET";
    q.path = std::move(path);
    return r.dispatch(q);
  };
  EXPECT_EQ(get("/ohif").body, "[]");
  EXPECT_EQ(get("/ohif/").body, "[]");
  EXPECT_EQ(get("/ohif/app.js").body, "[app.js]");
  EXPECT_EQ(get("/ohif/assets/images/a.png").body, "[assets/images/a.png]");
  EXPECT_EQ(get("/ohif//viewer/").body, "[viewer]");
  EXPECT_EQ(get("/other").body, "other");
  EXPECT_EQ(get("/ohifx/a").status, 404);
}

TEST(Router, unknown_paths_are_404_and_wrong_methods_405_with_json_errors) {
  Router r;
  r.add("GET", "/api/studies", [](const Request&) { return Response::json(200, "{}"); });
  Request a;
  a.method = "GET";
  a.path = "/api/nothing";
  Response ra = r.dispatch(a);
  EXPECT_EQ(ra.status, 404);
  EXPECT_EQ(nlohmann::json::parse(ra.body)["error"]["code"], "not_found");
  Request b;
  b.method = "DELETE";
  b.path = "/api/studies";
  Response rb = r.dispatch(b);
  EXPECT_EQ(rb.status, 405);
  EXPECT_EQ(nlohmann::json::parse(rb.body)["error"]["code"], "method_not_allowed");
}

TEST(Response, errors_map_to_http_statuses) {
  EXPECT_EQ(Response::from_error(make_error(Errc::invalid_argument, "x")).status, 400);
  EXPECT_EQ(Response::from_error(make_error(Errc::not_found, "x")).status, 404);
  EXPECT_EQ(Response::from_error(make_error(Errc::unavailable, "x")).status, 503);
  const Response full = Response::from_error(make_error(Errc::out_of_space, "x"));
  EXPECT_EQ(full.status, 507);
  EXPECT_EQ(nlohmann::json::parse(full.body)["error"]["code"], "out_of_space");
  EXPECT_EQ(Response::from_error(make_error(Errc::io, "x")).status, 500);
}

TEST(CookieValue, finds_one_cookie_among_several) {
  EXPECT_EQ(cookie_value("a=1; yilian_viewer=abc; b=2", "yilian_viewer"), "abc");
  EXPECT_EQ(cookie_value("yilian_viewer=abc", "yilian_viewer"), "abc");
  EXPECT_EQ(cookie_value("xyilian_viewer=abc;yilian_viewer=", "yilian_viewer"), "");
  EXPECT_EQ(cookie_value("a=1;b=2", "yilian_viewer"), "");
  EXPECT_EQ(cookie_value("", "yilian_viewer"), "");
  EXPECT_EQ(cookie_value("a=1;b", "b"), "");
}

TEST(ParseQuery, decodes_pairs) {
  auto q = parse_query("limit=10&name=Zhang%5ESan&flag&x=a+b");
  EXPECT_EQ(q["limit"], "10");
  EXPECT_EQ(q["name"], "Zhang^San");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["x"], "a b");
  // A repeated parameter keeps every value.
  EXPECT_EQ(parse_query("includefield=a&includefield=b%2Cc")["includefield"], "a,b,c");
}

}  // namespace
}  // namespace yilian::http

namespace yilian::http {
namespace {

TEST(Cors, answers_preflights_and_decorates_only_for_allowed_origins) {
  Cors cors({"https://viewer.example.org"});
  Request pre;
  pre.method = "OPTIONS";
  pre.path = "/dicom-web/studies";
  pre.origin = "https://viewer.example.org";
  auto r = cors.preflight(pre);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 204);
  auto has = [](const Response& resp, const std::string& name, const std::string& value) {
    for (const auto& [n, v] : resp.headers) {
      if (n == name && v == value) return true;
    }
    return false;
  };
  EXPECT_TRUE(has(*r, "Access-Control-Allow-Origin", "https://viewer.example.org"));
  pre.origin = "https://evil.example.com";
  EXPECT_FALSE(cors.preflight(pre).has_value());

  Request get;
  get.method = "GET";
  get.origin = "https://viewer.example.org";
  Response plain;
  cors.decorate(get, plain);
  EXPECT_TRUE(has(plain, "Access-Control-Allow-Origin", "https://viewer.example.org"));
  Response none;
  Cors closed;
  closed.decorate(get, none);
  EXPECT_TRUE(none.headers.empty());
  Cors any({"*"});
  get.origin = "http://localhost:3000";
  Response open;
  any.decorate(get, open);
  EXPECT_TRUE(has(open, "Access-Control-Allow-Origin", "http://localhost:3000"));
  get.origin.clear();
  Response no_origin;
  any.decorate(get, no_origin);
  EXPECT_TRUE(no_origin.headers.empty());
}

TEST(HttpErrors, every_status_has_one_code_and_errors_map_to_their_status) {
  for (auto [status, code] : {std::pair{400, "invalid_argument"}, std::pair{401, "unauthenticated"},
                              std::pair{403, "forbidden"}, std::pair{404, "not_found"},
                              std::pair{409, "conflict"}, std::pair{429, "too_many_requests"},
                              std::pair{500, "internal"}, std::pair{503, "unavailable"}}) {
    Response r = Response::error(status, "why");
    EXPECT_EQ(r.status, status);
    auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["error"]["code"], code) << status;
    EXPECT_EQ(body["error"]["message"], "why");
  }
  // An error from a module answers with the same code as a handler's own 403.
  Response denied = Response::from_error(make_error(Errc::permission_denied, "no"));
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(nlohmann::json::parse(denied.body)["error"]["code"], "forbidden");
  Response io = Response::from_error(make_error(Errc::io, "disk"));
  EXPECT_EQ(io.status, 500);
  EXPECT_EQ(nlohmann::json::parse(io.body)["error"]["code"], "internal");
}

}  // namespace
}  // namespace yilian::http
