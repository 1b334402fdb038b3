// SPDX-License-Identifier: Apache-2.0
// ProfilePusher against real loopback receivers: one that decodes every
// body with `go tool pprof -raw` (skipped without Go), one that answers
// 503 before accepting, and one that hangs: Offer() must stay instant and
// windows that do not fit be dropped and counted; Stop() aborts a send in
// flight at once. ~7 s in gcc, ~8 s under ASan+UBSan.
#include "flamekit/trigger/pyroscope_push.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/pprof.h"

namespace flamekit {
namespace {

using ::testing::HasSubstr;

struct Received {
  std::string target;
  std::string body;
};

// A receiver on 127.0.0.1: answers `fail_first` requests with 503, and
// sleeps `hang` before answering each.
class Receiver {
 public:
  Receiver(int fail_first, absl::Duration hang) : fail_first_(fail_first), hang_(hang) {
    server_.Post("/ingest", [this](const httplib::Request& req, httplib::Response& res) {
      absl::SleepFor(hang_);
      std::lock_guard<std::mutex> lock(mu_);
      if (fail_first_ > 0) {
        --fail_first_;
        res.status = 503;
        return;
      }
      got_.push_back({req.target, req.body});
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib 0.11's stop() does nothing until listen_after_bind() has set
    // is_running() (cpp-httplib issues 1371, 1645; wait_until_ready() came
    // in 0.12): without this wait, a destructor that runs first joins a
    // thread that never ends. That race, not the pusher, is what once made
    // this test time out after 60 s under ASan on a loaded machine.
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_.is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  std::vector<Received> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }

 private:
  int fail_first_;
  absl::Duration hang_;
  httplib::Server server_;
  std::mutex mu_;
  std::vector<Received> got_;
  int port_ = 0;
  std::thread thread_;
};

std::string Window() {
  absl::StatusOr<Profile> p = ParseCollapsed("main;HotPushFunction 30\nmain;ColdFunction 10\n");
  EXPECT_TRUE(p.ok()) << p.status();
  absl::StatusOr<std::string> gz = RenderPprof(*p);
  EXPECT_TRUE(gz.ok()) << gz.status();
  return gz.ok() ? *gz : "";
}

TEST(ProfilePusherTest, DecodableWindowsWithLabelsAndTimeRange) {
  Receiver receiver(0, absl::ZeroDuration());
  PushOptions o;
  o.url = receiver.Url();
  o.app = "svc";
  o.labels = {{"host", "web-1"}, {"pid", "42"}};
  auto pusher = ProfilePusher::Start(o);
  ASSERT_TRUE(pusher.ok()) << pusher.status();
  absl::Time from = absl::FromUnixSeconds(1796560000);
  ASSERT_TRUE((*pusher)->Offer(Window(), from, from + absl::Seconds(10)));
  ASSERT_TRUE((*pusher)->WaitIdle(absl::Seconds(10)));
  std::vector<Received> got = receiver.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target,
            "/ingest?name=svc%7Bhost%3Dweb-1%2Cpid%3D42%7D&from=1796560000&until=1796560010"
            "&format=pprof&spyName=flamekit");
  EXPECT_EQ((*pusher)->stats().sent_windows, 1u);

  if (::access("/usr/bin/go", X_OK) != 0) GTEST_SKIP() << "no go tool pprof: apt-get install golang-go";
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = tmp ? tmp : "/tmp";
  std::string file = dir + "/window.pb.gz";
  std::ofstream(file, std::ios::binary) << got[0].body;
  std::string cmd = absl::StrCat("HOME=", dir, " GOCACHE=", dir, "/gocache GOPATH=", dir,
                                 "/gopath go tool pprof -raw ", file, " 2>&1");
  std::string out;
  std::FILE* f = ::popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  ::pclose(f);
  EXPECT_THAT(out, HasSubstr("HotPushFunction"));
  EXPECT_THAT(out, HasSubstr("ColdFunction"));
  // The sample totals survive: 30 and 10 in the raw sample list.
  EXPECT_THAT(out, HasSubstr("Samples:"));
  EXPECT_THAT(out, ::testing::ContainsRegex("\\b30\\b"));
  EXPECT_THAT(out, ::testing::ContainsRegex("\\b10\\b"));
}

TEST(ProfilePusherTest, RetriesServerErrorsWithBackoff) {
  Receiver receiver(2, absl::ZeroDuration());
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
  Receiver receiver(0, absl::Seconds(2));
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
  Receiver receiver(0, absl::Seconds(3));
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
  PushOptions o;
  o.url = "pyroscope:4040";
  EXPECT_FALSE(ProfilePusher::Start(o).ok());
}

}  // namespace
}  // namespace flamekit
