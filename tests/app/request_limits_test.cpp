// Per-user limits on renders and uploads: which requests they cover, and a user at the limit
// answered 429 while others go on.
#include "request_limits.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace yilian::app {
namespace {

http::Request request(std::string method, std::string path, std::int64_t user = 0) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  if (user > 0) {
    Principal p;
    p.user_id = user;
    p.username = "user" + std::to_string(user);
    r.principal = p;
  }
  return r;
}

TEST(RequestKind, renders_and_uploads_are_told_by_method_and_path) {
  const std::string inst = "/dicom-web/studies/1.2/series/1.3/instances/1.4";
  EXPECT_EQ(request_kind(request("GET", inst + "/rendered")), RequestKind::render);
  EXPECT_EQ(request_kind(request("GET", inst + "/frames/1/rendered")), RequestKind::render);
  EXPECT_EQ(request_kind(request("GET", "/dicom-web/studies/1.2/thumbnail")), RequestKind::render);
  EXPECT_EQ(request_kind(request("GET", "/api/ecg/1.2.3/render")), RequestKind::render);
  EXPECT_EQ(request_kind(request("POST", "/dicom-web/studies")), RequestKind::upload);
  EXPECT_EQ(request_kind(request("POST", "/dicom-web/studies/1.2")), RequestKind::upload);
  EXPECT_EQ(request_kind(request("POST", "/api/ecg")), RequestKind::upload);
  EXPECT_EQ(request_kind(request("GET", inst + "/metadata")), RequestKind::other);
  EXPECT_EQ(request_kind(request("GET", "/dicom-web/studies")), RequestKind::other);
  EXPECT_EQ(request_kind(request("POST", "/api/tasks/1/reports")), RequestKind::other);
  EXPECT_EQ(request_kind(request("POST", inst + "/rendered")), RequestKind::other);
}

TEST(RequestLimits, a_user_at_the_limit_gets_429_while_others_go_on) {
  RequestLimits limits(/*renders_per_user=*/2, /*uploads_per_user=*/1);
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  auto blocking = [&](http::Request&) {
    entered.set_value();
    released.wait();
    return http::Response::json(200, "{}");
  };
  auto quick = [](http::Request&) { return http::Response::json(201, "{}"); };

  std::thread upload([&] {
    http::Request r = request("POST", "/dicom-web/studies", 7);
    EXPECT_EQ(limits.run(r, blocking).status, 200);
  });
  entered.get_future().wait();  // user 7's upload is running

  http::Request second = request("POST", "/api/ecg", 7);
  http::Response refused = limits.run(second, quick);
  EXPECT_EQ(refused.status, 429);
  EXPECT_NE(refused.body.find("too_many_requests"), std::string::npos);
  bool retry_after = false;
  for (const auto& [name, value] : refused.headers) retry_after |= name == "Retry-After";
  EXPECT_TRUE(retry_after);
  // Another user uploads, user 7 still renders and reads, and unsigned requests are not counted.
  http::Request other = request("POST", "/dicom-web/studies", 8);
  EXPECT_EQ(limits.run(other, quick).status, 201);
  http::Request render = request("GET", "/api/ecg/1.2/render", 7);
  EXPECT_EQ(limits.run(render, quick).status, 201);
  http::Request read = request("GET", "/dicom-web/studies", 7);
  EXPECT_EQ(limits.run(read, quick).status, 201);

  release.set_value();
  upload.join();
  // The slot is back.
  http::Request again = request("POST", "/api/ecg", 7);
  EXPECT_EQ(limits.run(again, quick).status, 201);
}

}  // namespace
}  // namespace yilian::app
