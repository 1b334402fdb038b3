// SPDX-License-Identifier: Apache-2.0
// PromQlSource: answers in the shapes Prometheus 2.42's /api/v1/query
// sends (copied from a real server), and the network failures for real: a
// port nobody listens on, and a listener that never answers.
#include "flamekit/trigger/promql_source.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/time/clock.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/trigger/test_prometheus.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

TEST(PromQlResponseTest, VectorScalarAndValues) {
  auto v = ParsePromQlResponse(
      200,
      R"({"status":"success","data":{"resultType":"vector","result":[)"
      R"({"metric":{"job":"a"},"value":[1733480000.1,"12.5"]},)"
      R"({"metric":{"job":"b"},"value":[1733480000.1,"+Inf"]}]}})",
      "q");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ((*v)[0].labels, R"({job="a"})");
  EXPECT_EQ((*v)[0].value, 12.5);
  EXPECT_TRUE(std::isinf((*v)[1].value));
  auto s = ParsePromQlResponse(
      200, R"({"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}})", "q");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->size(), 1u);
  EXPECT_TRUE(std::isnan((*s)[0].value));
  auto empty = ParsePromQlResponse(
      200, R"({"status":"success","data":{"resultType":"vector","result":[]}})", "q");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(PromQlResponseTest, ErrorsSayWhatToDo) {
  EXPECT_THAT(ParsePromQlResponse(
                  200, R"({"status":"success","data":{"resultType":"matrix","result":[]}})",
                  "up[1m]"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  auto bad = ParsePromQlResponse(
      400,
      R"({"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected"})",
      "up{");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("parse error"));
  EXPECT_THAT(ParsePromQlResponse(
                  503,
                  R"({"status":"error","errorType":"timeout","error":"query timed out"})", "q"),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(ParsePromQlResponse(404, "404 page not found", "q"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(ParsePromQlResponse(401, "", "q"), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(PromQlResponseTest, QueryIsEscaped) {
  EXPECT_EQ(PromQlQueryUrl("http://h:9090/", "rate(x{a=\"b c\"}[1m]) > 0", absl::Seconds(2)),
            "http://h:9090/api/v1/query?query=rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%20%3E%200"
            "&timeout=2000ms");
}

TEST(PromQlSourceTest, PicksTheSeriesFurthestPastTheLine) {
  std::string body =
      R"({"status":"success","data":{"resultType":"vector","result":[)"
      R"({"metric":{"i":"1"},"value":[1,"3"]},{"metric":{"i":"2"},"value":[1,"NaN"]},)"
      R"({"metric":{"i":"3"},"value":[1,"9"]}]}})";
  std::vector<std::string> urls;
  auto fetch = [&](const std::string& url) -> absl::StatusOr<HttpResponse> {
    urls.push_back(url);
    return HttpResponse{200, body};
  };
  PromQlSource above("http://x:1", "q", TriggerDirection::kAbove, absl::Seconds(1), "", fetch);
  auto a = above.Poll();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(**a, 9);
  EXPECT_EQ(above.last_series(), R"({i="3"})");
  PromQlSource below("http://x:1", "q", TriggerDirection::kBelow, absl::Seconds(1), "", fetch);
  EXPECT_EQ(**below.Poll(), 3);
  ASSERT_FALSE(urls.empty());
  EXPECT_THAT(urls[0], HasSubstr("timeout=800ms"));  // 0.8 of our own timeout
}

TEST(PromQlSourceTest, ServerDownAndSilentServerAreBoundedAndRetryable) {
  // Down: a port nobody listens on.
  PromQlSource down(absl::StrCat("http://127.0.0.1:", TestServer::FreePort()), "up",
                    TriggerDirection::kAbove, absl::Seconds(1));
  auto d = down.Poll();
  EXPECT_THAT(d, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("still watching"));

  // Silent: a listener that accepts nothing and never answers; the poll
  // must give up at its 1 s timeout (bound: 3 s with connection setup).
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  PromQlSource silent(absl::StrCat("http://127.0.0.1:", ntohs(a.sin_port)), "up",
                      TriggerDirection::kAbove, absl::Seconds(1));
  absl::Time start = absl::Now();
  auto s = silent.Poll();
  absl::Duration took = absl::Now() - start;
  ::close(fd);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(took, absl::Seconds(3)) << took;
  EXPECT_GE(took, absl::Milliseconds(900)) << took;
}

}  // namespace
}  // namespace flamekit
