// SPDX-License-Identifier: Apache-2.0
// The in-process engines on this machine's real timers, perf events and
// signals: each engine delivers samples at the rate its clock allows, the
// handler unwinds real stacks, foreign signals are chained, and the
// previous handler comes back.

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "flamekit/sample/ctimer_sampler.h"
#include "flamekit/sample/itimer_sampler.h"
#include "flamekit/sample/perf_sampler.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/sample/thread_list.h"
#include "flamekit/sample/wall_clock_sampler.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/testing/thread_cpu.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;

#define ASSERT_OK(expr) ASSERT_THAT((expr), IsOk())

using ::flamekit::testing::ThreadCpuSeconds;

__attribute__((noinline)) uint64_t Burn(double seconds) {
  double until = ThreadCpuSeconds() + seconds;
  volatile uint64_t x = 0;
  while (ThreadCpuSeconds() < until) {
    for (int i = 0; i < 10000; ++i) x = x + i;
  }
  return x;
}

// ---- signal_handler.h ----

std::atomic<int> g_app_handler_calls{0};
void AppHandler(int) { g_app_handler_calls.fetch_add(1); }

TEST(SignalHandlerTest, ChainsForeignSignalsAndRestoresPrevious) {
  struct sigaction app = {}, saved = {};
  app.sa_handler = AppHandler;
  sigemptyset(&app.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &app, &saved), 0);
  ASSERT_OK(InstallSignalHandler(SIGUSR1, &SampleSignalCallback));
  EXPECT_TRUE(IsSignalHandlerInstalled(SIGUSR1));
  g_app_handler_calls = 0;
  raise(SIGUSR1);  // SI_TKILL: not a sample, goes to the application
  EXPECT_EQ(g_app_handler_calls.load(), 1);
  RestoreSignalHandler(SIGUSR1);
  EXPECT_FALSE(IsSignalHandlerInstalled(SIGUSR1));
  struct sigaction now = {};
  sigaction(SIGUSR1, nullptr, &now);
  EXPECT_EQ(now.sa_handler, &AppHandler) << "previous handler not restored";
  raise(SIGUSR1);
  EXPECT_EQ(g_app_handler_calls.load(), 2);
  sigaction(SIGUSR1, &saved, nullptr);
}

TEST(SignalHandlerTest, StraySignalAfterRestoreDoesNotKillWhenPreviousWasDefault) {
  struct sigaction dfl = {}, saved = {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(sigaction(SIGUSR2, &dfl, &saved), 0);
  ASSERT_OK(InstallSignalHandler(SIGUSR2, &SampleSignalCallback));
  RestoreSignalHandler(SIGUSR2);
  uint64_t dropped = DroppedForeignSignalCount();
  raise(SIGUSR2);  // SIG_DFL would terminate us
  EXPECT_EQ(DroppedForeignSignalCount(), dropped + 1);
  // Installing again reuses the kept dispatcher.
  ASSERT_OK(InstallSignalHandler(SIGUSR2, &SampleSignalCallback));
  RestoreSignalHandler(SIGUSR2);
  sigaction(SIGUSR2, &saved, nullptr);
}

TEST(SignalHandlerTest, RejectsSignalsThatCannotCarrySamples) {
  EXPECT_THAT(InstallSignalHandler(SIGKILL, &SampleSignalCallback),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InstallSignalHandler(0, &SampleSignalCallback),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(InstallSignalHandler(SIGPROF, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ---- engines ----

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ring = StackRing::Create(8192);
    ASSERT_TRUE(ring.ok());
    ring_ = std::move(*ring);
    auto bounds = CurrentThreadStackBounds();
    ASSERT_TRUE(bounds.ok());
    table_.Insert(static_cast<uint32_t>(CurrentTid()), *bounds);
    ResetSamplerCounters();
  }
  void TearDown() override { DeactivateSampling(); }

  void Activate(SampleSource source) {
    ActivateSampling(SamplingTarget{ring_.get(), &table_, kMaxStackFrames}, source);
  }

  // Samples in the ring of thread `tid` (repeat records count their
  // weight), and the deepest one.
  struct Drained {
    uint64_t samples = 0;
    uint64_t repeated = 0;  // of those, samples carried by repeat records
    uint32_t max_depth = 0;
    uint64_t syscall_samples = 0;
    std::vector<int32_t> syscalls;
  };
  Drained DrainFor(pid_t tid) {
    Drained d;
    ring_->Drain([&](const StackRecord& r) {
      if (static_cast<pid_t>(r.tid) != tid || (r.flags & kStackRecordProbe)) return;
      d.samples += r.weight;
      if (r.flags & kStackRecordRepeat) {
        EXPECT_GT(d.samples, r.weight) << "a repeat record came before any sample";
        EXPECT_EQ(r.frame_count, 0u);
        d.repeated += r.weight;
        d.syscall_samples += r.weight;
        return;
      }
      d.max_depth = std::max(d.max_depth, r.frame_count);
      if (r.state == ThreadState::kSyscall) {
        ++d.syscall_samples;
        d.syscalls.push_back(r.syscall_number);
      }
    });
    return d;
  }

  // Runs `sampler` on this thread for `cpu_seconds` of CPU and checks the
  // sample count against CPU time / interval.
  void ExpectRate(Sampler& sampler, absl::Duration interval, double cpu_seconds,
                  double min_ratio, double max_ratio) {
    Activate(sampler.source());
    ASSERT_OK(sampler.Start());
    ASSERT_OK(sampler.AddThread(CurrentTid()));
    double before = ThreadCpuSeconds();
    Burn(cpu_seconds);
    double spent = ThreadCpuSeconds() - before;
    sampler.Stop();
    DeactivateSampling();
    Drained d = DrainFor(CurrentTid());
    double expected = spent / absl::ToDoubleSeconds(interval);
    EXPECT_GE(d.samples, expected * min_ratio)
        << sampler.name() << ": " << d.samples << " samples for " << spent << " s of CPU";
    EXPECT_LE(d.samples, expected * max_ratio + 2) << sampler.name();
    EXPECT_GE(d.max_depth, 3u) << "the handler did not unwind the real stack";
    SamplerCounters c = ReadSamplerCounters();
    EXPECT_EQ(c.dropped, 0u);
    EXPECT_GT(c.handler_ns, 0u);
  }

  // Runs the wall engine (5 ms) over a thread that calls wait(read_fd)
  // until a byte arrives on the pipe after `how_long`; returns the thread's
  // id and how long it waited. `sampler` is stopped afterwards.
  struct BlockedRun {
    pid_t tid = 0;
    absl::Duration waited;
  };
  BlockedRun WallOverBlockedThread(WallClockSampler& sampler, absl::Duration how_long,
                                   const std::function<void(int)>& wait) {
    BlockedRun run;
    Activate(sampler.source());
    EXPECT_THAT(sampler.Start(), IsOk());
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    std::atomic<pid_t> tid{0};
    std::thread blocked([&] {
      auto bounds = CurrentThreadStackBounds();
      table_.Insert(static_cast<uint32_t>(CurrentTid()), *bounds);
      tid = CurrentTid();
      wait(fds[0]);
    });
    while (tid.load() == 0) std::this_thread::yield();
    EXPECT_THAT(sampler.AddThread(tid.load()), IsOk());
    absl::Time start = absl::Now();
    absl::SleepFor(how_long);
    EXPECT_EQ(write(fds[1], "x", 1), 1);
    blocked.join();
    run.waited = absl::Now() - start;
    run.tid = tid.load();
    sampler.Stop();
    DeactivateSampling();
    close(fds[0]);
    close(fds[1]);
    return run;
  }

  std::unique_ptr<StackRing> ring_;
  ThreadStackTable table_{256};
};

TEST_F(EngineTest, CtimerSamplesThreadCpuTime) {
  CtimerSampler sampler(absl::Milliseconds(10));
  ExpectRate(sampler, absl::Milliseconds(10), 1.0, 0.7, 1.15);
  EXPECT_FALSE(IsSignalHandlerInstalled(SIGPROF));
}

TEST_F(EngineTest, ItimerSamplesProcessCpuTime) {
  ItimerSampler sampler(absl::Milliseconds(10));
  ExpectRate(sampler, absl::Milliseconds(10), 1.0, 0.7, 1.15);
  struct itimerval now = {};
  getitimer(ITIMER_PROF, &now);
  EXPECT_EQ(now.it_value.tv_sec + now.it_value.tv_usec, 0) << "ITIMER_PROF left armed";
}

TEST_F(EngineTest, PerfCpuClockSamplesAtTheFullRate) {
  absl::StatusOr<PerfEventSpec> cpu = ParsePerfEvent("cpu");
  ASSERT_TRUE(cpu.ok());
  PerfSampler probe(*cpu, PerfPeriod::Interval(absl::Milliseconds(1)));
  ASSERT_OK(probe.Start());
  absl::Status opened = probe.AddThread(CurrentTid());
  probe.Stop();
  if (!opened.ok()) GTEST_SKIP() << "perf events unavailable: " << opened;
  PerfSampler sampler(*cpu, PerfPeriod::Interval(absl::Milliseconds(1)));
  ExpectRate(sampler, absl::Milliseconds(1), 0.5, 0.8, 1.1);
}

TEST_F(EngineTest, HardwareEventsSayNoPmu) {
  absl::StatusOr<PerfEventSpec> cycles = ParsePerfEvent("cycles");
  ASSERT_TRUE(cycles.ok());
  PerfSampler sampler(*cycles, PerfPeriod());
  ASSERT_OK(sampler.Start());
  absl::Status added = sampler.AddThread(CurrentTid());
  sampler.Stop();
  if (added.ok()) GTEST_SKIP() << "this machine has a PMU";
  EXPECT_THAT(added, StatusIs(absl::StatusCode::kFailedPrecondition,
                              ::testing::HasSubstr("no PMU")));
}

TEST_F(EngineTest, CtimerFollowsOtherThreadsAndForgetsExitedOnes) {
  CtimerSampler sampler(absl::Milliseconds(5));
  Activate(sampler.source());
  ASSERT_OK(sampler.Start());
  std::atomic<pid_t> tid{0};
  std::atomic<bool> go{false};
  std::thread worker([&] {
    tid = CurrentTid();
    while (!go.load()) std::this_thread::yield();
    Burn(0.3);
  });
  while (tid.load() == 0) std::this_thread::yield();
  ASSERT_OK(sampler.AddThread(tid.load()));
  go = true;
  worker.join();
  // The thread exited: its samples were taken, and re-adding it says so.
  EXPECT_THAT(sampler.AddThread(tid.load() + 1000000), StatusIs(absl::StatusCode::kNotFound));
  sampler.RemoveThread(tid.load());
  sampler.Stop();
  DeactivateSampling();
  Drained d = DrainFor(tid.load());
  EXPECT_GE(d.samples, 30u);
  // Its stack bounds were unknown (not in the table): leaf-only samples.
  EXPECT_EQ(d.max_depth, 1u);
  EXPECT_GE(ReadSamplerCounters().no_bounds, d.samples);
}

TEST_F(EngineTest, WallSeesBlockedThreadsInTheirSystemCall) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads and cannot fork a "
                  "multi-threaded process";
#endif
  WallClockSampler sampler(absl::Milliseconds(5));
  BlockedRun run = WallOverBlockedThread(sampler, absl::Milliseconds(300), [](int fd) {
    char c;
    EXPECT_EQ(read(fd, &c, 1), 1);  // blocks; restarted after each sample
  });
  Drained d = DrainFor(run.tid);
  double expected = absl::ToDoubleMilliseconds(run.waited) / 5;
  EXPECT_GE(d.samples, expected * 0.5) << "wall samples of a blocked thread";
  EXPECT_GE(d.syscall_samples, d.samples * 8 / 10);
  EXPECT_THAT(d.syscalls, ::testing::Contains(SYS_read));
  EXPECT_GT(sampler.signals_sent(), 0u);
  // The thread stayed in one read(): after its first sample the ticks are
  // repeats, not signals.
  EXPECT_GE(d.repeated, d.samples / 2) << sampler.signals_sent() << " signals";
  EXPECT_LE(sampler.signals_sent(), d.samples / 4 + 2);
}

// An idle thread in poll() (never restarted after a handler) used to get an
// EINTR every interval; now it is woken once, then left alone while its
// ticks are still counted.
TEST_F(EngineTest, WallLeavesAThreadBlockedInPollAlone) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads";
#endif
  WallClockSampler sampler(absl::Milliseconds(5));
  std::atomic<int> interrupted{0};
  BlockedRun run = WallOverBlockedThread(sampler, absl::Milliseconds(500), [&](int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, -1) < 0 && errno == EINTR) interrupted.fetch_add(1);
  });
  Drained d = DrainFor(run.tid);
  const double ticks = absl::ToDoubleMilliseconds(run.waited) / 5;
  EXPECT_GE(d.samples, ticks * 0.5) << "an idle thread's time must still be counted";
  EXPECT_LE(d.samples, ticks + 2);
  EXPECT_GE(d.syscall_samples, d.samples * 9 / 10);
#if defined(__x86_64__)
  EXPECT_THAT(d.syscalls, ::testing::Contains(SYS_poll)) << "poll() returned EINTR: named from libc";
#endif
  // ~100 ticks: before idle threads were skipped, ~100 EINTRs.
  EXPECT_LE(interrupted.load(), 10) << sampler.ticks_skipped() << " ticks skipped";
  EXPECT_GE(sampler.ticks_skipped(), static_cast<uint64_t>(ticks * 0.5));
}

// ---- thread_list.h ----

TEST(ThreadListTest, ListsThreadsAndNames) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    pthread_setname_np(pthread_self(), "fk-lister");
    tid = CurrentTid();
    while (!stop.load()) std::this_thread::yield();
  });
  while (tid.load() == 0) std::this_thread::yield();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<pid_t> tids, ListThreadIds());
  EXPECT_THAT(tids, ::testing::Contains(CurrentTid()));
  EXPECT_THAT(tids, ::testing::Contains(tid.load()));
  EXPECT_EQ(ReadThreadName(tid.load()), "fk-lister");
  stop = true;
  worker.join();
  EXPECT_EQ(ReadThreadName(tid.load()), "");
  EXPECT_TRUE(ThreadNameMatches("fk-*", "fk-lister"));
  EXPECT_FALSE(ThreadNameMatches("io?", "fk-lister"));
  EXPECT_THAT(ListThreadIds("/nonexistent").status(),
              StatusIs(absl::StatusCode::kInternal));
}

}  // namespace
}  // namespace flamekit
