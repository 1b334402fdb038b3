// SPDX-License-Identifier: Apache-2.0
// ProfilerOptions::push end to end in this process: the real profiler
// samples a spinning thread and pushes 1 s windows to a loopback /ingest
// receiver (trigger/test_ingest_receiver.h). Checks the labels, the time
// ranges, that the windows add up to the whole capture (every sample sent
// once), the hot function in `go tool pprof -raw` (skipped without Go);
// and, against a receiver that never answers, that the spinning thread
// keeps its pace (per second on a CPU), is never blocked, and Stop() returns
// within its bound. ~10 s.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/profile/pprof_reader.h"
#include "flamekit/profiler.h"
#include "flamekit/testing/profiler_test_util.h"
#include "flamekit/trigger/test_ingest_receiver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::SamplesWith;
using ::flamekit::trigger_testing::IngestBehaviour;
using ::flamekit::trigger_testing::IngestReceiver;
using ::flamekit::trigger_testing::IngestRequest;
using ::flamekit::trigger_testing::PprofRaw;
using ::flamekit::trigger_testing::TestDir;
using ::testing::HasSubstr;

// The work the tests profile: spins for `seconds` of wall time and returns
// the iterations done (the program's throughput).
__attribute__((noinline)) uint64_t HotPushLoop(double seconds) {
  const absl::Time until = absl::Now() + absl::Seconds(seconds);
  volatile uint64_t x = 0;
  uint64_t rounds = 0;
  while (absl::Now() < until) {
    for (int i = 0; i < 10000; ++i) x = x + i;
    ++rounds;
  }
  return rounds;
}

// Where the calling thread's time went (/proc/thread-self/schedstat, in
// ns): on a CPU, and runnable but waiting for one (another process took
// it). The rest of the wall time it was blocked: sleeping on a lock, a
// socket, a condition.
struct ThreadTimes {
  uint64_t on_cpu_ns = 0;
  uint64_t runnable_ns = 0;
};

ThreadTimes ReadThreadTimes() {
  ThreadTimes t;
  std::ifstream in("/proc/thread-self/schedstat");
  in >> t.on_cpu_ns >> t.runnable_ns;
  return t;
}

// HotPushLoop(), and how the thread spent it.
struct Spin {
  uint64_t rounds = 0;
  double wall_s = 0;
  double on_cpu_s = 0;
  double blocked_s = 0;  // neither on a CPU nor waiting for one
};

Spin MeasuredSpin(double seconds) {
  const ThreadTimes before = ReadThreadTimes();
  const absl::Time start = absl::Now();
  Spin spin;
  spin.rounds = HotPushLoop(seconds);
  spin.wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  const ThreadTimes after = ReadThreadTimes();
  spin.on_cpu_s = (after.on_cpu_ns - before.on_cpu_ns) / 1e9;
  const double runnable_s = (after.runnable_ns - before.runnable_ns) / 1e9;
  spin.blocked_s = spin.wall_s - spin.on_cpu_s - runnable_s;
  return spin;
}

ProfilerOptions PushOptions(const std::string& url) {
  ProfilerOptions o;
  o.event = "cpu";  // falls back to ctimer/itimer where perf is refused
  o.interval = absl::Milliseconds(5);
  o.push.url = url;
  o.push.every = absl::Seconds(1);
  o.push.app = "embedded";
  o.push.labels = {{"team", "core"}, {"env", "test"}};
  return o;
}

TEST(ProfilerPushTest, WindowsCarryLabelsRangesAndEverySampleOnce) {
  IngestReceiver receiver;
  const int64_t t0 = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(Profiler::Global().Start(PushOptions(receiver.Url())).ok());
  HotPushLoop(2.5);
  absl::StatusOr<Profile> whole = Profiler::Global().Stop();
  const int64_t t1 = absl::ToUnixSeconds(absl::Now()) + 1;
  ASSERT_TRUE(whole.ok()) << whole.status();
  // Two full windows and the last 0.5 s, pushed by Stop().
  std::vector<IngestRequest> got = receiver.got();
  ASSERT_GE(got.size(), 2u);
  EXPECT_LE(got.size(), 4u);
  EXPECT_THAT(whole->metadata().engine_note,
              HasSubstr(absl::StrCat(got.size(), " windows sent, 0 dropped, 0 failed")));

  uint64_t pushed = 0;
  int64_t previous_until = 0;
  bool skip = false;
  for (size_t i = 0; i < got.size(); ++i) {
    IngestRequest& q = got[i];
    SCOPED_TRACE(absl::StrCat("window ", i));
    EXPECT_EQ(q.path, "/ingest");
    const std::string& name = q.params["name"];
    EXPECT_THAT(name, ::testing::StartsWith("embedded{"));
    EXPECT_THAT(name, HasSubstr(absl::StrCat("pid=", getpid())));
    EXPECT_THAT(name, HasSubstr("team=core"));
    EXPECT_THAT(name, HasSubstr("env=test"));
    EXPECT_THAT(name, ::testing::ContainsRegex("build_id=[0-9a-f]{40}"));
    EXPECT_THAT(name, ::testing::ContainsRegex("host=[^,}]+"));
    int64_t from = 0, until = 0;
    ASSERT_TRUE(absl::SimpleAtoi(q.params["from"], &from));
    ASSERT_TRUE(absl::SimpleAtoi(q.params["until"], &until));
    EXPECT_GE(from, t0);
    EXPECT_LE(until, t1);
    EXPECT_LE(until - from, 2);  // a 1 s window in whole seconds
    EXPECT_GE(from, previous_until) << "windows overlap";
    previous_until = until;
    absl::StatusOr<Profile> window = ParsePprof(q.body, "window");
    ASSERT_TRUE(window.ok()) << window.status();
    pushed += window->total_samples();
    EXPECT_GT(SamplesWith(*window, "HotPushLoop"), 0u) << "every window shows the spin";
    if (i == 0) {
      std::string raw = PprofRaw(q.body, TestDir(), "embedded0.pb.gz", &skip);
      if (!skip) {
        EXPECT_THAT(raw, HasSubstr("HotPushLoop")) << raw;
      }
    }
  }
  // Windows are deltas of one capture: together they are the capture.
  EXPECT_EQ(pushed, whole->total_samples());
  if (skip) GTEST_SKIP() << "all checked but `go tool pprof`: apt-get install golang-go";
}

// The bound and the pace: a receiver that accepts and never answers. The
// spinning thread's iterations per second with it, against the same run
// with a receiver that answers at once.
TEST(ProfilerPushTest, HangingReceiverNeitherSlowsTheProgramNorHoldsStop) {
  ASSERT_GT(ReadThreadTimes().on_cpu_ns, 0u) << "/proc/thread-self/schedstat unreadable";
  Spin spin[2];
  for (int hang = 0; hang < 2; ++hang) {
    IngestBehaviour behaviour;
    behaviour.hang = hang == 1;
    IngestReceiver receiver(behaviour);
    ProfilerOptions o = PushOptions(receiver.Url());
    o.push.stop_wait = absl::Milliseconds(500);
    ASSERT_TRUE(Profiler::Global().Start(o).ok());
    spin[hang] = MeasuredSpin(3.2);
    const absl::Time stop = absl::Now();
    absl::StatusOr<Profile> whole = Profiler::Global().Stop();
    const absl::Duration took = absl::Now() - stop;
    ASSERT_TRUE(whole.ok()) << whole.status();
    SCOPED_TRACE(whole->metadata().engine_note);
    if (hang == 1) {
      EXPECT_GE(receiver.seen(), 1);
      EXPECT_TRUE(receiver.got().empty());
      EXPECT_THAT(whole->metadata().engine_note, HasSubstr("0 windows sent"));
      // Stop(): the last window's Dump and encoding, 500 ms stop_wait,
      // then the hung send is aborted (not its 1 s timeout waited out).
      EXPECT_LT(took, absl::Milliseconds(1500)) << took;
      std::printf("Stop() with a hung receiver: %.0f ms (stop_wait 500 ms)\n",
                  absl::ToDoubleMilliseconds(took));
    } else {
      EXPECT_THAT(whole->metadata().engine_note, HasSubstr("0 dropped, 0 failed"));
    }
  }
  // A program that waited on the network would be blocked for part of
  // the spin. Its pace is compared per second on a CPU, not per second of
  // wall time: another process taking the CPU (builds, other tests) makes
  // the thread wait runnable, which is not our doing and is left out.
  // Loose bounds: signal delivery and the handler cost the same in both.
  for (int hang = 0; hang < 2; ++hang) {
    std::printf("%s receiver: %.0f rounds in %.2f s, %.2f s on a CPU, %.3f s blocked\n",
                hang ? "hung" : "healthy", static_cast<double>(spin[hang].rounds),
                spin[hang].wall_s, spin[hang].on_cpu_s, spin[hang].blocked_s);
    EXPECT_LT(spin[hang].blocked_s, 0.1 * spin[hang].wall_s)
        << (hang ? "hung" : "healthy") << " receiver: the spinning thread was blocked";
  }
  const double pace_healthy = spin[0].rounds / spin[0].on_cpu_s;
  const double pace_hung = spin[1].rounds / spin[1].on_cpu_s;
  std::printf("rounds per CPU-second: healthy %.0f, hung %.0f: ratio %.2f\n", pace_healthy,
              pace_hung, pace_hung / pace_healthy);
  EXPECT_GT(pace_hung / pace_healthy, 0.7);
}

// fork() while pushing: the child has none of the push threads, so it must
// neither join them nor send; it exits at once (its exit handlers run,
// including the push's), and the parent's push goes on.
TEST(ProfilerPushTest, ForkedChildExitsAtOnceAndTheParentKeepsPushing) {
  IngestReceiver receiver;
  ASSERT_TRUE(Profiler::Global().Start(PushOptions(receiver.Url())).ok());
  HotPushLoop(1.3);  // one window sent
  const absl::Time forked = absl::Now();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    bool running = Profiler::Global().IsRunning();
    std::exit(running ? 3 : 0);  // the exit handlers run here
  }
  int status = 0;
  pid_t done = 0;
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && absl::Now() - forked < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Duration took = absl::Now() - forked;
  if (done == 0) kill(child, SIGKILL);
  EXPECT_EQ(done, child) << "the child hung at exit";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_LT(took, absl::Seconds(2)) << took;
  HotPushLoop(1.0);
  absl::StatusOr<Profile> whole = Profiler::Global().Stop();
  ASSERT_TRUE(whole.ok());
  EXPECT_THAT(whole->metadata().engine_note, HasSubstr("0 dropped, 0 failed"));
  std::vector<IngestRequest> got = receiver.got();
  EXPECT_GE(got.size(), 2u);
  for (IngestRequest& q : got) {
    EXPECT_THAT(q.params["name"], HasSubstr(absl::StrCat("pid=", getpid()))) << "only the parent";
  }
}

TEST(ProfilerPushTest, BadPushOptionsAreRefusedBeforeSampling) {
  struct Case {
    const char* url;
    absl::Duration every;
    std::pair<std::string, std::string> label;
    const char* message;
  } cases[] = {
      {"ftp://h:1", absl::Seconds(1), {"a", "b"}, "must start with http://"},
      {"http://h:1/?x=1", absl::Seconds(1), {"a", "b"}, "it has a query"},
      {"http://h:1", absl::Milliseconds(100), {"a", "b"}, "outside 1s..1h"},
      {"http://h:1", absl::Seconds(1), {"1a", "b"}, "push label '1a=b'"},
      {"http://h:1", absl::Seconds(1), {"a", "x,y"}, "push label 'a=x,y'"},
  };
  for (const Case& c : cases) {
    ProfilerOptions o;
    o.push.url = c.url;
    o.push.every = c.every;
    o.push.labels = {c.label};
    absl::Status st = Profiler::Global().Start(o);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.url;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message)) << c.url;
    EXPECT_FALSE(Profiler::Global().IsRunning());
  }
}

}  // namespace
}  // namespace flamekit
