// SPDX-License-Identifier: Apache-2.0
// Attacks on the UI over real HTTP on 127.0.0.1: traversal and injection
// attempts, missing/wrong tokens, cross-origin and rebinding requests,
// oversized requests, connection floods. Each must be refused, leak
// nothing, change nothing, and leave the server serving.

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/ui/ui_server.h"
#include "flamekit/ui/ui_test_hooks.h"
#include "flamekit/ui/ui_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::ui_testing::RawHttp;
using ::flamekit::ui_testing::RawResponse;
using ::flamekit::ui_testing::Request;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kSecret = "TOPSECRET-7f3a9c";

class UiAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ui_testing::MakeTempDir("attack");
    { std::ofstream(root_ + "/secret.txt") << kSecret << "\n"; }
    UiOptions options;
    options.dir = root_ + "/profiles";
    options.token = token_;
    options.profiler = ProfilerForTest();
    options.max_request_bytes = 16 * 1024;
    options.max_connections = 6;
    options.worker_threads = 2;
    absl::StatusOr<std::unique_ptr<UiServer>> ui = ServeUi("127.0.0.1", 0, std::move(options));
    ASSERT_THAT(ui.status(), IsOk());
    ui_ = std::move(*ui);
    port_ = ui_->port();
    // One real stored profile, plus traps with valid names: symlinks to the
    // secret and to /etc/passwd.
    Profile profile;
    FrameId main_id = profile.InternFrame("main");
    FrameId stack[] = {main_id};
    profile.AddStack(stack, 5);
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(stored_, ui_->store().Save(profile));
    std::string dir = ui_->store().directory();
    ASSERT_EQ(::symlink((root_ + "/secret.txt").c_str(),
                        (dir + "/0090-cpu-flamegraph-20260101-000000.txt").c_str()), 0);
    ASSERT_EQ(::symlink((root_ + "/secret.txt").c_str(),
                        (dir + "/0090-cpu-flamegraph-20260101-000000.html").c_str()), 0);
    ASSERT_EQ(::symlink("/etc/passwd", (dir + "/0091-cpu-flamegraph-20260101-000000.html").c_str()), 0);
  }
  void TearDown() override {
    ui_->Stop();
    StopProfilerForTest();
  }

  std::string Auth() const { return absl::StrCat("Authorization: Bearer ", token_, "\r\n"); }

  // Nothing secret in a response.
  void ExpectNoLeak(const RawResponse& r, absl::string_view what) {
    EXPECT_THAT(r.body, Not(HasSubstr(kSecret))) << what;
    EXPECT_THAT(r.body, Not(HasSubstr("root:x:0:0"))) << what;
    EXPECT_THAT(r.head, Not(HasSubstr(kSecret))) << what;
    EXPECT_THAT(r.body, Not(HasSubstr(token_))) << what;
  }

  void ExpectStillServing() {
    RawResponse r = Request(port_, "GET", "/api/status", Auth());
    ASSERT_EQ(r.status, 200) << r.head;
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["running"], false);
    EXPECT_EQ(j["profiles"], 1);
  }

  std::string root_;
  const std::string token_ = "attack-test-token-0123456789";
  std::unique_ptr<UiServer> ui_;
  StoredProfile stored_;
  int port_ = 0;
};

TEST_F(UiAttackTest, TraversalAndBadNamesGet404) {
  const std::string valid = stored_.html_name;
  const std::string stem = stored_.stem;
  std::vector<std::string> targets = {
      "/profiles/../../../../etc/passwd",
      "/profiles/..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/profiles/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "/profiles/%2E%2E%2Fsecret.txt",
      "/profiles/%252e%252e%252fsecret.txt",
      "/profiles/..%5c..%5csecret.txt",
      "/profiles/%2fetc%2fpasswd",
      "/profiles//etc/passwd",
      "/profiles/..",
      "/profiles/.",
      "/profiles/",
      "/profiles/%00",
      absl::StrCat("/profiles/", valid, "%00.txt"),
      absl::StrCat("/profiles/", valid, "%00"),
      absl::StrCat("/profiles/", valid, "/../../secret.txt"),
      absl::StrCat("/profiles/", stem, ".json"),
      absl::StrCat("/profiles/", stem, ".HTML"),
      absl::StrCat("/profiles/", stem, ".html.tmp"),
      "/profiles/0090-cpu-flamegraph-20260101-000000.txt",
      "/profiles/0090-cpu-flamegraph-20260101-000000.html",
      "/profiles/0091-cpu-flamegraph-20260101-000000.html",
      "/profiles/0001-cpu-flamegraph-20260101-000000.html%2f..%2f..%2fsecret.txt",
      "/static/../../secret.txt",
      "/static/..%2f..%2fsecret.txt",
      "/../../../etc/passwd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/diff?a=1&b=../../etc/passwd",
      "/diff?a=1;cat%20/etc/passwd&b=1",
      "/diff?a=-1&b=99999999999999999999",
  };
  for (const std::string& target : targets) {
    RawResponse r = Request(port_, "GET", target, Auth());
    EXPECT_TRUE(r.status == 404 || r.status == 400) << target << " -> " << r.status;
    ExpectNoLeak(r, target);
  }
  // The valid name still works, so the 404s above are not an accident.
  RawResponse ok = Request(port_, "GET", absl::StrCat("/profiles/", valid), Auth());
  EXPECT_EQ(ok.status, 200);
  ExpectStillServing();
}

TEST_F(UiAttackTest, InjectionIsEscapedOrRefused) {
  const std::string origin = absl::StrCat("Origin: http://127.0.0.1:", port_, "\r\n");
  const std::string form = "Content-Type: application/x-www-form-urlencoded\r\n";
  std::vector<std::string> bodies = {
      "event=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
      "event=cpu%0d%0aSet-Cookie:%20pwned=1",
      "event=cpu&interval=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
      "event=cpu&duration=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
      "event=..%2f..%2fetc%2fpasswd",
      "event=cpu%00cycles",
      "event={{#events}}{{name}}{{/events}}",
  };
  for (const std::string& body : bodies) {
    for (const char* path : {"/api/start", "/ui/start"}) {
      RawResponse r = Request(port_, "POST", path, absl::StrCat(Auth(), origin, form), body);
      EXPECT_EQ(r.status, 400) << path << " " << body;
      EXPECT_THAT(r.body, Not(HasSubstr("<script>alert"))) << body;
      EXPECT_THAT(r.body, Not(HasSubstr("<img src=x"))) << body;
      EXPECT_EQ(r.Header("Set-Cookie"), "") << body;
      ExpectNoLeak(r, body);
    }
  }
  // JSON with the wrong types.
  for (const char* json : {"[1,2,3]", "{\"event\":{\"$gt\":\"\"}}", "{\"event\":\"cpu\",\"duration\":-5}",
                           "\"cpu\"", "null", ""}) {
    RawResponse r = Request(port_, "POST", "/api/start",
                            absl::StrCat(Auth(), "Content-Type: application/json\r\n"), json);
    EXPECT_EQ(r.status, 400) << json << ": " << r.body;
  }
  ExpectStillServing();
}

TEST_F(UiAttackTest, MissingOrWrongTokenIs401) {
  std::vector<std::string> headers = {
      "",
      "Authorization: Bearer \r\n",
      "Authorization: Bearer attack-test-token-012345678\r\n",   // one short
      "Authorization: Bearer attack-test-token-01234567890\r\n", // one long
      "Authorization: Bearer ATTACK-TEST-TOKEN-0123456789\r\n",
      "Authorization: Basic YXR0YWNrOnRlc3Q=\r\n",
      "Authorization: attack-test-token-0123456789\r\n",
      "Cookie: flamekit_session=attack-test-token-0123456789\r\n",
      "Cookie: flamekit_session=\r\n",
  };
  for (const std::string& h : headers) {
    for (const char* target : {"/", "/api/status", "/api/profiles", "/metrics", "/diff?a=1&b=1"}) {
      RawResponse r = Request(port_, "GET", target, h);
      EXPECT_EQ(r.status, 401) << target << " with [" << h << "]";
      ExpectNoLeak(r, target);
      EXPECT_THAT(r.body, Not(HasSubstr(stored_.html_name))) << target;
    }
    RawResponse file = Request(port_, "GET", absl::StrCat("/profiles/", stored_.html_name), h);
    EXPECT_EQ(file.status, 401) << h;
    RawResponse start = Request(port_, "POST", "/api/start", h, "event=cpu");
    EXPECT_EQ(start.status, 401) << h;
    RawResponse del = Request(port_, "DELETE", "/api/profiles", h);
    EXPECT_EQ(del.status, 401) << h;
  }
  ExpectStillServing();
}

TEST_F(UiAttackTest, CrossOriginAndRebindingRefused) {
  const std::string form = "Content-Type: application/x-www-form-urlencoded\r\n";
  std::vector<std::string> origins = {
      "Origin: http://evil.example\r\n",
      "Origin: null\r\n",
      absl::StrCat("Origin: http://127.0.0.1:", port_, ".evil.example\r\n"),
      absl::StrCat("Origin: http://127.0.0.1:", port_ + 1, "\r\n"),
      "Referer: http://evil.example/page\r\n",
      absl::StrCat("Referer: http://127.0.0.1:", port_, ".evil.example/\r\n"),
  };
  for (const std::string& origin : origins) {
    // Even with a valid session cookie (what a browser would attach).
    RawResponse login = Request(port_, "POST", "/login", form, absl::StrCat("token=", token_));
    ASSERT_EQ(login.status, 303);
    std::string cookie = login.Header("Set-Cookie");
    std::string session = absl::StrCat("Cookie: ", cookie.substr(0, cookie.find(';')), "\r\n");
    for (const char* path : {"/api/start", "/ui/start", "/api/stop", "/ui/delete-all", "/logout"}) {
      RawResponse r = Request(port_, "POST", path, absl::StrCat(session, origin, form), "event=cpu");
      EXPECT_EQ(r.status, 403) << path << " " << origin;
    }
    RawResponse del = Request(port_, "DELETE", "/api/profiles", absl::StrCat(session, origin));
    EXPECT_EQ(del.status, 403) << origin;
    // A cross-site login attempt is refused too.
    RawResponse cross_login = Request(port_, "POST", "/login", absl::StrCat(origin, form),
                                      absl::StrCat("token=", token_));
    EXPECT_EQ(cross_login.status, 403) << origin;
  }
  // GET never changes state, whatever it asks for.
  for (const char* target : {"/api/start?event=cpu", "/api/stop", "/ui/start?event=cpu",
                             "/ui/delete-all", "/login?token=x"}) {
    RawResponse r = Request(port_, "GET", target, Auth());
    EXPECT_TRUE(r.status == 404 || r.status == 303) << target << " " << r.status;
  }
  RawResponse listed = Request(port_, "GET", "/api/profiles?_method=DELETE", Auth());
  EXPECT_EQ(listed.status, 200);
  for (const char* method : {"PUT", "PATCH", "OPTIONS", "TRACE"}) {
    RawResponse r = Request(port_, method, "/api/start", Auth(), "event=cpu");
    EXPECT_GE(r.status, 400) << method;
  }
  ExpectStillServing();
}

TEST(UiRebindingTest, LoopbackWithoutTokenChecksHost) {
  UiOptions options;
  options.dir = ui_testing::MakeTempDir("rebind");
  options.profiler = ProfilerForTest();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto ui, ServeUi("127.0.0.1", 0, options));
  int port = ui->port();
  for (const char* host : {"evil.example", "evil.example:80", "127.0.0.1.evil.example",
                           "localhost.evil.example", "[::2]"}) {
    RawResponse r = RawHttp(port, absl::StrCat("GET /api/status HTTP/1.1\r\nHost: ", host,
                                               "\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(r.status, 403) << host;
  }
  for (const char* host : {"127.0.0.1", "localhost", "LOCALHOST:1234", "[::1]:8080"}) {
    RawResponse r = RawHttp(port, absl::StrCat("GET /api/status HTTP/1.1\r\nHost: ", host,
                                               "\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(r.status, 200) << host;
  }
}

TEST_F(UiAttackTest, OversizedRequestsRefused) {
  std::string big(64 * 1024, 'a');
  RawResponse body = Request(port_, "POST", "/api/start",
                             absl::StrCat(Auth(), "Content-Type: application/json\r\n"), big);
  EXPECT_EQ(body.status, 413);
  RawResponse header = Request(port_, "GET", "/api/status",
                               absl::StrCat(Auth(), "X-Filler: ", std::string(20000, 'b'), "\r\n"));
  EXPECT_TRUE(header.status == 0 || header.status >= 400) << header.status;
  RawResponse uri = Request(port_, "GET", absl::StrCat("/profiles/", std::string(20000, 'c')), Auth());
  EXPECT_TRUE(uri.status == 0 || uri.status >= 400) << uri.status;
  // A body that claims to be huge but is not sent.
  RawResponse claim = RawHttp(port_, absl::StrCat("POST /api/start HTTP/1.1\r\nHost: 127.0.0.1\r\n", Auth(),
                                                  "Content-Length: 99999999999\r\nConnection: close\r\n\r\n"));
  EXPECT_TRUE(claim.status == 0 || claim.status >= 400) << claim.status;
  ExpectStillServing();
}

int ConnectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(UiAttackTest, ConnectionsOverTheLimitGet503) {
  // Six connections (the limit: 2 workers + 4 queued) that send half a
  // request and wait: each holds its worker or queue slot until the read
  // timeout.
  std::vector<int> held;
  for (int i = 0; i < 6; ++i) {
    int fd = ConnectLoopback(port_);
    ASSERT_GE(fd, 0);
    ASSERT_GT(::send(fd, "GET /api/status HTTP/1.1\r\n", 25, MSG_NOSIGNAL), 0);
    held.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(100));
  // The next whole request is answered at once, by the rejecter: 503.
  absl::Time sent = absl::Now();
  RawResponse r = Request(port_, "GET", "/api/status", Auth());
  EXPECT_EQ(r.status, 503) << r.head;
  EXPECT_EQ(r.Header("Retry-After"), "1");
  EXPECT_LT(absl::Now() - sent, absl::Seconds(1));
  for (int fd : held) ::close(fd);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  int status = 0;
  while (absl::Now() < deadline && status != 200) {
    status = Request(port_, "GET", "/api/status", Auth()).status;
    if (status != 200) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(status, 200);
  ExpectStillServing();
}

TEST_F(UiAttackTest, SlowlorisFloodIsBoundedAndRecovers) {
  // Twenty connections that never finish their request line.
  std::vector<int> held;
  for (int i = 0; i < 20; ++i) {
    int fd = ConnectLoopback(port_);
    ASSERT_GE(fd, 0);
    ASSERT_GT(::send(fd, "GET /api/st", 11, MSG_NOSIGNAL), 0);
    held.push_back(fd);
  }
  // The server drops each after its 2 s read timeout; it is serving again
  // well within the time twenty of them take on the bounded threads.
  absl::Time start = absl::Now();
  absl::Time deadline = start + absl::Seconds(30);
  int status = 0;
  while (absl::Now() < deadline && status != 200) {
    status = Request(port_, "GET", "/api/status", Auth()).status;
    if (status != 200) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(status, 200);
  for (int fd : held) ::close(fd);
  ExpectStillServing();
}


}  // namespace
}  // namespace flamekit
