// SPDX-License-Identifier: Apache-2.0
// `record -e wall PID`: OffCpuSwitches on hand-made switch records (exact
// weights), then AttachSession on testdata/attach/wall_workload, whose
// threads compute 20 %, sleep 50 % and block in read() 30 % of wall time.
// Each capture is 2 s; the whole test takes ~9 s.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "flamekit/attach/attach.h"
#include "flamekit/attach/blocked_threads.h"
#include "flamekit/attach/offcpu_switches.h"
#include "flamekit/attach/syscall_site.h"
#include "flamekit/attach/target_symbols.h"
#include "flamekit/attach/test_util.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::attach_internal::kNoStackFrameName;
using ::flamekit::attach_internal::OffCpuSwitches;
using ::flamekit::attach_testing::Runfile;
using ::flamekit::attach_testing::SpawnedProcess;
using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;

// ---- OffCpuSwitches on synthetic records ---------------------------------

PerfSwitchRecord Switch(uint32_t tid, uint64_t time, bool out, bool preempt = false) {
  PerfSwitchRecord r;
  r.pid = 7;
  r.tid = tid;
  r.time = time;
  r.out = out;
  r.preempt = preempt;
  return r;
}

// Folded weight per "frame;frame;state" line (addresses as 0x...).
std::map<std::string, uint64_t> Folded(const StackFolder& folder, const OffCpuSwitches& off,
                                       bool per_thread) {
  Profile profile;
  folder.AddTo(profile, nullptr);
  off.AddStacklessTo(profile, per_thread, nullptr);
  std::map<std::string, uint64_t> out;
  profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
    std::string line;
    for (FrameId f : frames) absl::StrAppend(&line, line.empty() ? "" : ";", profile.frame(f).name);
    out[line] += count;
  });
  return out;
}

TEST(OffCpuSwitchesTest, WeighsEachIntervalByItsLengthWithItsStackAndState) {
  StackFolder folder(StackFolderOptions{});
  OffCpuSwitches off(/*unit_ns=*/1000);
  const uint64_t pcs_a[] = {0x1000, 0x2001};  // leaf first
  const uint64_t pcs_b[] = {0x3000, 0x2001};
  RawSample a;
  a.tid = 1;
  a.pcs = pcs_a;
  RawSample b = a;
  b.pcs = pcs_b;
  // Blocked 10 us at stack a, preempted 3 us at stack b, blocked 5.5 us at a
  // then 0.5 us at a: the half units are carried, not dropped.
  off.OnSwitchOutSample(a, 100, folder);
  off.OnSwitch(Switch(1, 101, true), folder);
  off.OnSwitch(Switch(1, 10101, false), folder);
  off.OnSwitchOutSample(b, 20000, folder);
  off.OnSwitch(Switch(1, 20001, true, /*preempt=*/true), folder);
  off.OnSwitch(Switch(1, 23001, false), folder);
  off.OnSwitchOutSample(a, 30000, folder);
  off.OnSwitch(Switch(1, 30000, true), folder);
  off.OnSwitch(Switch(1, 35500, false), folder);
  off.OnSwitchOutSample(a, 40000, folder);
  off.OnSwitch(Switch(1, 40000, true), folder);
  off.OnSwitch(Switch(1, 40500, false), folder);
  EXPECT_EQ(off.intervals(), 4u);
  EXPECT_EQ(off.off_cpu_ns(), 10000u + 3000u + 5500u + 500u);
  EXPECT_EQ(off.stackless_intervals(), 0u);
  std::map<std::string, uint64_t> folded = Folded(folder, off, false);
  EXPECT_EQ(folded["0x2000;0x1000;[sleeping]"], 16u);
  EXPECT_EQ(folded["0x2000;0x3000;[runnable]"], 3u);
  EXPECT_EQ(folded.size(), 2u);
}

TEST(OffCpuSwitchesTest, WithoutSamplesTimeIsStacklessAndOpenIntervalsEndAtFinish) {
  StackFolder folder(StackFolderOptions{true});
  OffCpuSwitches off(/*unit_ns=*/1000);
  // A switch-in with no switch-out before it (off CPU when the capture
  // began) counts nothing; then two threads go out without samples.
  off.OnSwitch(Switch(1, 50, false), folder);
  off.OnSwitch(Switch(1, 1000, true), folder);
  off.OnSwitch(Switch(1, 5000, false), folder);
  off.OnSwitch(Switch(2, 1000, true, /*preempt=*/true), folder);
  off.Finish(/*end_time=*/8000, folder);
  EXPECT_EQ(off.intervals(), 2u);
  EXPECT_EQ(off.stackless_intervals(), 2u);
  std::map<std::string, uint64_t> folded = Folded(folder, off, true);
  EXPECT_EQ(folded[absl::StrCat(ThreadFrameName("", 1), ";", kNoStackFrameName, ";[sleeping]")],
            4u);
  EXPECT_EQ(folded[absl::StrCat(ThreadFrameName("", 2), ";", kNoStackFrameName, ";[runnable]")],
            7u);
}

TEST(OffCpuSwitchesTest, TimeOffCpuSinceBeforeTheCaptureIsKeptStackless) {
  StackFolder folder(StackFolderOptions{true});
  OffCpuSwitches off(/*unit_ns=*/1000);
  off.Start(10000);
  // Thread 1 was off CPU when the capture began, back on at 15000.
  off.OnSwitch(Switch(1, 15000, false), folder);
  // Thread 2 ran (an on-CPU sample) and never switched: not off CPU.
  const uint64_t pcs[] = {0x1000};
  RawSample running;
  running.tid = 2;
  running.pcs = pcs;
  running.state = kRunningState;
  folder.Add(running);
  // Thread 3 neither switched nor ran: idle throughout (10 units).
  off.Finish(20000, folder, {1, 2, 3});
  std::map<std::string, uint64_t> folded = Folded(folder, off, true);
  const std::string tail = absl::StrCat(";", attach_internal::kBeforeCaptureFrameName, ";[sleeping]");
  EXPECT_EQ(folded[ThreadFrameName("", 1) + tail], 5u);
  EXPECT_EQ(folded.count(ThreadFrameName("", 2) + tail), 0u);
  EXPECT_EQ(folded[ThreadFrameName("", 3) + tail], 10u);
  EXPECT_EQ(off.off_cpu_ns(), 15000u);
}

// How threads waited at the start (blocked_threads.h): their time before
// the first switch-in goes under that stack and state.
TEST(OffCpuSwitchesTest, WaitReadAtTheStartNamesTimeBeforeTheCapture) {
  StackFolder folder(StackFolderOptions{true});
  OffCpuSwitches off(/*unit_ns=*/1000);
  off.Start(10000);
  off.SetBefore(1, {0x1000, 0x2001}, false, SyscallState(232));  // epoll_wait
  off.SetBefore(3, {}, false, SyscallState(202));                  // futex, no stack
  off.OnSwitch(Switch(1, 15000, false), folder);
  off.Finish(20000, folder, {1, 3});
  std::map<std::string, uint64_t> folded = Folded(folder, off, true);
  EXPECT_EQ(folded[ThreadFrameName("", 1) + ";0x2000;0x1000;[syscall epoll_wait]"], 5u);
  EXPECT_EQ(folded[absl::StrCat(ThreadFrameName("", 3), ";", attach_internal::kBeforeCaptureFrameName,
                                ";[syscall futex]")],
            10u);
  EXPECT_EQ(folded.size(), 2u);
}

TEST(BlockedThreadsTest, ParsesProcSyscall) {
  using attach_internal::ParseProcSyscall;
  std::optional<attach_internal::ProcSyscall> in_call =
      ParseProcSyscall("232 0x3 0x7ffd1 0x2 0xffffffff 0x0 0x0 0x7ffc6a8 0x7f12b49\n");
  ASSERT_TRUE(in_call.has_value());
  EXPECT_EQ(in_call->number, 232);
  EXPECT_EQ(in_call->sp, 0x7ffc6a8u);
  EXPECT_EQ(in_call->pc, 0x7f12b49u);
  std::optional<attach_internal::ProcSyscall> elsewhere = ParseProcSyscall("-1 0x7ffc 0x4011");
  ASSERT_TRUE(elsewhere.has_value());
  EXPECT_EQ(elsewhere->number, -1);
  EXPECT_EQ(elsewhere->pc, 0x4011u);
  for (const char* bad : {"running\n", "", "232 0x1", "-1 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8",
                          "5 7ffc 4011", "x 0x1 0x2"}) {
    EXPECT_FALSE(ParseProcSyscall(bad).has_value()) << bad;
  }
}

// A thread blocked in read() since before the capture (Debian's cat on an
// empty pipe) shows where it waits: its user stack, walked by the rules
// from /proc/PID/task/TID/syscall's sp and pc, under [syscall read].
// ~0.5 s.
TEST(BlockedThreadsTest, ThreadBlockedBeforeTheCaptureShowsItsStackAndSyscall) {
  int in[2];
  ASSERT_EQ(pipe(in), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    close(in[1]);
    execl("/bin/cat", "cat", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  // Until it waits in read() (syscall 0).
  bool waiting = false;
  for (int i = 0; i < 500 && !waiting; ++i) {
    absl::StatusOr<std::string> sc =
        ReadSmallFile(absl::StrCat("/proc/", pid, "/task/", pid, "/syscall"), 512);
    waiting = sc.ok() && absl::StartsWith(*sc, "0 ");
    if (!waiting) usleep(10000);
  }
  Profile profile;
  std::string skip;
  if (waiting) {
    AttachOptions options;
    options.pid = pid;
    options.event = WallEventSpec();
    options.period = PerfPeriod::Interval(absl::Milliseconds(1));
    options.duration = absl::Milliseconds(300);
    absl::StatusOr<std::unique_ptr<AttachSession>> s = AttachSession::Create(options, nullptr);
    if (s.ok()) {
      absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> symbols =
          SymbolizerAttachSymbols::ForProcess(pid);
      if (symbols.ok()) (*s)->set_symbols(std::move(*symbols));
      EXPECT_THAT((*s)->Run(), IsOk());
      profile = (*s)->TakeProfile();
    } else {
      skip = s.status().ToString();
    }
  }
  close(in[1]);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_TRUE(waiting) << "cat did not block in read()";
  if (!skip.empty()) GTEST_SKIP() << skip;
  std::vector<std::string> lines;
  uint64_t read_weight = 0, total = 0;
  profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
    std::string line;
    for (FrameId f : frames) absl::StrAppend(&line, line.empty() ? "" : ";", profile.frame(f).name);
    lines.push_back(absl::StrCat(line, " ", count));
    total += count;
    // Walked to libc's start: the whole user stack, not a bare marker.
    if (absl::EndsWith(line, ";[syscall read]") && absl::StrContains(line, "__libc_start_main") &&
        !absl::StrContains(line, attach_internal::kBeforeCaptureFrameName)) {
      read_weight += count;
    }
  });
  const std::string all = absl::StrJoin(lines, "\n");
  EXPECT_GT(total, 200u) << all;
  EXPECT_GE(read_weight, total * 9 / 10) << all;
}

TEST(OffCpuSwitchesTest, AStaleSampleDoesNotNameALaterSwitch) {
  StackFolder folder(StackFolderOptions{});
  OffCpuSwitches off(/*unit_ns=*/1000);
  const uint64_t pcs[] = {0x1000};
  RawSample a;
  a.tid = 3;
  a.pcs = pcs;
  // The sample is 5 ms older than the switch (its own sample was lost).
  off.OnSwitchOutSample(a, 1000, folder);
  off.OnSwitch(Switch(3, 1000 + 5 * 1000 * 1000, true), folder);
  off.Finish(1000 + 6 * 1000 * 1000, folder);
  EXPECT_EQ(off.stackless_intervals(), 1u);
  EXPECT_EQ(folder.samples(), 0u);
}

// ---- SyscallSites: which system call a blocked thread is in -------------

TEST(SyscallSiteTest, DecodesTheNumberLibcLoadsBeforeTheSyscall) {
  using attach_internal::DecodeSyscallSite;
  const uint8_t read_site[] = {0x74, 0x17, 0x90, 0x31, 0xc0, 0x0f, 0x05};   // xor; syscall
  const uint8_t sleep_site[] = {0xb8, 0xe6, 0x00, 0x00, 0x00, 0x0f, 0x05};  // mov $230
  const uint8_t by_register[] = {0x90, 0x90, 0x44, 0x89, 0xc0, 0x0f, 0x05}; // mov %r8d,%eax
  const uint8_t call_site[] = {0xe8, 0x10, 0x20, 0x30, 0x40, 0x90, 0x90};   // not a syscall
  EXPECT_EQ(DecodeSyscallSite(read_site), 0);
  EXPECT_EQ(DecodeSyscallSite(sleep_site), 230);
  EXPECT_EQ(DecodeSyscallSite(by_register), -1);
  EXPECT_EQ(DecodeSyscallSite(call_site), std::nullopt);
}

#if defined(__x86_64__)
// Reads the bytes from a live process (this one) with process_vm_readv.
TEST(SyscallSiteTest, ReadsTheCodeOfALiveProcess) {
  static const uint8_t futex_site[] = {0xb8, 0xca, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xc3};
  attach_internal::SyscallSites sites(getpid());
  const uint64_t pc = reinterpret_cast<uint64_t>(&futex_site[7]);
  EXPECT_EQ(sites.StateAt(pc), SyscallState(202));
  EXPECT_EQ(ThreadStateFrame(sites.StateAt(pc)).name, "[syscall futex]");
  EXPECT_EQ(sites.StateAt(reinterpret_cast<uint64_t>(&futex_site[6])), kSleepingState);
}
#endif

// ---- AttachSession on the wall workload -----------------------------------

constexpr int kThreads = 3;

struct Shares {
  uint64_t total = 0;
  uint64_t compute = 0, sleep = 0, read = 0, running = 0;
  // Without a stack: blocked, preempted.
  uint64_t stackless = 0, stackless_runnable = 0;
  // Off CPU with a stack.
  uint64_t off_cpu_stacks = 0;
  // Off CPU since before the capture (until the first switch-in).
  uint64_t before = 0;
  // Blocked (not preempted) in the sleep / read phase, and of those with the
  // right syscall frame.
  uint64_t sleep_blocked = 0, sleep_nanosleep = 0, read_blocked = 0, read_read = 0;
  std::map<std::string, uint64_t> roots;  // first frame -> weight
  double Pct(uint64_t part) const { return total == 0 ? 0 : 100.0 * part / total; }
};

Shares Measure(const Profile& profile) {
  Shares s;
  s.total = profile.total_samples();
  profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
    std::vector<std::string> names;
    for (FrameId f : frames) names.push_back(profile.frame(f).name);
    auto has = [&](const char* name) {
      return std::find(names.begin(), names.end(), name) != names.end();
    };
    // The workload's phases, e.g. "(anonymous namespace)::SleepPhase(long)".
    auto in = [&](const char* phase) {
      return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
        return absl::StartsWith(n, absl::StrCat("(anonymous namespace)::", phase, "("));
      });
    };
    if (in("ComputePhase")) s.compute += count;
    if (in("SleepPhase")) s.sleep += count;
    if (in("ReadPhase")) s.read += count;
    const std::string leaf = names.empty() ? "" : names.back();
    const bool blocked = leaf != "[running]" && leaf != "[runnable]";
    if (in("SleepPhase") && blocked) {
      s.sleep_blocked += count;
      if (leaf == "[syscall clock_nanosleep]") s.sleep_nanosleep += count;
    }
    if (in("ReadPhase") && blocked) {
      s.read_blocked += count;
      if (leaf == "[syscall read]") s.read_read += count;
    }
    if (!names.empty() && names.back() == "[running]") s.running += count;
    if (has(attach_internal::kBeforeCaptureFrameName)) {
      s.before += count;
    } else if (has(kNoStackFrameName)) {
      (names.back() == "[runnable]" ? s.stackless_runnable : s.stackless) += count;
    } else if (!names.empty() && (names.back() == "[runnable]" || names.back() == "[sleeping]" ||
                                  absl::StartsWith(names.back(), "[syscall"))) {
      s.off_cpu_stacks += count;
    }
    if (!names.empty()) s.roots[names.front()] += count;
  });
  return s;
}

std::string Describe(const Shares& s) {
  return absl::StrCat("total ", s.total, ": compute ", s.Pct(s.compute), " %, sleep ",
                      s.Pct(s.sleep), " %, read ", s.Pct(s.read), " %, no stack ",
                      s.Pct(s.stackless), " % + runnable ", s.Pct(s.stackless_runnable),
                      " %, [running] ", s.Pct(s.running), " %, before the capture ",
                      s.Pct(s.before), " %");
}

// The weights add up to about threads x the capture, in 1 ms units (less
// the time before each thread's first switch-in, under one cycle).
void ExpectThreadsTimesDuration(const Profile& profile, const Shares& s) {
  // At most about a cycle (20 ms) per thread, more when the machine is busy.
  EXPECT_LT(s.Pct(s.before), 3.0);
  const double ms = absl::ToDoubleMilliseconds(profile.metadata().end_time -
                                               profile.metadata().start_time);
  EXPECT_NEAR(static_cast<double>(s.total), kThreads * ms, kThreads * ms * 0.05) << ms << " ms";
}

class WallSessionTest : public ::testing::Test {
 protected:
  // Records the workload for 2 s at 1 ms; skips when perf is forbidden.
  void Record(std::optional<bool> exclude_kernel, bool split_threads, Profile* profile,
              std::string* note) {
    SpawnedProcess target = SpawnedProcess::Start(
        {Runfile("testdata/attach/wall_workload"), "20", absl::StrCat(kThreads)});
    ASSERT_TRUE(target.ok()) << target.error();
    AttachOptions options;
    options.pid = target.pid();
    options.event = WallEventSpec();
    options.period = PerfPeriod::Interval(absl::Milliseconds(1));
    options.duration = absl::Seconds(2);
    options.split_threads = split_threads;
    options.exclude_kernel = exclude_kernel;
    absl::StatusOr<std::unique_ptr<AttachSession>> s = AttachSession::Create(options, nullptr);
    if (!s.ok() && (s.status().code() == absl::StatusCode::kPermissionDenied ||
                    s.status().code() == absl::StatusCode::kFailedPrecondition)) {
      skip_ = s.status().ToString();
      return;
    }
    ASSERT_THAT(s, IsOk());
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<SymbolizerAttachSymbols> symbols,
                                  SymbolizerAttachSymbols::ForProcess(target.pid()));
    (*s)->set_symbols(std::move(symbols));
    ASSERT_THAT((*s)->Run(), IsOk());
    *note = (*s)->stats().note;
    *profile = (*s)->TakeProfile();
  }
  std::string skip_;
};

TEST_F(WallSessionTest, ShowsTheWorkloadsSplitByPidAndByThread) {
  Profile profile;
  std::string note;
  ASSERT_NO_FATAL_FAILURE(Record(std::nullopt, /*split_threads=*/true, &profile, &note));
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (!note.empty()) {
    GTEST_SKIP() << "no off-CPU stacks without kernel sampling here (run as root or with "
                    "perf_event_paranoid <= 1 for this test): "
                 << note;
  }
  const Shares s = Measure(profile);
  SCOPED_TRACE(Describe(s));
  std::cout << Describe(s) << "\n";
  // The target: within 3 points of 20 / 50 / 30.
  EXPECT_NEAR(s.Pct(s.compute), 20.0, 3.0);
  EXPECT_NEAR(s.Pct(s.sleep), 50.0, 3.0);
  EXPECT_NEAR(s.Pct(s.read), 30.0, 3.0);
  // On-CPU time is the compute phase's (the rest of it is preempted time
  // on a loaded machine).
  EXPECT_LE(s.running, s.compute + s.total / 100);
  EXPECT_EQ(s.stackless + s.stackless_runnable, 0u);
  // The state frame names the system call (from the code at the user pc).
  EXPECT_GE(s.sleep_nanosleep, s.sleep_blocked * 95 / 100) << s.sleep_blocked;
  EXPECT_GE(s.read_read, s.read_blocked * 95 / 100) << s.read_blocked;
  // About threads x duration, in 1 ms units (the capture is 2 s).
  ExpectThreadsTimesDuration(profile, s);
  EXPECT_EQ(profile.metadata().event, "wall");
  EXPECT_EQ(profile.metadata().interval, absl::Milliseconds(1));
  // -t: one root per thread, each about a third.
  ASSERT_EQ(s.roots.size(), static_cast<size_t>(kThreads));
  for (const auto& [root, weight] : s.roots) {
    EXPECT_TRUE(absl::StrContains(root, "tid=")) << root;
    EXPECT_NEAR(s.Pct(weight), 100.0 / kThreads, 5.0) << root;
  }
}

TEST_F(WallSessionTest, WithoutKernelSamplingOffCpuTimeIsKeptWithoutStacksAndNoted) {
  Profile profile;
  std::string note;
  ASSERT_NO_FATAL_FAILURE(Record(/*exclude_kernel=*/true, /*split_threads=*/false, &profile,
                                 &note));
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  const Shares s = Measure(profile);
  SCOPED_TRACE(Describe(s));
  std::cout << Describe(s) << "\n";
  EXPECT_THAT(note, ::testing::HasSubstr("perf_event_paranoid"));
  EXPECT_EQ(profile.metadata().engine_note, note);
  // Blocked time (sleep and read) is there, without its stack; the
  // compute phase is on CPU or preempted (runnable, also stackless here).
  // Only the time before each thread's first switch-in has a stack (read
  // from /proc and the thread's memory at the start, which needs no kernel
  // sampling): under a cycle per thread.
  EXPECT_NEAR(s.Pct(s.stackless + s.off_cpu_stacks), 80.0, 3.0);
  EXPECT_NEAR(s.Pct(s.running + s.stackless_runnable), 20.0, 3.0);
  EXPECT_LE(s.compute, s.running);
  EXPECT_LT(s.Pct(s.off_cpu_stacks), 3.0);
  ExpectThreadsTimesDuration(profile, s);
}

TEST(WallSessionErrorsTest, FrequencyIsRefusedWithWhatToGive) {
  SpawnedProcess target = SpawnedProcess::Start(
      {Runfile("testdata/attach/wall_workload"), "5", "1"});
  ASSERT_TRUE(target.ok()) << target.error();
  AttachOptions options;
  options.pid = target.pid();
  options.event = WallEventSpec();
  options.period = PerfPeriod::Frequency(99);
  EXPECT_THAT(AttachSession::Create(options, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("--interval")));
}

}  // namespace
}  // namespace flamekit
