// SPDX-License-Identifier: Apache-2.0
// The Profiler facade in a process that does what real services do while it
// samples: a signal storm, its own SIGPROF handler, fork (and fork racing
// the profiler's calls), exit, exec, dlopen/dlclose, time in the kernel,
// and Start/Stop 1,000 times.

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

class ProfilerRobustnessTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (profiler_.IsRunning()) (void)profiler_.Stop();
  }
  Profiler& profiler_ = Profiler::Global();
};

TEST_F(ProfilerRobustnessTest, SurvivesASignalStorm) {
  ProfilerOptions options;
  options.event = "ctimer";
  options.interval = absl::Milliseconds(1);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  std::vector<std::atomic<pid_t>> tids(6);
  std::atomic<double> worker_cpu{0};
  for (int i = 0; i < 6; ++i) {
    workers.emplace_back([&, i] {
      tids[i] = CurrentTid();
      double last = ThreadCpuSeconds();
      while (!stop.load()) {
        SpinFor(0.005);
        double now = ThreadCpuSeconds();
        double total = worker_cpu.load();
        while (!worker_cpu.compare_exchange_weak(total, total + (now - last))) {
        }
        last = now;
      }
    });
  }
  // Foreign SIGPROFs (kill-style, si_code <= 0) on top of the samples: they
  // are chained to the previous disposition (SIG_DFL: dropped, not fatal).
  uint64_t dropped_before = DroppedForeignSignalCount();
  // Until the workers had 1 s of CPU between them (at most a minute).
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  uint64_t sent = 0;
  while ((worker_cpu.load() < 1.0 || sent < 1000) && absl::Now() < deadline) {
    for (auto& tid : tids) {
      if (tid.load() != 0) {
        syscall(SYS_tgkill, getpid(), tid.load(), SIGPROF);
        ++sent;
      }
    }
  }
  stop = true;
  for (auto& t : workers) t.join();
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  EXPECT_GT(sent, 1000u);
  EXPECT_GT(DroppedForeignSignalCount() - dropped_before, 0u);
  // 1 s of CPU with a 1 ms ctimer (tick-bound: <= 250 Hz per thread).
  EXPECT_GT(profile->total_samples(), 100u) << worker_cpu.load() << " s of CPU";
}

std::atomic<int> g_app_sigprof{0};
void AppSigprof(int) { g_app_sigprof.fetch_add(1); }

TEST_F(ProfilerRobustnessTest, ChainsToTheApplicationsSigprofHandler) {
  struct sigaction app = {}, saved = {};
  app.sa_handler = AppSigprof;
  sigemptyset(&app.sa_mask);
  ASSERT_EQ(sigaction(SIGPROF, &app, &saved), 0);
  ProfilerOptions options;
  options.event = "ctimer";
  ASSERT_THAT(profiler_.Start(options), IsOk());
  g_app_sigprof = 0;
  for (int i = 0; i < 5; ++i) raise(SIGPROF);  // the application's own signal
  SpinFor(0.2);
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(g_app_sigprof.load(), 5) << "application SIGPROFs must be chained, not eaten";
  EXPECT_GT(profile->total_samples(), 5u);
  struct sigaction now = {};
  sigaction(SIGPROF, nullptr, &now);
  EXPECT_EQ(now.sa_handler, &AppSigprof) << "the application's handler was not restored";
  sigaction(SIGPROF, &saved, nullptr);
}

TEST_F(ProfilerRobustnessTest, ForkedChildIsHealthyAndNotProfiling) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads and cannot fork a "
                  "multi-threaded process";
#endif
  for (const char* event : {"ctimer", "itimer", "wall", "cpu"}) {
    ProfilerOptions options;
    options.event = event;
    options.interval = absl::Milliseconds(1);
    ASSERT_THAT(profiler_.Start(options), IsOk()) << event;
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // Child: CPU work must not be interrupted by stray profiler signals,
      // the profiler must report not running and be startable again.
      SpinFor(0.2);
      if (Profiler::Global().IsRunning()) _exit(2);
      if (!absl::IsFailedPrecondition(Profiler::Global().Stop().status())) _exit(3);
      // And it can profile itself from scratch.
      ProfilerOptions fresh;
      fresh.event = "ctimer";
      fresh.interval = absl::Milliseconds(2);
      if (!Profiler::Global().Start(fresh).ok()) _exit(4);
      SpinFor(0.1);
      absl::StatusOr<Profile> own = Profiler::Global().Stop();
      if (!own.ok() || own->total_samples() < 5) _exit(5);
      if (own->metadata().pid != getpid()) _exit(6);
      _exit(0);
    }
    SpinFor(0.1);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status)) << event << ": child died by signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << event << ": child exit code (2: thought it was profiling, 3: Stop "
        << "did not say not running, 4-6: could not profile itself)";
    absl::StatusOr<Profile> profile = profiler_.Stop();
    ASSERT_TRUE(profile.ok()) << event;
  }
}

// A fork() that lands while another thread is inside a Profiler call, or
// while the collector symbolizes, must not hand the child a lock that is
// held forever (seen once: a child hung in IsRunning() on the symbolizer's
// lock). Children that do not exit within 10 s count as deadlocked.
TEST_F(ProfilerRobustnessTest, ForkRacingProfilerCallsNeverDeadlocksTheChild) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads and cannot fork a "
                  "multi-threaded process";
#endif
  ProfilerOptions options;
  options.event = "ctimer";
  options.interval = absl::Milliseconds(1);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  std::atomic<bool> stop{false};
  std::thread caller([&] {
    while (!stop.load()) {
      (void)profiler_.Status();
      (void)profiler_.Dump();  // drains and symbolizes under both locks
    }
  });
  int deadlocked = 0, failed = 0;
  for (int i = 0; i < 40 && deadlocked < 3; ++i) {
    SpinFor(0.005);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (Profiler::Global().IsRunning()) _exit(2);
      (void)Profiler::Global().Status();
      _exit(0);
    }
    int status = 0;
    pid_t done = 0;
    for (int waited_ms = 0; waited_ms < 10000 && done == 0; waited_ms += 5) {
      done = waitpid(child, &status, WNOHANG);
      if (done == 0) absl::SleepFor(absl::Milliseconds(5));
    }
    if (done == 0) {
      ++deadlocked;
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failed;
    }
  }
  stop = true;
  caller.join();
  ASSERT_TRUE(profiler_.Stop().ok());
  EXPECT_EQ(deadlocked, 0) << "children hung after fork()";
  EXPECT_EQ(failed, 0) << "children failed (2: thought they were profiling)";
}

TEST_F(ProfilerRobustnessTest, ExitWhileProfilingIsClean) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads and cannot fork a "
                  "multi-threaded process";
#endif
  for (const char* event : {"ctimer", "wall", "cpu"}) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ProfilerOptions options;
      options.event = event;
      options.interval = absl::Milliseconds(1);
      if (!Profiler::Global().Start(options).ok()) _exit(3);
      SpinFor(0.05);
      exit(0);  // no Stop(): the atexit hook must stop the collector
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status)) << event << ": died by signal "
                                   << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    EXPECT_EQ(WEXITSTATUS(status), 0) << event;
  }
}

// Reads /dev/zero for `seconds` of the thread's CPU: nearly all of it in
// the kernel (clearing the user buffer). Through syscall() so that
// ThreadSanitizer's read() interceptor (which marks the whole buffer as
// written, in user space) does not take the time instead.
__attribute__((noinline)) uint64_t ReadZeroesFor(double seconds) {
  static char buffer[1 << 20];
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t total = 0;
  double until = ThreadCpuSeconds() + seconds;
  while (ThreadCpuSeconds() < until) {
    long n = syscall(SYS_read, fd, buffer, sizeof(buffer));
    if (n > 0) total += static_cast<uint64_t>(n);
  }
  close(fd);
  return total;
}

TEST_F(ProfilerRobustnessTest, CpuEngineSamplesTimeInTheKernelWithKernelFrames) {
  ProfilerOptions options;
  options.event = "cpu";
  options.interval = absl::Milliseconds(1);
  options.fallback = false;
  options.include_threads = {"fk-kernel-rd"};
  absl::Status started = profiler_.Start(options);
  if (absl::IsPermissionDenied(started) || absl::IsFailedPrecondition(started)) {
    GTEST_SKIP() << "perf events unavailable: " << started;
  }
  ASSERT_THAT(started, IsOk());
  double cpu_ms = 0;
  std::thread reader([&] {
    pthread_setname_np(pthread_self(), "fk-kernel-rd");
    absl::SleepFor(absl::Milliseconds(50));  // armed by the collector
    const double before = ThreadCpuSeconds();
    ReadZeroesFor(0.4);
    cpu_ms = (ThreadCpuSeconds() - before) * 1000;
  });
  reader.join();
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  if (absl::StrContains(profile->metadata().engine_note, "no kernel frames")) {
    GTEST_SKIP() << profile->metadata().engine_note;
  }
  // Without kernel events a sample that lands in the kernel is dropped, and
  // this thread spends its time there: it would get a handful of samples.
  EXPECT_GT(profile->total_samples(), cpu_ms * 0.6) << Describe(*profile);
  // Most carry named kernel frames, always leafward of the user ones, and
  // those are of the read.
  uint64_t with_kernel = 0, reading = 0;
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t count) {
    bool kernel = false, named = false, read = false;
    for (FrameId id : stack) {
      const auto& frame = profile->frame(id);
      if (frame.kind == FrameKind::kKernel) {
        kernel = true;
        named = named || frame.name != "[kernel]";
        read = read || absl::StrContains(frame.name, "read");
      } else {
        EXPECT_FALSE(kernel) << "user frame " << frame.name << " above a kernel frame";
      }
    }
    if (named) with_kernel += count;
    if (read) reading += count;
  });
  EXPECT_GT(with_kernel, profile->total_samples() / 2) << Describe(*profile, 40);
  EXPECT_GT(reading, profile->total_samples() / 4) << Describe(*profile, 40);
  // syscall() keeps no frame: its caller is found from the stack words.
  EXPECT_GT(SamplesWith(*profile, "ReadZeroesFor"), profile->total_samples() / 2)
      << Describe(*profile, 40);
}

TEST_F(ProfilerRobustnessTest, ExecOfAChildWhileProfiling) {
  ProfilerOptions options;
  options.event = "cpu";
  options.interval = absl::Milliseconds(1);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  for (int i = 0; i < 10; ++i) {
    pid_t child = 0;
    char sh[] = "/bin/sh";
    char flag[] = "-c";
    char script[] = "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; exit 7";
    char* argv[] = {sh, flag, script, nullptr};
    ASSERT_EQ(posix_spawn(&child, "/bin/sh", nullptr, nullptr, argv, environ), 0);
    SpinFor(0.01);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
    EXPECT_EQ(WEXITSTATUS(status), 7);
  }
  ASSERT_TRUE(profiler_.Stop().ok());
}

TEST_F(ProfilerRobustnessTest, DlopenedCodeIsNamedAndDlcloseIsSafe) {
  const char* srcdir = getenv("TEST_SRCDIR");
  std::string path = absl::StrCat(srcdir ? srcdir : ".",
                                  "/flamekit/include/flamekit/libfk_profiler_test_dso.so");
  ProfilerOptions options;
  options.event = "ctimer";
  options.interval = absl::Milliseconds(2);
  ASSERT_THAT(profiler_.Start(options), IsOk());
  for (int round = 0; round < 3; ++round) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    auto burn = reinterpret_cast<uint64_t (*)(double)>(dlsym(handle, "FkDsoBurn"));
    ASSERT_NE(burn, nullptr);
    // Drains come 100-200 ms apart (the collector's tick), so 0.3 s of CPU
    // spans at least one while the library is loaded: that drain must name
    // it, and the name must survive dlclose().
    burn(0.3);
    ASSERT_EQ(dlclose(handle), 0);
  }
  SpinFor(0.05);
  absl::StatusOr<Profile> profile = profiler_.Stop();
  ASSERT_TRUE(profile.ok());
  EXPECT_GT(SamplesWith(*profile, "FkDsoBurn"), 50u) << Describe(*profile);
}

TEST_F(ProfilerRobustnessTest, StartStopAThousandTimes) {
  struct rusage before_usage;
  getrusage(RUSAGE_SELF, &before_usage);
  for (int i = 0; i < 1000; ++i) {
    ProfilerOptions options;
    options.event = (i % 3 == 0) ? "ctimer" : (i % 3 == 1 ? "cpu" : "itimer");
    options.interval = absl::Milliseconds(1);
    options.ring_capacity = 64;
    ASSERT_THAT(profiler_.Start(options), IsOk()) << "iteration " << i;
    if (i % 100 == 0) SpinFor(0.01);
    ASSERT_TRUE(profiler_.Stop().ok()) << "iteration " << i;
  }
  struct rusage after_usage;
  getrusage(RUSAGE_SELF, &after_usage);
#if !defined(__SANITIZE_ADDRESS__)
  // No leak worth the name: max RSS grew by less than 50 MB. (Under ASan
  // its quarantine keeps freed memory; LeakSanitizer checks leaks there.)
  EXPECT_LT(after_usage.ru_maxrss - before_usage.ru_maxrss, 50 * 1024);
#endif
  EXPECT_FALSE(IsSignalHandlerInstalled(SIGPROF));
}

}  // namespace
}  // namespace flamekit
