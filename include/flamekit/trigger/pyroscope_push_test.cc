// SPDX-License-Identifier: Apache-2.0
// ProfilePusher against real loopback receivers: one that decodes every
// body with `go tool pprof -raw` (skipped without Go), one that answers
// 503 before accepting, and one that hangs: Offer() must stay instant and
// windows that do not fit be dropped and counted; Stop() aborts a send in
// flight at once. ~7 s in gcc, ~8 s under ASan+UBSan.
#include "flamekit/trigger/pyroscope_push.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/pprof.h"
#include "flamekit/trigger/test_ingest_receiver.h"

namespace flamekit {
namespace {

using ::flamekit::trigger_testing::IngestReceiver;
using ::flamekit::trigger_testing::IngestRequest;
using ::flamekit::trigger_testing::PprofRaw;
using ::flamekit::trigger_testing::TestDir;
using ::testing::HasSubstr;

std::string Window() {
  absl::StatusOr<Profile> p = ParseCollapsed("main;HotPushFunction 30\nmain;ColdFunction 10\n");
  EXPECT_TRUE(p.ok()) << p.status();
  absl::StatusOr<std::string> gz = RenderPprof(*p);
  EXPECT_TRUE(gz.ok()) << gz.status();
  return gz.ok() ? *gz : "";
}

TEST(ProfilePusherTest, DecodableWindowsWithLabelsAndTimeRange) {
  IngestReceiver receiver;
  PushOptions o;
  o.url = receiver.Url();
  o.app = "svc";
  o.labels = {{"host", "web-1"}, {"pid", "42"}};
  auto pusher = ProfilePusher::Start(o);
  ASSERT_TRUE(pusher.ok()) << pusher.status();
  absl::Time from = absl::FromUnixSeconds(1796560000);
  ASSERT_TRUE((*pusher)->Offer(Window(), from, from + absl::Seconds(10)));
  ASSERT_TRUE((*pusher)->WaitIdle(absl::Seconds(10)));
  std::vector<IngestRequest> got = receiver.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target,
            "/ingest?name=svc%7Bhost%3Dweb-1%2Cpid%3D42%7D&from=1796560000&until=1796560010"
            "&format=pprof&spyName=flamekit");
  EXPECT_EQ((*pusher)->stats().sent_windows, 1u);

  bool skip = false;
  const std::string out = PprofRaw(got[0].body, TestDir(), "window.pb.gz", &skip);
  if (skip) GTEST_SKIP() << "no go tool pprof: apt-get install golang-go";
  EXPECT_THAT(out, HasSubstr("HotPushFunction"));
  EXPECT_THAT(out, HasSubstr("ColdFunction"));
  // The sample totals survive: 30 and 10 in the raw sample list.
  EXPECT_THAT(out, HasSubstr("Samples:"));
  EXPECT_THAT(out, ::testing::ContainsRegex("\\b30\\b"));
  EXPECT_THAT(out, ::testing::ContainsRegex("\\b10\\b"));
}

TEST(ProfilePusherTest, RetriesServerErrorsWithBackoff) {
  IngestReceiver receiver({/*fail_first=*/2});
  PushOptions o;
  o.url = receiver.Url();
  o.backoff = absl::Milliseconds(100);
  auto pusher = ProfilePusher::Start(o);
  ASSERT_TRUE(pusher.ok());
  absl::Time start = absl::Now();
  (*pusher)->Offer(Window(), start, start + absl::Seconds(10));
  ASSERT_TRUE((*pusher)->WaitIdle(absl::Seconds(10)));
  PushStats s = (*pusher)->stats();
  EXPECT_EQ(s.sent_windows, 1u);
  EXPECT_EQ(s.attempts, 3u);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));  // 100 + 200 ms of backoff
  EXPECT_EQ(receiver.got().size(), 1u);
}

TEST(ProfilePusherTest, HangingReceiverNeverBlocksTheCaller) {
  IngestReceiver receiver({/*fail_first=*/0, /*delay=*/absl::Seconds(2)});
  PushOptions o;
  o.url = receiver.Url();
  o.max_queue = 2;
  o.timeout = absl::Seconds(1);
  o.max_attempts = 1;
  auto pusher = ProfilePusher::Start(o);
  ASSERT_TRUE(pusher.ok());
  std::string w = Window();
  absl::Duration slowest;
  int accepted = 0;
  for (int i = 0; i < 20; ++i) {
    absl::Time t = absl::Now();
    if ((*pusher)->Offer(w, t, t + absl::Seconds(10))) ++accepted;
    slowest = std::max(slowest, absl::Now() - t);
  }
  // One window in flight plus max_queue waiting; the rest dropped at once.
  EXPECT_LE(accepted, 3);
  EXPECT_LT(slowest, absl::Milliseconds(50)) << slowest;
  EXPECT_GE((*pusher)->stats().dropped_windows, 17u);
  // Shutdown is bounded by the attempt timeout, whatever waits.
  absl::Time t = absl::Now();
  pusher->reset();
  EXPECT_LT(absl::Now() - t, absl::Seconds(4));
}

// A receiver that holds the request far longer than the caller will wait:
// Stop() must abort the POST in flight (not wait out the 30 s timeout) and
// count the window as dropped.
TEST(ProfilePusherTest, StopAbortsTheSendInFlight) {
  IngestReceiver receiver({/*fail_first=*/0, /*delay=*/absl::Seconds(3)});
  PushOptions o;
  o.url = receiver.Url();
  o.timeout = absl::Seconds(30);
  auto pusher = ProfilePusher::Start(o);
  ASSERT_TRUE(pusher.ok());
  absl::Time t = absl::Now();
  ASSERT_TRUE((*pusher)->Offer(Window(), t, t + absl::Seconds(1)));
  absl::SleepFor(absl::Milliseconds(300));  // the POST is now waiting for an answer
  t = absl::Now();
  PushStats s = (*pusher)->Stop(absl::Milliseconds(100));
  EXPECT_LT(absl::Now() - t, absl::Seconds(2));
  EXPECT_EQ(s.sent_windows, 0u);
  EXPECT_EQ(s.dropped_windows, 1u);
  EXPECT_FALSE((*pusher)->Offer(Window(), t, t)) << "no Offer() after Stop()";
}

TEST(ProfilePusherTest, BadUrlIsRefused) {
  struct Case {
    const char* url;
    const char* message;
  } cases[] = {
      {"pyroscope:4040", "must start with http:// or https://"},
      {"ftp://h:4040", "must start with http:// or https://"},
      {"http://h:4040/p?orgId=1", "it has a query ('?')"},
      {"http://h:4040/#top", "it has a fragment ('#')"},
      {"http://:4040", "no host"},
  };
  for (const Case& c : cases) {
    PushOptions o;
    o.url = c.url;
    auto pusher = ProfilePusher::Start(o);
    ASSERT_FALSE(pusher.ok()) << c.url;
    EXPECT_EQ(pusher.status().code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_THAT(std::string(pusher.status().message()), HasSubstr(c.message)) << c.url;
  }
}

// Pyroscope behind a reverse proxy: the URL's path is a prefix of /ingest.
TEST(ProfilePusherTest, UrlPathIsAPrefix) {
  for (const char* prefix : {"", "/", "/pyroscope", "/team/pyroscope/"}) {
    absl::StatusOr<ParsedUrl> url = ParsePushUrl(absl::StrCat("http://h:4040", prefix));
    ASSERT_TRUE(url.ok()) << url.status();
    PushOptions o;
    o.url = absl::StrCat("http://h:4040", prefix);
    std::string target = PyroscopeIngestTarget(o, absl::FromUnixSeconds(1), absl::FromUnixSeconds(2));
    std::string want = absl::StrCat(absl::StripSuffix(prefix, "/"), "/ingest?");
    EXPECT_THAT(target, ::testing::StartsWith(want)) << prefix;
  }
  IngestReceiver receiver;
  PushOptions o;
  o.url = receiver.Url() + "/team/pyroscope";
  auto pusher = ProfilePusher::Start(o);
  ASSERT_TRUE(pusher.ok()) << pusher.status();
  absl::Time t = absl::Now();
  ASSERT_TRUE((*pusher)->Offer(Window(), t, t + absl::Seconds(1)));
  ASSERT_TRUE((*pusher)->WaitIdle(absl::Seconds(10)));
  std::vector<IngestRequest> got = receiver.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/team/pyroscope/ingest");
}

}  // namespace
}  // namespace flamekit
