// SPDX-License-Identifier: Apache-2.0
// Issue 21, the CLI part: each test here failed before its fix.
//   1. --minwidth nan/inf/-1/101: one validation for record and convert.
//   2. collapsed counts whose sum passes 2^64: an error naming file:line.
//   3. another user's process as non-root: the UID/CAP_SYS_PTRACE cause first.
//   4. doctor: capabilities wording, kptr_restrict at 0, paranoid 3 vs a
//      working perf_event_open.
//   5. record --format, an unwritable output dir before profiling, watch
//      --name, help printed once, lost-sample advice, thread counts.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "examples/cli/cli_test_util.h"
#include "examples/cli/command.h"
#include "examples/cli/record_command.h"
#include "examples/cli/watch_command.h"
#include "flamekit/attach/test_util.h"
#include "flamekit/env/doctor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace cli {
namespace {

using ::flamekit::attach_testing::Runfile;
using ::flamekit::attach_testing::SpawnedProcess;
using ::testing::HasSubstr;
using ::testing::Not;

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

SpawnedProcess Target() {
  return SpawnedProcess::Start({Runfile("testdata/attach/attach_workload"), "split", "20"});
}

bool PerfWorks() {
  PerfEventOptions probe;
  return OpenPerfEvent(probe).ok();
}

// 1. One --minwidth check for record and convert.
TEST(HardeningTest, MinwidthMustBeAFinitePercentageEverywhere) {
  SpawnedProcess target = Target();
  ASSERT_TRUE(target.ok()) << target.error();
  const std::string in = "testdata/collapsed/server.txt";
  for (const char* bad : {"nan", "inf", "-1", "101", "NaN%"}) {
    SCOPED_TRACE(bad);
    std::string page = TestTmp("minwidth.html");
    CliResult record = RunFlamekit({"record", "-d", "0.2", "--minwidth", bad, "-f", page,
                         absl::StrCat(target.pid())});
    EXPECT_EQ(record.code, kRecordUsageError) << record.err;
    EXPECT_THAT(record.err, HasSubstr("--minwidth takes a percentage from 0 to 100"));
    EXPECT_FALSE(Exists(page));
    CliResult convert = RunFlamekit({"convert", in, "-f", TestTmp("c.html"), "--minwidth", bad});
    EXPECT_EQ(convert.code, kExitUsage) << convert.err;
    EXPECT_THAT(convert.err, HasSubstr("--minwidth takes a percentage from 0 to 100"));
  }
}

// 2. Counts that add up past 2^64 would saturate and show nonsense shares.
TEST(HardeningTest, CollapsedCountsOverflowingTheTotalAreAnError) {
  const std::string path = TestTmp("overflow.txt");
  WriteText(path, "main;a 9223372036854775808\nmain;b 9223372036854775808\nmain;c 1\n");
  CliResult r = RunFlamekit({"convert", path, "-f", "-", "--top", "3"});
  EXPECT_EQ(r.code, kExitError) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("overflow.txt:2:"));
  EXPECT_THAT(r.err, HasSubstr("2^64"));
  EXPECT_EQ(r.out, "");
}

// 3. As another user: the UID (and CAP_SYS_PTRACE) is the cause, not
// perf_event_paranoid, whatever its value.
TEST(HardeningTest, AnotherUsersProcessNamesTheRealCauseFirst) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user (setresuid)";
  SpawnedProcess target = Target();  // owned by root
  ASSERT_TRUE(target.ok()) << target.error();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string out = TestTmp("other_user.collapsed");
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(200);
    CliResult r = RunFlamekit({"record", "-d", "1", "-f", "/tmp/flamekit_other_user.collapsed",
                    absl::StrCat(target.pid())});
    std::string msg = absl::StrCat(r.code, "\n", r.err);
    ssize_t ignored = write(fds[1], msg.data(), msg.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 200) GTEST_SKIP() << "setresuid failed";
  EXPECT_TRUE(absl::StartsWith(text, absl::StrCat(kRecordPermissionDenied, "\n"))) << text;
  size_t cause = text.find("CAP_SYS_PTRACE");
  size_t paranoid = text.find("perf_event_paranoid");
  ASSERT_NE(cause, std::string::npos) << text;
  EXPECT_THAT(text, HasSubstr("uid 0"));
  EXPECT_THAT(text, HasSubstr("uid 65534"));
  EXPECT_TRUE(paranoid == std::string::npos || cause < paranoid) << text;
  EXPECT_THAT(text, Not(HasSubstr("to allow it, lower it"))) << text;
  EXPECT_FALSE(Exists("/tmp/flamekit_other_user.collapsed"));
}

// 4. doctor on a fake root: no capabilities, kptr_restrict already 0,
// perf_event_paranoid 3 (the live perf probe decides whether it works).
TEST(HardeningTest, DoctorSaysConsistentThings) {
  const std::string root = TestTmp("doctor_root");
  ASSERT_EQ(system(absl::StrCat("mkdir -p ", root, "/proc/sys/kernel ", root, "/proc/self")
                       .c_str()),
            0);
  WriteText(root + "/proc/sys/kernel/perf_event_paranoid", "3\n");
  WriteText(root + "/proc/sys/kernel/kptr_restrict", "0\n");
  WriteText(root + "/proc/kallsyms", "0000000000000000 T _stext\n");
  WriteText(root + "/proc/self/status", "Name:\tflamekit\nCapEff:\t0000000000000000\n");
  DoctorOptions options;
  options.root = root;
  DoctorReport report = RunDoctor(options);
  std::string text = FormatDoctorText(report);
  const DoctorCheck* caps = report.Find("capabilities");
  ASSERT_NE(caps, nullptr);
  EXPECT_THAT(caps->detail, Not(HasSubstr("none of;"))) << text;
  EXPECT_THAT(caps->detail, HasSubstr("none of CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE"));
  const DoctorCheck* kptr = report.Find("kptr_restrict");
  ASSERT_NE(kptr, nullptr);
  EXPECT_THAT(kptr->fix, Not(HasSubstr("kptr_restrict=0"))) << text;
  EXPECT_NE(kptr->level, CheckLevel::kWarn) << "kptr_restrict is already 0:\n" << text;
  const DoctorCheck* paranoid = report.Find("perf_event_paranoid");
  const DoctorCheck* cpu = report.Find("perf_cpu");
  ASSERT_NE(paranoid, nullptr);
  ASSERT_NE(cpu, nullptr);
  if (cpu->level == CheckLevel::kPass) {
    EXPECT_NE(paranoid->level, CheckLevel::kFail) << text;
  } else {
    EXPECT_EQ(paranoid->level, CheckLevel::kFail) << text;
  }
  // At kptr_restrict 1 the fix is still to lower it.
  EXPECT_THAT(CheckKptrRestrict(1, false).fix, HasSubstr("kptr_restrict=0"));
}

// 5a. record takes --format (which its own error suggests).
TEST(HardeningTest, RecordTakesFormat) {
  if (!PerfWorks()) GTEST_SKIP() << "perf events unusable here";
  SpawnedProcess target = Target();
  ASSERT_TRUE(target.ok()) << target.error();
  const std::string png = TestTmp("flame.png");
  CliResult bad = RunFlamekit({"record", "-d", "0.2", "-f", png, absl::StrCat(target.pid())});
  EXPECT_EQ(bad.code, kRecordOutputError) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("--format"));
  CliResult r = RunFlamekit({"record", "-d", "0.3", "-i", "1ms", "--format", "svg", "-f", png,
                  absl::StrCat(target.pid())});
  ASSERT_EQ(r.code, kRecordOk) << r.err;
  EXPECT_THAT(ReadAll(png), HasSubstr("<svg"));
}

// 5b. An output that cannot be created fails before any profiling.
TEST(HardeningTest, UnwritableOutputFailsBeforeProfiling) {
  SpawnedProcess target = Target();
  ASSERT_TRUE(target.ok()) << target.error();
  absl::Time t0 = absl::Now();
  CliResult r = RunFlamekit({"record", "-d", "2", "-f", "/proc/flamekit-x.html", absl::StrCat(target.pid())});
  EXPECT_EQ(r.code, kRecordOutputError) << r.err;
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1)) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("profiling"))) << r.err;
  EXPECT_THAT(r.err, HasSubstr("/proc"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// 5c. watch selects its target by name as record does.
TEST(HardeningTest, WatchTakesName) {
  std::string tag = absl::StrCat("watchname", getpid(), "z", rand());
  SpawnedProcess target = SpawnedProcess::Start(
      {Runfile("testdata/attach/attach_workload"), "split", "5", TestTmp(tag)});
  ASSERT_TRUE(target.ok()) << target.error();
  absl::StatusOr<WatchCommandOptions> o = ParseWatchArgs(
      std::vector<std::string>{"--name", tag, "--cpu-above", "50"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->pid, target.pid());
  EXPECT_EQ(o->watch.id, absl::StrCat(target.pid()));
  absl::StatusOr<WatchCommandOptions> none = ParseWatchArgs(
      std::vector<std::string>{"--name", tag + "nomatch", "--cpu-above", "50"});
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("no process matches"));
  // Not a usage mistake: exit 1, one line.
  CliResult r = RunFlamekit({"watch", "--name", tag + "nomatch", "--cpu-above", "50"});
  EXPECT_EQ(r.code, kExitError) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// 5d. Help and usage errors print the usage once.
TEST(HardeningTest, UsagePrintedOnce) {
  for (const Command& c : Commands()) {
    SCOPED_TRACE(c.name);
    CliResult help = RunFlamekit({c.name, "--help"});
    size_t first = help.out.find("usage:");
    ASSERT_NE(first, std::string::npos);
    EXPECT_EQ(help.out.find("usage:", first + 1), std::string::npos) << help.out;
    EXPECT_EQ(RunFlamekit({"--help", c.name}).out, help.out);
    CliResult bad = RunFlamekit({c.name, "--no-such-flag"});
    EXPECT_EQ(bad.code, kExitUsage);
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  }
}

// 5e. Lost samples come with the rate this machine sustained; thread
// counts read right.
TEST(HardeningTest, SummaryAdvisesOnLostSamplesAndCountsThreads) {
  Profile profile;
  profile.AddStack({profile.InternFrame("main"), profile.InternFrame("Hot")}, 37925);
  profile.metadata().threads = 1;
  AttachProgress stats;
  stats.elapsed = absl::Seconds(1);
  stats.samples = 37925;
  stats.lost_samples = 6432;
  stats.threads_followed = 5;
  stats.stop_reason = AttachStopReason::kDuration;
  std::string s = FormatRecordSummary(stats, profile, -1, "x.html", 1000);
  EXPECT_THAT(s, HasSubstr("1 thread sampled of 5 followed")) << s;
  EXPECT_THAT(s, Not(HasSubstr("1 threads"))) << s;
  EXPECT_THAT(s, HasSubstr("6432 lost")) << s;
  EXPECT_THAT(s, HasSubstr("sustained")) << s;
  EXPECT_THAT(s, HasSubstr("37925 samples/s per thread")) << s;
  EXPECT_THAT(s, HasSubstr("use -F 18000 or lower (or -i 56us)")) << s;
  stats.lost_samples = 0;
  stats.threads_followed = 2;
  profile.metadata().threads = 2;
  s = FormatRecordSummary(stats, profile, -1, "x.html", 1000);
  EXPECT_THAT(s, HasSubstr("0 lost, 2 threads sampled of 2 followed\n")) << s;
  EXPECT_THAT(s, Not(HasSubstr("sustained"))) << s;
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
