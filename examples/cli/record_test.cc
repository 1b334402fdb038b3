// SPDX-License-Identifier: Apache-2.0
// Tests of `record` and `list` on real processes: the flamekit binary is
// run as a subprocess against attach_workload targets, and its exit code,
// messages and output files are checked.
#include "examples/cli/record_command.h"

#include <pty.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "flamekit/attach/test_util.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace cli {
namespace {

using ::flamekit::attach_testing::CommandResult;
using ::flamekit::attach_testing::ProcessCpuMs;
using ::flamekit::attach_testing::RunCommand;
using ::flamekit::attach_testing::Runfile;
using ::flamekit::attach_testing::SpawnedProcess;
using ::flamekit::attach_testing::TempDir;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string Tool() { return Runfile("examples/cli/flamekit"); }
std::string Workload() { return Runfile("testdata/attach/attach_workload"); }
std::string Plugin() { return Runfile("testdata/attach/libattach_plugin.so"); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// A collapsed file as (frames, count) pairs.
struct Collapsed {
  std::vector<std::pair<std::vector<std::string>, uint64_t>> stacks;
  uint64_t total = 0;

  static Collapsed Read(const std::string& path) {
    Collapsed c;
    std::istringstream in(ReadFile(path));
    std::string line;
    while (std::getline(in, line)) {
      size_t space = line.rfind(' ');
      if (space == std::string::npos) continue;
      uint64_t count = 0;
      if (!absl::SimpleAtoi(line.substr(space + 1), &count)) continue;
      std::vector<std::string> frames = absl::StrSplit(line.substr(0, space), ';');
      c.stacks.emplace_back(std::move(frames), count);
      c.total += count;
    }
    return c;
  }
  // Samples whose stack has a frame equal to `name`.
  uint64_t Inclusive(absl::string_view name) const {
    uint64_t n = 0;
    for (const auto& [frames, count] : stacks) {
      for (const std::string& f : frames) {
        if (f == name) {
          n += count;
          break;
        }
      }
    }
    return n;
  }
  // Samples whose stack contains `chain` as consecutive frames.
  uint64_t WithChain(const std::vector<std::string>& chain) const {
    uint64_t n = 0;
    for (const auto& [frames, count] : stacks) {
      for (size_t i = 0; i + chain.size() <= frames.size(); ++i) {
        if (std::equal(chain.begin(), chain.end(), frames.begin() + static_cast<ptrdiff_t>(i))) {
          n += count;
          break;
        }
      }
    }
    return n;
  }
  // The leaf frame with the most samples.
  std::string HottestLeaf() const {
    std::map<std::string, uint64_t> self;
    for (const auto& [frames, count] : stacks) self[frames.back()] += count;
    std::string best;
    uint64_t most = 0;
    for (const auto& [name, count] : self) {
      if (count > most) {
        most = count;
        best = name;
      }
    }
    return best;
  }
};

// Skips the test when perf events cannot be used on this machine at all.
#define SKIP_WITHOUT_PERF()                                                     \
  do {                                                                          \
    PerfEventOptions probe;                                                     \
    absl::StatusOr<ScopedFd> fd = OpenPerfEvent(probe);                         \
    if (!fd.ok()) GTEST_SKIP() << "perf events unusable: " << fd.status();      \
  } while (0)

class RecordCliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir(); }
  std::string Out(absl::string_view name) { return absl::StrCat(dir_, "/", name); }
  std::string dir_;
};

// The measured split of the workload: HotA's share of HotA + HotB CPU time.
double MeasuredShareA(const std::string& report) {
  std::istringstream in(ReadFile(report));
  double a = 0, b = 0, total = 0;
  in >> a >> b >> total;
  return a + b > 0 ? a / (a + b) : -1;
}

TEST_F(RecordCliTest, RecordsKnownSplitByPid) {
  SKIP_WITHOUT_PERF();
  std::string report = Out("report.txt");
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "spin2", "6", report});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = Out("split.collapsed");
  int64_t cpu0 = ProcessCpuMs(target.pid());
  CommandResult r = RunCommand(
      // Frame pointers: this case is about the split and keeping up with 2 kHz
      // ("0 lost"); the default (auto) copies 8 KiB of stack per sample and
      // lost 0.9% at this rate under ASan on a loaded machine. DWARF walks
      // are attach/unwind_test's.
      {Tool(), "record", "-d", "4", "-i", "500us", "--unwind", "fp", "-f", out,
       absl::StrCat(target.pid())});
  int64_t cpu_ms = ProcessCpuMs(target.pid()) - cpu0;
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  ASSERT_EQ(target.Wait(), 0);
  Collapsed c = Collapsed::Read(out);
  uint64_t a = c.Inclusive("HotA");
  uint64_t b = c.Inclusive("HotB");
  // 2 samples per ms of CPU while attached (the window measured includes
  // the tool's start, when nothing is sampled yet).
  EXPECT_GE(static_cast<int64_t>(c.total), cpu_ms) << "cpu_ms=" << cpu_ms;
  EXPECT_LE(static_cast<int64_t>(c.total), cpu_ms * 2 * 11 / 10 + 20) << "cpu_ms=" << cpu_ms;
  if (cpu_ms < 400) GTEST_SKIP() << "the target got only " << cpu_ms << " ms of CPU in 4 s";
  double profiled = static_cast<double>(a) / static_cast<double>(a + b);
  double measured = MeasuredShareA(report);
  ASSERT_GT(measured, 0.5) << "workload report: " << ReadFile(report);
  EXPECT_NEAR(profiled * 100, measured * 100, 2.0)
      << "HotA " << a << " HotB " << b << " samples; measured share " << measured;
  // Nearly every sample is in the split (the rest: clock reads, kernel).
  EXPECT_GT(a + b, c.total * 95 / 100);
  // The expected chain, root to leaf.
  // (spin2 runs RunSplit on main and on a std::thread: the chain below
  // RunSplit is the same on both.)
  EXPECT_GT(c.WithChain({"RunSplit", "HotA"}), a * 9 / 10);
  EXPECT_GT(c.WithChain({"RunSplit", "HotB"}), b * 9 / 10);
  EXPECT_GT(c.WithChain({"main", "RunSplit", "HotA"}), 0u);
  // The summary: counts, hottest functions, output and size.
  EXPECT_THAT(r.err, HasSubstr("duration reached"));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(c.total, " samples")));
  EXPECT_THAT(r.err, HasSubstr("0 lost"));
  EXPECT_THAT(r.err, HasSubstr("2 threads"));
  EXPECT_THAT(r.err, HasSubstr("hottest functions"));
  EXPECT_THAT(r.err, ::testing::ContainsRegex("% +HotA\n"));
  EXPECT_THAT(r.err, HasSubstr("wrote " + out));
}

TEST_F(RecordCliTest, ProfilerShFormAndThreadSplit) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "spin2", "5"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = Out("threads.collapsed");
  CommandResult r = RunCommand(
      {Tool(), "-d", "1", "-e", "cpu", "-i", "1ms", "-t", "-f", out, absl::StrCat(target.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Collapsed c = Collapsed::Read(out);
  ASSERT_GT(c.total, 0u);
  std::set<std::string> roots;
  for (const auto& [frames, count] : c.stacks) {
    EXPECT_THAT(frames[0], ::testing::MatchesRegex(R"(\[.* tid=[0-9]+\])")) << frames[0];
    roots.insert(frames[0]);
  }
  EXPECT_EQ(roots.size(), 2u);
}

TEST_F(RecordCliTest, WritesHtmlAndAppliesFilters) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "8"});
  ASSERT_TRUE(target.ok()) << target.error();
  const std::string pid = absl::StrCat(target.pid());
  std::string html = Out("flame.html");
  CommandResult r = RunCommand({Tool(), "record", "-d", "1", "-i", "1ms", "--title",
                                "attach-title-check", "-f", html, pid});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string page = ReadFile(html);
  EXPECT_THAT(page, HasSubstr("<html"));
  EXPECT_THAT(page, HasSubstr("attach-title-check"));
  EXPECT_THAT(page, HasSubstr("HotA"));
  EXPECT_THAT(page, HasSubstr("RunSplit"));
  // --exclude drops the stacks through HotB; --include keeps only them.
  std::string excluded = Out("excluded.collapsed");
  r = RunCommand({Tool(), "record", "-d", "1", "-i", "1ms", "--exclude", "^HotB$", "-f",
                  excluded, pid});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Collapsed ce = Collapsed::Read(excluded);
  EXPECT_EQ(ce.Inclusive("HotB"), 0u);
  EXPECT_GT(ce.Inclusive("HotA"), 0u);
  std::string included = Out("included.collapsed");
  r = RunCommand({Tool(), "record", "-d", "1", "-i", "1ms", "--include", "^HotB$", "-f",
                  included, pid});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Collapsed ci = Collapsed::Read(included);
  EXPECT_EQ(ci.Inclusive("HotA"), 0u);
  EXPECT_GT(ci.Inclusive("HotB"), 0u);
  EXPECT_EQ(ci.Inclusive("HotB"), ci.total);
}

TEST_F(RecordCliTest, RecordsByName) {
  SKIP_WITHOUT_PERF();
  // A report path unique to this test makes the command line unique.
  std::string tag = absl::StrCat("byname", getpid(), "x", rand());
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "5", Out(tag)});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = Out("name.collapsed");
  CommandResult r = RunCommand({Tool(), "record", "-d", "1", "-f", out, "--name", tag});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("pid ", target.pid())));
  EXPECT_GT(Collapsed::Read(out).Inclusive("HotA"), 0u);
}

TEST_F(RecordCliTest, NameMatchingNoneOrSeveralIsAnError) {
  std::string tag = absl::StrCat("severalnames", getpid(), "y", rand());
  CommandResult none = RunCommand({Tool(), "record", "-d", "1", "--name", tag});
  EXPECT_EQ(none.exit_code, kRecordNameMatch) << none.Describe();
  EXPECT_THAT(none.err, HasSubstr("no process matches"));
  EXPECT_THAT(none.err, HasSubstr("ps -ef"));
  SpawnedProcess one = SpawnedProcess::Start({Workload(), "split", "5", Out(tag + "1")});
  SpawnedProcess two = SpawnedProcess::Start({Workload(), "split", "5", Out(tag + "2")});
  ASSERT_TRUE(one.ok() && two.ok());
  CommandResult several = RunCommand({Tool(), "record", "-d", "1", "--name", tag});
  EXPECT_EQ(several.exit_code, kRecordNameMatch) << several.Describe();
  EXPECT_THAT(several.err, HasSubstr("2 processes match"));
  EXPECT_THAT(several.err, HasSubstr(absl::StrCat(one.pid())));
  EXPECT_THAT(several.err, HasSubstr(absl::StrCat(two.pid())));
  EXPECT_THAT(several.err, HasSubstr("give one PID"));
  CommandResult bad = RunCommand({Tool(), "record", "--name", "(unclosed"});
  EXPECT_EQ(bad.exit_code, kRecordUsageError) << bad.Describe();
  EXPECT_THAT(bad.err, HasSubstr("RE2"));
}

TEST_F(RecordCliTest, LaunchModeProfilesUntilExit) {
  SKIP_WITHOUT_PERF();
  std::string out = Out("launch.collapsed");
  std::string report = Out("launch_report.txt");
  absl::Time t0 = absl::Now();
  // --unwind fp: this is about the launch (events on at exec, off at exit),
  // and the workload keeps frame pointers. With the default (auto), the
  // reader builds the .eh_frame rules of every file after the exec, and an
  // ASan-built flamekit parsing an ASan target's libasan stalls long enough
  // to lose 10-25 % of a 1.5 s run's samples (it says so in its note);
  // building the rules off the reader's thread is the fix still to come.
  CommandResult r = RunCommand({Tool(), "record", "--unwind", "fp", "-i", "1ms", "-f", out, "--",
                                Workload(), "split", "1.5", report});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
  EXPECT_THAT(r.err, HasSubstr(", 0 lost"));
  EXPECT_THAT(r.err, HasSubstr("target exited"));
  EXPECT_THAT(r.err, HasSubstr("command exited with status 0"));
  Collapsed c = Collapsed::Read(out);
  // The whole life of the command was sampled: compare with the CPU time
  // it measured in HotA.
  std::istringstream in(ReadFile(report));
  double a_ns = 0;
  in >> a_ns;
  EXPECT_GE(static_cast<double>(c.WithChain({"main", "RunSplit", "HotA"})), a_ns / 1e6 * 0.8)
      << ReadFile(out);
  // Nothing of the flamekit process before exec got in.
  EXPECT_EQ(c.Inclusive("RunRecord"), 0u);
}

// A 0.3 s command launched on a machine both of whose cores are busy
// (two spinning workloads this test starts and kills): its frames are still
// named, not `attach_workload+0x194b` (issue 17: the program had exited
// before its mappings were read). ~1 s; run 20 times with
// --runs_per_test=20 to check it holds.
TEST_F(RecordCliTest, ShortLaunchUnderLoadKeepsNames) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess busy1 = SpawnedProcess::Start({Workload(), "split", "60"});
  SpawnedProcess busy2 = SpawnedProcess::Start({Workload(), "split", "60"});
  ASSERT_TRUE(busy1.ok() && busy2.ok()) << busy1.error() << busy2.error();
  std::string out = Out("short.collapsed");
  CommandResult r = RunCommand(
      {Tool(), "record", "-i", "1ms", "-f", out, "--", Workload(), "split", "0.3"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Collapsed c = Collapsed::Read(out);
  ASSERT_GT(c.total, 0u) << r.Describe();
  // Every sample of the program's own code is named; none is an offset.
  EXPECT_GT(c.WithChain({"main", "RunSplit", "HotA"}), 0u) << ReadFile(out);
  EXPECT_THAT(ReadFile(out), ::testing::Not(HasSubstr("attach_workload+0x"))) << r.Describe();
}

TEST_F(RecordCliTest, LaunchOfMissingCommandSaysSo) {
  CommandResult r = RunCommand({Tool(), "record", "-f", Out("x.collapsed"), "--",
                                "/nonexistent/flamekit-no-such-binary"});
  EXPECT_EQ(r.exit_code, kRecordLaunchFailed) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("cannot run"));
  EXPECT_THAT(r.err, HasSubstr("check the command"));
  EXPECT_FALSE(FileExists(Out("x.collapsed")));
}

TEST_F(RecordCliTest, TargetExitingMidCaptureStillWrites) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "1"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = Out("exit.collapsed");
  pid_t pid = target.pid();
  // Reap the target when it exits, as its parent would.
  absl::Duration target_cpu;
  std::thread reaper([&] { target.Wait(0, &target_cpu); });
  absl::Time t0 = absl::Now();
  CommandResult r =
      RunCommand({Tool(), "record", "-d", "20", "-i", "1ms", "-f", out, absl::StrCat(pid)});
  reaper.join();
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(8));
  EXPECT_THAT(r.err, HasSubstr("target exited"));
  Collapsed c = Collapsed::Read(out);
  // ~75% of the target's CPU is HotA; most of its life was sampled.
  int64_t cpu_ms = absl::ToInt64Milliseconds(target_cpu);
  EXPECT_GT(c.WithChain({"main", "RunSplit", "HotA"}), 0u) << ReadFile(out);
  EXPECT_GE(static_cast<int64_t>(c.WithChain({"main", "RunSplit", "HotA"})),
            cpu_ms * 4 / 10 - 30)
      << "cpu_ms=" << cpu_ms << "\n" << ReadFile(out);
}

TEST_F(RecordCliTest, ThreadsCreatedDuringCaptureAreProfiled) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "threads", "6", "700", "3"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = Out("newthreads.collapsed");
  CommandResult r =
      RunCommand({Tool(), "record", "-d", "2", "-t", "-f", out, absl::StrCat(target.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Collapsed c = Collapsed::Read(out);
  std::set<std::string> worker_threads;
  for (const auto& [frames, count] : c.stacks) {
    if (std::find(frames.begin(), frames.end(), "WorkerSpin") != frames.end()) {
      worker_threads.insert(frames[0]);
    }
  }
  EXPECT_EQ(worker_threads.size(), 3u) << ReadFile(out);
  EXPECT_GT(c.Inclusive("WorkerSpin"), c.Inclusive("MainSpin"));
  EXPECT_GT(c.Inclusive("MainSpin"), 0u);
  EXPECT_THAT(r.err, HasSubstr("4 followed"));
}

TEST_F(RecordCliTest, LibraryLoadedDuringCaptureResolves) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "dlopen", "6", "800", Plugin()});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = Out("dlopen.collapsed");
  CommandResult r =
      RunCommand({Tool(), "record", "-d", "2.5", "-f", out, absl::StrCat(target.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Collapsed c = Collapsed::Read(out);
  uint64_t plugin = c.WithChain({"main", "PluginWork", "PluginInner"});
  EXPECT_GT(plugin, c.total / 2) << ReadFile(out);
  EXPECT_GT(c.Inclusive("BeforeDlopen"), 0u);
  EXPECT_EQ(c.HottestLeaf(), "PluginInner");
  // No unresolved address of the plugin.
  EXPECT_THAT(ReadFile(out), ::testing::Not(HasSubstr("libattach_plugin.so+0x")));
}

TEST_F(RecordCliTest, TargetInOwnMountNamespaceResolves) {
  SKIP_WITHOUT_PERF();
  if (access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "no unshare(1)";
  // A tmpfs mounted only inside the target's namespace holds its binary; on
  // the host the directory stays empty.
  std::string hidden = Out("hidden");
  ASSERT_EQ(mkdir(hidden.c_str(), 0755), 0);
  std::string script = absl::StrCat(
      "mount -t tmpfs tmpfs ", hidden, " || exit 99; cp ", Workload(), " ", hidden,
      "/ns_workload || exit 98; exec ", hidden, "/ns_workload split 6");
  SpawnedProcess target =
      SpawnedProcess::Start({"/usr/bin/unshare", "--mount", "--propagation", "private",
                             "/bin/sh", "-c", script});
  if (!target.ok()) GTEST_SKIP() << "cannot make a mount namespace here: " << target.error();
  ASSERT_FALSE(FileExists(hidden + "/ns_workload")) << "tmpfs leaked to the host namespace";
  std::string out = Out("ns.collapsed");
  int64_t cpu0 = ProcessCpuMs(target.pid());
  CommandResult r =
      RunCommand({Tool(), "record", "-d", "1.5", "-i", "1ms", "-f", out,
                  absl::StrCat(target.pid())});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  int64_t cpu_ms = ProcessCpuMs(target.pid()) - cpu0;
  Collapsed c = Collapsed::Read(out);
  EXPECT_GT(c.WithChain({"main", "RunSplit", "HotA"}), 0u) << ReadFile(out);
  EXPECT_GE(static_cast<int64_t>(c.WithChain({"main", "RunSplit", "HotA"})),
            cpu_ms * 4 / 10 - 30)
      << "cpu_ms=" << cpu_ms << "\n" << ReadFile(out);
  EXPECT_THAT(ReadFile(out), ::testing::Not(HasSubstr("ns_workload+0x")));
}

TEST_F(RecordCliTest, CtrlCStopsAndWritesSecondAborts) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "20"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string pid = absl::StrCat(target.pid());
  // Two signals are sent back to back as SIGINT then SIGTERM: two SIGINTs
  // sent together would merge into one pending signal.
  auto run_and_signal = [&](const std::string& out, int signals) {
    std::vector<std::string> args = {Tool(), "record", "-i", "1ms", "-f", out, pid};
    std::vector<char*> argv = attach_testing::ArgvOf(args);
    pid_t tool = fork();
    if (tool == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    absl::SleepFor(absl::Milliseconds(800));
    kill(tool, SIGINT);
    if (signals > 1) kill(tool, SIGTERM);
    int status = 0;
    waitpid(tool, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  };
  std::string once = Out("once.collapsed");
  EXPECT_EQ(run_and_signal(once, 1), 0);
  EXPECT_GT(Collapsed::Read(once).Inclusive("HotA"), 0u);
  std::string twice = Out("twice.collapsed");
  EXPECT_EQ(run_and_signal(twice, 2), kRecordAborted);
  EXPECT_FALSE(FileExists(twice));
}

// On a terminal: a progress line (rewritten with \r) before the summary.
TEST_F(RecordCliTest, ShowsProgressOnATerminal) {
  SKIP_WITHOUT_PERF();
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "8"});
  ASSERT_TRUE(target.ok()) << target.error();
  int master = -1;
  std::string out = Out("tty.collapsed");
  std::vector<std::string> args = {Tool(), "record", "-d", "1.5", "-i", "1ms", "-f", out,
                                   absl::StrCat(target.pid())};
  std::vector<char*> argv = attach_testing::ArgvOf(args);
  pid_t tool = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(tool, 0);
  if (tool == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::string screen;
  char buf[1024];
  ssize_t n;
  while ((n = read(master, buf, sizeof(buf))) > 0) screen.append(buf, static_cast<size_t>(n));
  close(master);
  int status = 0;
  waitpid(tool, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << screen;
  EXPECT_THAT(screen, ::testing::ContainsRegex("\rflamekit: [0-9.]+s/1\\.5s  samples [0-9]+  "
                                               "lost 0  threads 1"));
  EXPECT_THAT(screen, HasSubstr("wrote " + out));
  // --quiet: nothing at all.
  CommandResult quiet = RunCommand({Tool(), "record", "-q", "-d", "0.5", "-f", out,
                                    absl::StrCat(target.pid())});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.Describe();
  EXPECT_EQ(quiet.err, "");
}

// The same workload under `perf record -g`: the hottest functions agree.
TEST_F(RecordCliTest, AgreesWithPerfRecord) {
  SKIP_WITHOUT_PERF();
  if (access("/usr/bin/perf", X_OK) != 0) GTEST_SKIP() << "no perf (linux-perf) installed";
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "spin2", "8"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string pid = absl::StrCat(target.pid());
  std::string data = Out("perf.data");
  CommandResult perf = RunCommand({"/usr/bin/perf", "record", "-g", "-F", "999", "-o", data,
                                   "-p", pid, "--", "sleep", "2"});
  if (perf.exit_code != 0) GTEST_SKIP() << "perf record failed here: " << perf.Describe();
  CommandResult report = RunCommand({"/usr/bin/perf", "report", "-i", data, "--stdio",
                                     "--no-children", "--sort", "sym", "-q", "-g", "none"});
  if (report.exit_code != 0) GTEST_SKIP() << "perf report failed: " << report.Describe();
  // Lines like "    74.81%  [.] HotA".
  std::vector<std::pair<double, std::string>> perf_top;
  for (absl::string_view line : absl::StrSplit(report.out, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 3 || !absl::EndsWith(f[0], "%")) continue;
    double pct = 0;
    if (!absl::SimpleAtod(f[0].substr(0, f[0].size() - 1), &pct)) continue;
    perf_top.emplace_back(pct, std::string(f[2]));
  }
  ASSERT_GE(perf_top.size(), 2u) << report.out;
  std::string out = Out("ours.collapsed");
  CommandResult ours = RunCommand({Tool(), "record", "-d", "2", "-F", "999", "-f", out, pid});
  ASSERT_EQ(ours.exit_code, 0) << ours.Describe();
  Collapsed c = Collapsed::Read(out);
  EXPECT_EQ(perf_top[0].second, "HotA") << report.out;
  EXPECT_EQ(perf_top[1].second, "HotB") << report.out;
  EXPECT_EQ(c.HottestLeaf(), perf_top[0].second);
  double our_a = 100.0 * c.Inclusive("HotA") / c.total;
  EXPECT_NEAR(our_a, perf_top[0].first, 5.0) << report.out;
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
