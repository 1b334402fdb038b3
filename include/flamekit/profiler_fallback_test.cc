// SPDX-License-Identifier: Apache-2.0
// The fallback path, forced for real: a forked child installs a seccomp
// filter that makes perf_event_open fail with EACCES (and, in one case,
// timer_create with EPERM), then starts a `cpu` profile. The engine must
// become ctimer (or itimer), and the profile must say so and why.

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "flamekit/profiler.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/testing/thread_cpu.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

using ::flamekit::testing::ThreadCpuSeconds;

__attribute__((noinline)) uint64_t SpinFor(double seconds) {
  double until = ThreadCpuSeconds() + seconds;
  volatile uint64_t x = 0;
  while (ThreadCpuSeconds() < until) {
    for (int i = 0; i < 10000; ++i) x = x + i;
  }
  return x;
}

// Makes each syscall of `denied` ({nr, errno}) fail in this process.
bool DenySyscalls(const std::vector<std::pair<int, int>>& denied) {
  std::vector<sock_filter> f;
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  for (const auto& [nr, error] : denied) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K,
                         SECCOMP_RET_ERRNO | (static_cast<uint32_t>(error) & SECCOMP_RET_DATA)));
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  sock_fprog program = {static_cast<unsigned short>(f.size()), f.data()};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

// Runs `body` in a forked child; the child's exit code is the result and
// whatever it writes to `message_fd` the explanation.
struct ChildResult {
  int code = -1;
  std::string message;
};
template <typename Body>
ChildResult RunInChild(Body body) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    std::string message;
    int code = body(&message);
    (void)!write(fds[1], message.data(), message.size());
    _exit(code);
  }
  close(fds[1]);
  ChildResult result;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) result.message.append(buffer, n);
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
  return result;
}

int ProfileCpuInChild(std::string* message, const std::string& want_engine) {
  ProfilerOptions options;
  options.event = "cpu";
  options.interval = absl::Milliseconds(2);
  absl::Status started = Profiler::Global().Start(options);
  if (!started.ok()) {
    *message = std::string(started.ToString());
    return 2;
  }
  ProfilerStatus status = Profiler::Global().Status();
  SpinFor(0.3);
  absl::StatusOr<Profile> profile = Profiler::Global().Stop();
  if (!profile.ok()) {
    *message = std::string(profile.status().ToString());
    return 3;
  }
  const ProfileMetadata& m = profile->metadata();
  *message = absl::StrCat("engine=", m.engine, " note=", m.engine_note,
                          " status.engine=", status.engine,
                          " samples=", profile->total_samples());
  if (m.engine != want_engine || status.engine != want_engine) return 4;
  if (!absl::StrContains(m.engine_note, "perf events unavailable") ||
      !absl::StrContains(m.engine_note, "fell back to " + want_engine) ||
      !absl::StrContains(m.engine_note, "Permission denied")) {
    return 5;
  }
  if (profile->total_samples() < 20) return 6;
  if (m.event != "cpu") return 7;
  return 0;
}

TEST(ProfilerFallbackTest, SeccompDeniedPerfFallsBackToCtimer) {
  ChildResult r = RunInChild([](std::string* message) {
    if (!DenySyscalls({{SYS_perf_event_open, EACCES}})) {
      *message = "seccomp unavailable";
      return 77;
    }
    return ProfileCpuInChild(message, "ctimer");
  });
  if (r.code == 77) GTEST_SKIP() << r.message;
  EXPECT_EQ(r.code, 0) << r.message;
}

// As in a Docker container with the default profile: EPERM from a seccomp
// filter. The note must name the filter and what allows the syscall, not
// only perf's advice to lower perf_event_paranoid (which would not help).
TEST(ProfilerFallbackTest, SeccompEpermNoteNamesTheFilterAndTheFix) {
  ChildResult r = RunInChild([](std::string* message) {
    if (!DenySyscalls({{SYS_perf_event_open, EPERM}})) {
      *message = "seccomp unavailable";
      return 77;
    }
    ProfilerOptions options;
    options.event = "cpu";
    if (!Profiler::Global().Start(options).ok()) return 2;
    SpinFor(0.05);
    absl::StatusOr<Profile> profile = Profiler::Global().Stop();
    if (!profile.ok()) return 3;
    *message = profile->metadata().engine_note;
    if (!absl::StrContains(*message, "a seccomp filter is active (Seccomp: 2)") ||
        !absl::StrContains(*message, "refuses the perf_event_open syscall") ||
        !absl::StrContains(*message, "seccomp-perf.json") ||
        !absl::StrContains(*message, "fell back to ctimer")) {
      return 4;
    }
    return 0;
  });
  if (r.code == 77) GTEST_SKIP() << r.message;
  EXPECT_EQ(r.code, 0) << r.message;
}

TEST(ProfilerFallbackTest, SeccompDeniedPerfAndTimersFallsBackToItimer) {
  ChildResult r = RunInChild([](std::string* message) {
    if (!DenySyscalls({{SYS_perf_event_open, EACCES}, {SYS_timer_create, EPERM}})) {
      *message = "seccomp unavailable";
      return 77;
    }
    return ProfileCpuInChild(message, "itimer");
  });
  if (r.code == 77) GTEST_SKIP() << r.message;
  EXPECT_EQ(r.code, 0) << r.message;
}

TEST(ProfilerFallbackTest, FallbackOffReportsThePerfError) {
  ChildResult r = RunInChild([](std::string* message) {
    if (!DenySyscalls({{SYS_perf_event_open, EACCES}})) return 77;
    ProfilerOptions options;
    options.event = "cpu";
    options.fallback = false;
    absl::Status started = Profiler::Global().Start(options);
    *message = std::string(started.ToString());
    if (!absl::IsPermissionDenied(started)) return 2;
    if (!absl::StrContains(started.message(), "perf_event_paranoid")) return 3;
    if (Profiler::Global().IsRunning()) return 4;
    return 0;
  });
  if (r.code == 77) GTEST_SKIP() << "seccomp unavailable";
  EXPECT_EQ(r.code, 0) << r.message;
}

TEST(ProfilerFallbackTest, SimulatedNoPerfEventsFallsBackInProcess) {
  ProfilerOptions options;
  options.event = "cpu";
  options.simulate_perf_errno = ENOENT;
  ASSERT_TRUE(Profiler::Global().Start(options).ok());
  SpinFor(0.1);
  absl::StatusOr<Profile> profile = Profiler::Global().Stop();
  ASSERT_TRUE(profile.ok());
  EXPECT_EQ(profile->metadata().engine, "ctimer");
  EXPECT_THAT(profile->metadata().engine_note, HasSubstr("perf events unavailable"));
  // Counters never fall back: page-faults with perf "missing" is an error.
  options.event = "page-faults";
  EXPECT_THAT(Profiler::Global().Start(options),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(Profiler::Global().IsRunning());
}

}  // namespace
}  // namespace flamekit
