// SPDX-License-Identifier: Apache-2.0
// The Profiler facade end to end on real engines: API errors, Dump, Status,
// per-thread split, thread filters, auto-stop, wall states, thread churn and
// deep recursion. The process-level robustness cases are in
// profiler_robustness_test.cc.

#include "flamekit/buffer/stack_record.h"
#include "flamekit/profiler.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/testing/profiler_test_util.h"
#include "flamekit/testing/thread_cpu.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

using ::flamekit::testing::ThreadCpuSeconds;

using ::flamekit::testing::Describe;
using ::flamekit::testing::SamplesWith;
using ::flamekit::testing::SpinFor;

class ProfilerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (profiler_.IsRunning()) (void)profiler_.Stop();
  }
  Profiler& profiler_ = Profiler::Global();
};

TEST_F(ProfilerTest, ApiErrorsAreClearStatuses) {
  EXPECT_THAT(profiler_.Stop().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not running")));
  EXPECT_THAT(profiler_.Dump().status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  ProfilerOptions bad;
  bad.event = "nonsense";
  EXPECT_THAT(profiler_.Start(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown profiler event")));
  bad = ProfilerOptions();
  bad.interval = absl::ZeroDuration();
  EXPECT_THAT(profiler_.Start(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  bad = ProfilerOptions();
  bad.max_depth = 0;
  EXPECT_THAT(profiler_.Start(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  bad = ProfilerOptions();
  bad.ring_capacity = 1000;
  EXPECT_THAT(profiler_.Start(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  bad = ProfilerOptions();
  bad.signal = SIGKILL;
  EXPECT_THAT(profiler_.Start(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(profiler_.SetDefaultOptions(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(profiler_.IsRunning());

  ProfilerOptions options;
  options.event = "ctimer";
  ASSERT_THAT(profiler_.Start(options), IsOk());
  EXPECT_TRUE(profiler_.IsRunning());
  EXPECT_THAT(profiler_.Start(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already running")));
  Profiler other;
  EXPECT_THAT(other.Start(options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("another Profiler")));
  ASSERT_TRUE(profiler_.Stop().ok());
  EXPECT_FALSE(profiler_.IsRunning());
  EXPECT_THAT(profiler_.Stop().status(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ProfilerTest, HardwareEventWithoutPmuSaysSo) {
  ProfilerOptions options;
  options.event = "cycles";
  absl::Status started = profiler_.Start(options);
  if (started.ok()) GTEST_SKIP() << "this machine has a PMU";
  EXPECT_THAT(started, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no PMU")));
  EXPECT_FALSE(profiler_.IsRunning());
}

TEST_F(ProfilerTest, DefaultOptionsDumpAndStatus) {
  ProfilerOptions defaults;
  defaults.event = "ctimer";
  defaults.interval = absl::Milliseconds(5);
  defaults.title = "defaults";
  ASSERT_THAT(profiler_.SetDefaultOptions(defaults), IsOk());
  EXPECT_EQ(profiler_.DefaultOptions().title, "defaults");
  ASSERT_THAT(profiler_.Start(), IsOk());
  SpinFor(0.3);
  ProfilerStatus status = profiler_.Status();
  EXPECT_TRUE(status.running);
  EXPECT_EQ(status.event, "ctimer");
  EXPECT_EQ(status.engine, "ctimer");
  EXPECT_GT(status.samples, 10u);
  EXPECT_GT(status.handler_time, absl::ZeroDuration());
  EXPECT_GE(status.threads, 1u);
  absl::StatusOr<Profile> snapshot = profiler_.Dump();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_TRUE(profiler_.IsRunning()) << "Dump must not stop";
  SpinFor(0.2);
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  EXPECT_GT(profile->total_samples(), snapshot->total_samples());
  EXPECT_EQ(profile->metadata().title, "defaults");
  EXPECT_EQ(profile->metadata().interval, absl::Milliseconds(5));
  EXPECT_EQ(profile->metadata().pid, getpid());
  EXPECT_GT(profile->metadata().end_time, profile->metadata().start_time);
  EXPECT_GT(SamplesWith(*profile, "SpinFor"), profile->total_samples() / 2)
      << Describe(*profile);
  ASSERT_THAT(profiler_.SetDefaultOptions(ProfilerOptions()), IsOk());
}

TEST_F(ProfilerTest, PerThreadSplitAndNameFilters) {
  std::atomic<bool> stop{false};
  std::atomic<double> alpha_cpu{0};
  auto worker = [&](const char* name) {
    pthread_setname_np(pthread_self(), name);
    double start = ThreadCpuSeconds();
    while (!stop.load()) {
      SpinFor(0.01);
      if (name[3] == 'a') alpha_cpu = ThreadCpuSeconds() - start;
    }
  };
  std::thread a(worker, "fk-alpha"), b(worker, "fk-beta");
  absl::SleepFor(absl::Milliseconds(20));  // let them name themselves
  ProfilerOptions options;
  options.event = "ctimer";
  options.per_thread = true;
  options.exclude_threads = {"fk-beta"};
  ASSERT_THAT(profiler_.Start(options), IsOk());
  // Until fk-alpha has had 0.3 s of CPU (a busy machine gives it less than
  // the wall time), at most a minute.
  double alpha_at_start = alpha_cpu.load();
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (alpha_cpu.load() - alpha_at_start < 0.3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::StatusOr<Profile> profile = profiler_.Stop();
  stop = true;
  a.join();
  b.join();
  ASSERT_TRUE(profile.ok());
  // 10 ms ctimer over >= 0.3 s of CPU: ~30 samples.
  EXPECT_GT(SamplesWith(*profile, "fk-alpha tid="), 15u) << Describe(*profile);
  EXPECT_EQ(SamplesWith(*profile, "fk-beta"), 0u) << Describe(*profile);
  // Every stack starts with its thread.
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t) {
    EXPECT_EQ(profile->frame(stack[0]).kind, FrameKind::kThread);
  });
  EXPECT_GE(profile->metadata().threads, 1u);
}

TEST_F(ProfilerTest, AutoStopsAfterDuration) {
  ProfilerOptions options;
  options.event = "ctimer";
  options.duration = absl::Milliseconds(200);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  double cpu_before = ThreadCpuSeconds();
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (profiler_.IsRunning() && absl::Now() < deadline) SpinFor(0.002);
  double cpu_during = ThreadCpuSeconds() - cpu_before;
  EXPECT_FALSE(profiler_.IsRunning());
  EXPECT_THAT(profiler_.Start(options), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                 HasSubstr("call Stop()")));
  SpinFor(0.2);  // not sampled any more
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  absl::Duration took = profile->metadata().end_time - profile->metadata().start_time;
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Milliseconds(700)) << "auto-stop came late";
  // Samples match the CPU spent while it ran (10 ms ctimer), not the 0.2 s
  // spun afterwards.
  double expected = cpu_during / 0.010;
  EXPECT_GE(profile->total_samples(), expected * 0.5 - 2) << cpu_during << " s of CPU";
  EXPECT_LE(profile->total_samples(), expected * 1.3 + 3) << cpu_during << " s of CPU";
}

TEST_F(ProfilerTest, WallShowsBlockedThreadsWithTheirState) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads and cannot fork a "
                  "multi-threaded process";
#endif
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread blocked([&] {
    pthread_setname_np(pthread_self(), "fk-blocked");
    char c;
    EXPECT_EQ(read(fds[0], &c, 1), 1);
  });
  ProfilerOptions options;
  options.event = "wall";
  options.interval = absl::Milliseconds(5);
  options.include_threads = {"fk-blocked"};
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_THAT(profiler_.Start(options), IsOk());
  absl::SleepFor(absl::Milliseconds(400));
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  blocked.join();
  close(fds[0]);
  close(fds[1]);
  ASSERT_TRUE(profile.ok());
  EXPECT_GT(profile->total_samples(), 30u) << Describe(*profile);
  EXPECT_GT(SamplesWith(*profile, "[syscall read]"), profile->total_samples() * 8 / 10)
      << Describe(*profile);
  EXPECT_EQ(profile->metadata().engine, "wall");
}

// Two blocking calls made from sibling functions at the same depth: the
// wall engine leaves a thread alone while it stays in one call, and must
// notice when it moves to the other (the ticks of each wait go to its own
// stack, not all to the first).
// (Both phases call read() through WaitOnPipe, so that the stacks differ
// only above the wrapper's caller.)
__attribute__((noinline)) void WaitOnPipe(int fd) {
  char c;
  EXPECT_EQ(read(fd, &c, 1), 1);
  asm volatile("" ::: "memory");
}
__attribute__((noinline)) void WaitInFirstPhase(int fd) {
  WaitOnPipe(fd);
  asm volatile("" ::: "memory");
}
__attribute__((noinline)) void WaitInSecondPhase(int fd) {
  WaitOnPipe(fd);
  asm volatile("" ::: "memory");
}

TEST_F(ProfilerTest, TheCallerOfAFramelessSystemCallWrapperIsKept) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads";
#endif
  // glibc's read() keeps no frame, so a walk from inside it starts at its
  // caller's frame pointer and would name WaitOnPipe's caller instead: the
  // sample's stack words give WaitOnPipe back.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ProfilerOptions options;
  options.event = "wall";
  options.interval = absl::Milliseconds(5);
  options.include_threads = {"fk-pipe-wait"};
  ASSERT_THAT(profiler_.Start(options), IsOk());
  std::thread waiter([&] {
    pthread_setname_np(pthread_self(), "fk-pipe-wait");
    WaitInFirstPhase(fds[0]);
  });
  absl::SleepFor(absl::Milliseconds(400));
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  waiter.join();
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  close(fds[0]);
  close(fds[1]);
  const uint64_t blocked = SamplesWith(*profile, "[syscall read]");
  ASSERT_GT(blocked, 20u) << Describe(*profile);
  // The full chain, in order: the phase, then the function that read.
  uint64_t whole = 0;
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t count) {
    std::vector<std::string> names;
    for (FrameId id : stack) names.push_back(profile->frame(id).name);
    std::string joined = absl::StrJoin(names, ";");
    if (absl::StrContains(joined, "WaitInFirstPhase(int);") &&
        absl::StrContains(joined, "WaitOnPipe(int);") && absl::StrContains(joined, "read")) {
      whole += count;
    }
  });
  EXPECT_GT(whole, blocked * 9 / 10) << Describe(*profile);
}

TEST_F(ProfilerTest, WallFollowsAThreadFromOneBlockingCallToAnother) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads";
#endif
  int first[2], second[2];
  ASSERT_EQ(pipe(first), 0);
  ASSERT_EQ(pipe(second), 0);
  std::thread mover([&] {
    pthread_setname_np(pthread_self(), "fk-mover");
    WaitInFirstPhase(first[0]);
    WaitInSecondPhase(second[0]);
  });
  ProfilerOptions options;
  options.event = "wall";
  options.interval = absl::Milliseconds(5);
  options.include_threads = {"fk-mover"};
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_THAT(profiler_.Start(options), IsOk());
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(write(first[1], "x", 1), 1);
  absl::SleepFor(absl::Milliseconds(300));
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_EQ(write(second[1], "x", 1), 1);
  mover.join();
  for (int fd : {first[0], first[1], second[0], second[1]}) close(fd);
  ASSERT_TRUE(profile.ok());
  const uint64_t total = profile->total_samples();
  // ~120 ticks of 5 ms (fewer when the machine is slow to wake the timer).
  EXPECT_GT(total, 60u) << Describe(*profile);
  EXPECT_LT(total, 135u) << Describe(*profile);
  EXPECT_GT(SamplesWith(*profile, "WaitInFirstPhase"), total * 3 / 10) << Describe(*profile);
  EXPECT_GT(SamplesWith(*profile, "WaitInSecondPhase"), total * 3 / 10) << Describe(*profile);
  EXPECT_GT(SamplesWith(*profile, "[syscall read]"), total * 9 / 10) << Describe(*profile);
}

// ---- robustness ----

TEST_F(ProfilerTest, ThreadChurnIsSampledAndCleanedUp) {
  ProfilerOptions options;
  options.event = "ctimer";
  options.interval = absl::Milliseconds(1);
  options.thread_poll_interval = absl::Milliseconds(2);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  for (int round = 0; round < 8; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 5; ++i) threads.emplace_back([] { SpinFor(0.05); });
    for (auto& t : threads) t.join();
  }
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  // 40 threads of 50 ms CPU each. A thread is armed one poll after it
  // starts, which under ThreadSanitizer (slow thread start, slow /proc
  // reads) has been 20 ms and more: 50 ms leaves every thread time to be
  // seen, 20 ms did not (18 of 60 in a CI run). With the CPUs contended
  // each round outlives the collector's longest pause and a round's threads
  // replace the last round's at the same count: 12-20 of 40 were sampled
  // until the collector also watched for task creation.
  EXPECT_GT(profile->metadata().threads, 25u) << "new threads were not sampled";
  // At <= 250 Hz (the tick) a thread gives at most 12 samples; losing a poll
  // and a tick to being armed leaves ~6-11 each, so 120 means most gave some.
  EXPECT_GT(SamplesWith(*profile, "SpinFor"), 120u) << Describe(*profile);
}

template <int kRound>
__attribute__((noinline)) uint64_t ReplacementThread() {
  uint64_t r = SpinFor(0.4);
  asm volatile("" ::: "memory");
  return r + kRound;
}

TEST_F(ProfilerTest, AThreadThatReplacesAnotherAtTheSameCountIsSampled) {
  // A pool that swaps a thread for a new one keeps the thread count equal:
  // the collector must still notice the new thread, and soon, even after a
  // quiet spell has stretched its pause to the 100 ms maximum.
  ProfilerOptions options;
  options.event = "ctimer";
  options.interval = absl::Milliseconds(1);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  std::thread previous([] { absl::SleepFor(absl::Milliseconds(400)); });
  previous.join();
  std::thread round0(ReplacementThread<0>);
  round0.join();
  std::thread round1(ReplacementThread<1>);
  round1.join();
  std::thread round2(ReplacementThread<2>);
  round2.join();
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  // Each thread has 400 ms of CPU, ~100 samples at the 250 Hz the kernel's
  // tick allows CPU-clock timers; armed within a pause it gives 40 and more
  // even with the CPUs contended under AddressSanitizer. Unnoticed, it waits
  // for the once-a-second full listing (0 samples for two of the three).
  EXPECT_GT(SamplesWith(*profile, "ReplacementThread<0>"), 15u) << Describe(*profile);
  EXPECT_GT(SamplesWith(*profile, "ReplacementThread<1>"), 15u) << Describe(*profile);
  EXPECT_GT(SamplesWith(*profile, "ReplacementThread<2>"), 15u) << Describe(*profile);
}

__attribute__((noinline)) uint64_t Recurse(int depth) {
  if (depth == 0) return SpinFor(0.5);
  uint64_t r = Recurse(depth - 1);
  asm volatile("" ::: "memory");
  return r + 1;
}

TEST_F(ProfilerTest, DeepRecursionIsTruncatedAndMarked) {
  ProfilerOptions options;
  options.event = "ctimer";
  options.interval = absl::Milliseconds(2);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  // 10,000 frames need more than the default 8 MB stack at -O0 with ASan.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 << 20);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, [](void*) -> void* {
              Recurse(10000);
              return nullptr;
            }, nullptr), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  uint64_t truncated = SamplesWith(*profile, kTruncatedFrameName);
  EXPECT_GT(truncated, 50u) << Describe(*profile, 3);
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t) {
    EXPECT_LE(stack.size(), kMaxStackFrames + 1);
  });
}

}  // namespace
}  // namespace flamekit
