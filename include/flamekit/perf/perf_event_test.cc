// SPDX-License-Identifier: Apache-2.0
#include "flamekit/perf/perf_event.h"

#include <errno.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "absl/time/time.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

TEST(PerfEventTest, ParsesKnownEventsAndAliases) {
  struct Case {
    const char* input;
    const char* name;
    uint32_t type;
    uint64_t config;
    bool time_based;
    bool hardware;
  } cases[] = {
      {"cpu", "cpu", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, true, false},
      {"cpu-clock", "cpu", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, true, false},
      {"CPU", "cpu", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, true, false},
      {"task-clock", "task-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, true, false},
      {"page-faults", "page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, false,
       false},
      {"faults", "page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, false, false},
      {"context-switches", "context-switches", PERF_TYPE_SOFTWARE,
       PERF_COUNT_SW_CONTEXT_SWITCHES, false, false},
      {"cs", "context-switches", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, false,
       false},
      {"cycles", "cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, false, true},
      {"instructions", "instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, false,
       true},
      {"cache-misses", "cache-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES, false,
       true},
      {"branch-misses", "branch-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES, false,
       true},
  };
  for (const Case& c : cases) {
    absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(c.input);
    ASSERT_THAT(spec, IsOk()) << c.input;
    EXPECT_EQ(spec->name, c.name) << c.input;
    EXPECT_EQ(spec->type, c.type) << c.input;
    EXPECT_EQ(spec->config, c.config) << c.input;
    EXPECT_EQ(spec->time_based, c.time_based) << c.input;
    EXPECT_EQ(spec->hardware, c.hardware) << c.input;
    EXPECT_GT(spec->default_period, 0u) << c.input;
  }
}

TEST(PerfEventTest, UnknownEventListsKnownOnes) {
  EXPECT_THAT(ParsePerfEvent("cpu-cycels"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("cpu-cycels"), HasSubstr("page-faults"),
                                        HasSubstr("flamekit list"))));
  EXPECT_THAT(ParsePerfEvent(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PerfEventTest, ParsesIntervals) {
  absl::StatusOr<PerfPeriod> p = ParsePerfInterval("10ms");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->interval, absl::Milliseconds(10));
  p = ParsePerfInterval("500us");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->interval, absl::Microseconds(500));
  p = ParsePerfInterval("1.5ms");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->interval, absl::Microseconds(1500));
  p = ParsePerfInterval("100000");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->count, 100000u);
  EXPECT_EQ(p->interval, absl::ZeroDuration());
  for (const char* bad : {"", "0", "-5", "-5ms", "0ms", "10 parsecs", "ms", "1us", "abc"}) {
    EXPECT_THAT(ParsePerfInterval(bad),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("10ms")))
        << "'" << bad << "'";
  }
}

TEST(PerfEventTest, ParsesFrequencies) {
  absl::StatusOr<PerfPeriod> p = ParsePerfFrequency("999");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->frequency_hz, 999u);
  p = ParsePerfFrequency("1k");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->frequency_hz, 1000u);
  for (const char* bad : {"", "0", "-1", "fast", "99999999999"}) {
    EXPECT_THAT(ParsePerfFrequency(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << "'" << bad << "'";
  }
}

TEST(PerfEventTest, ResolvesPeriodsPerEventKind) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfEventSpec cpu, ParsePerfEvent("cpu"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfEventSpec faults, ParsePerfEvent("page-faults"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(ResolvedPerfPeriod r,
                                ResolvePeriod(cpu, PerfPeriod::Interval(absl::Milliseconds(1))));
  EXPECT_EQ(r.value, 1000000u);
  EXPECT_FALSE(r.is_frequency);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(r, ResolvePeriod(cpu, PerfPeriod::Frequency(99)));
  EXPECT_EQ(r.value, 99u);
  EXPECT_TRUE(r.is_frequency);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(r, ResolvePeriod(faults, PerfPeriod()));
  EXPECT_EQ(r.value, faults.default_period);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(r, ResolvePeriod(faults, PerfPeriod::Count(7)));
  EXPECT_EQ(r.value, 7u);
  EXPECT_THAT(ResolvePeriod(faults, PerfPeriod::Interval(absl::Milliseconds(1))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count")));
}

TEST(PerfEventTest, AttrCarriesOptions) {
  PerfEventOptions options;
  options.period = PerfPeriod::Interval(absl::Milliseconds(2));
  options.exclude_kernel = true;
  options.record_mmap = true;
  options.record_task = true;
  options.disabled = true;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(perf_event_attr attr, MakePerfEventAttr(options));
  EXPECT_EQ(attr.size, sizeof(perf_event_attr));
  EXPECT_EQ(attr.type, static_cast<uint32_t>(PERF_TYPE_SOFTWARE));
  EXPECT_EQ(attr.config, static_cast<uint64_t>(PERF_COUNT_SW_CPU_CLOCK));
  EXPECT_EQ(attr.sample_period, 2000000u);
  EXPECT_EQ(attr.freq, 0u);
  EXPECT_EQ(attr.sample_type, kDefaultPerfSampleType);
  EXPECT_EQ(attr.exclude_kernel, 1u);
  EXPECT_EQ(attr.mmap2, 1u);
  EXPECT_EQ(attr.task, 1u);
  EXPECT_EQ(attr.comm, 0u);
  EXPECT_EQ(attr.disabled, 1u);
  EXPECT_EQ(attr.inherit, 0u);
}

TEST(PerfEventTest, ParanoidMatchesProc) {
  absl::StatusOr<int> paranoid = PerfEventParanoid();
  if (access("/proc/sys/kernel/perf_event_paranoid", R_OK) != 0) {
    EXPECT_THAT(paranoid, StatusIs(absl::StatusCode::kNotFound));
    return;
  }
  ASSERT_THAT(paranoid, IsOk());
  EXPECT_GE(*paranoid, -1);
  EXPECT_LE(*paranoid, 4);
  if (*paranoid < 2) {
    EXPECT_FALSE(DefaultExcludeKernel());
  }
}

// Burns CPU for `ms` milliseconds of this thread's CPU time.
void BurnCpu(int ms) {
  timespec start, now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; ++i) sink = sink + i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
}

TEST(PerfEventTest, CountsOwnCpuClock) {
  PerfEventOptions options;
  options.period = PerfPeriod::Interval(absl::Milliseconds(1));
  options.sample_type = PERF_SAMPLE_IP;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok() && (fd.status().code() == absl::StatusCode::kPermissionDenied ||
                   fd.status().code() == absl::StatusCode::kFailedPrecondition)) {
    GTEST_SKIP() << fd.status();
  }
  ASSERT_THAT(fd, IsOk());
  BurnCpu(50);
  uint64_t count = 0;
  ASSERT_EQ(read(fd->get(), &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
  // cpu-clock counts nanoseconds of CPU time: at least the 50 ms we burned.
  EXPECT_GE(count, 45u * 1000 * 1000);
}

TEST(PerfEventTest, NoSuchProcessIsNotFound) {
  // A PID that existed and is gone (reaped), so it cannot be reused yet.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  PerfEventOptions options;
  options.tid = child;
  EXPECT_THAT(OpenPerfEvent(options),
              StatusIs(absl::StatusCode::kNotFound,
                       ::testing::AllOf(HasSubstr("no process " + std::to_string(child)),
                                        HasSubstr("PID"))));
}

TEST(PerfEventTest, HardwareEventWithoutPmuSaysSo) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfEventSpec cycles, ParsePerfEvent("cycles"));
  PerfEventOptions options;
  options.event = cycles;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (fd.ok()) GTEST_SKIP() << "this machine has a PMU: cycles opened";
  if (fd.status().code() == absl::StatusCode::kPermissionDenied) GTEST_SKIP() << fd.status();
  EXPECT_THAT(fd, StatusIs(absl::StatusCode::kFailedPrecondition,
                           HasSubstr("not available on this machine: no PMU")));
}

TEST(PerfEventTest, ErrnoMessagesNameTheFix) {
  PerfEventOptions options;
  options.tid = 4242;
  EXPECT_THAT(PerfEventOpenError(EACCES, options),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       ::testing::AllOf(HasSubstr("perf_event_paranoid is"),
                                        HasSubstr("CAP_PERFMON"), HasSubstr("CAP_SYS_ADMIN"))));
  EXPECT_THAT(PerfEventOpenError(EPERM, options),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(PerfEventOpenError(ESRCH, options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no process 4242")));
  EXPECT_THAT(PerfEventOpenError(EMFILE, options),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("ulimit -n")));
  EXPECT_THAT(PerfEventOpenError(ENOSYS, options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("perf events unavailable"),
                                        HasSubstr("itimer"))));
  EXPECT_THAT(PerfEventOpenError(ENOENT, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("itimer")));
  options.event = *ParsePerfEvent("instructions");
  EXPECT_THAT(PerfEventOpenError(ENOENT, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no PMU")));
  EXPECT_THAT(PerfEventOpenError(EOPNOTSUPP, options),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no PMU")));
}

TEST(PerfEventTest, TooManyOpenFilesIsResourceExhausted) {
  rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  // Fill the fd table up to a low limit, then try to open one more event.
  int probe = dup(0);
  ASSERT_GE(probe, 0);
  close(probe);
  rlimit low = old_limit;
  low.rlim_cur = static_cast<rlim_t>(probe);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  PerfEventOptions options;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
  if (fd.ok()) GTEST_SKIP() << "fd limit was not reached";
  if (fd.status().code() == absl::StatusCode::kPermissionDenied) GTEST_SKIP() << fd.status();
  EXPECT_THAT(fd, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("ulimit -n")));
}

}  // namespace
}  // namespace flamekit
