// SPDX-License-Identifier: Apache-2.0
// `flamekit record` and `list` errors through the binary (exit codes, one
// line naming the fix, nothing written), `list`, and argument parsing.
// The captures themselves are record_test.cc.
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
using ::testing::AllOf;

std::string Tool() { return Runfile("examples/cli/flamekit"); }
std::string Workload() { return Runfile("testdata/attach/attach_workload"); }

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

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

// A full disk at the end of a capture: exit code, message, no file.
TEST_F(RecordCliTest, FullDiskIsReported) {
  SKIP_WITHOUT_PERF();
  if (access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "no unshare(1)";
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "8"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string small = Out("small");
  ASSERT_EQ(mkdir(small.c_str(), 0755), 0);
  // A 4 KiB tmpfs, in a mount namespace of the tool's own; the HTML page
  // is far larger.
  std::string script = absl::StrCat("mount -t tmpfs -o size=4k tmpfs ", small,
                                     " || exit 99; exec ", Tool(), " record -d 0.5 -f ", small,
                                     "/flame.html ", target.pid());
  CommandResult r = RunCommand({"/usr/bin/unshare", "--mount", "--propagation", "private",
                                "/bin/sh", "-c", script});
  if (r.exit_code == 99 || (r.exit_code == 1 && absl::StrContains(r.err, "unshare"))) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << r.Describe();
  }
  EXPECT_EQ(r.exit_code, kRecordOutputError) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("no space left"));
  EXPECT_FALSE(FileExists(small + "/flame.html"));
}

struct ErrorCase {
  std::vector<std::string> args;  // after "record"
  int exit_code;
  std::vector<std::string> message_parts;
};

TEST_F(RecordCliTest, ErrorsHaveExitCodesAndNameTheFix) {
  // A PID that existed and was reaped: nobody has it now.
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "20"});
  ASSERT_TRUE(target.ok()) << target.error();
  const std::string pid = absl::StrCat(target.pid());
  const std::string ok_out = Out("e.collapsed");
  std::vector<ErrorCase> cases = {
      {{"-d", "1", "-f", ok_out, absl::StrCat(gone)}, kRecordNoProcess,
       {absl::StrCat("no process ", gone), "ps"}},
      {{"-e", "cpu-cycels", pid}, kRecordUsageError, {"unknown event", "flamekit list"}},
      {{"-d", "-3", pid}, kRecordUsageError, {"bad duration", "give seconds"}},
      {{"-d", "soon", pid}, kRecordUsageError, {"bad duration", "30"}},
      {{"-i", "0", pid}, kRecordUsageError, {"bad interval", "10ms"}},
      {{"-i", "5 parsecs", pid}, kRecordUsageError, {"bad interval", "500us"}},
      {{"-e", "page-faults", "-i", "1ms", pid}, kRecordUsageError, {"count"}},
      {{"-i", "1ms", "-F", "99", pid}, kRecordUsageError, {"not both"}},
      {{"-F", "100000000", pid}, kRecordUsageError, {"frequency"}},
      {{"--bogus", pid}, kRecordUsageError, {"unknown flag", "--help"}},
      {{"notapid"}, kRecordUsageError, {"not a PID"}},
      {{}, kRecordUsageError, {"no target"}},
      {{"-f", "/nonexistent-dir/x.collapsed", pid}, kRecordOutputError,
       {"does not exist", "choose another -f"}},
      {{"-f", "/etc/passwd/x.collapsed", pid}, kRecordOutputError, {"does not exist"}},
      {{"-f", dir_, pid}, kRecordOutputError, {"is a directory"}},
      {{"-f", Out("x.unknownext"), pid}, kRecordOutputError, {"cannot tell the output format", ".html"}},
      {{"--include", "(bad", "-f", ok_out, pid}, kRecordUsageError, {"--include"}},
  };
  // A hardware event: no PMU here (most VMs); only checked where that holds.
  {
    PerfEventOptions probe;
    probe.event = *ParsePerfEvent("cycles");
    absl::StatusOr<ScopedFd> fd = OpenPerfEvent(probe);
    if (!fd.ok() && absl::StrContains(fd.status().message(), "no PMU")) {
      cases.push_back({{"-d", "1", "-e", "cycles", "-f", ok_out, pid},
                       kRecordNoPmu,
                       {"not available on this machine: no PMU", "software event"}});
    }
  }
  for (const ErrorCase& c : cases) {
    std::vector<std::string> args = {Tool(), "record"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CommandResult r = RunCommand(args, absl::Seconds(20));
    std::string what = absl::StrJoin(c.args, " ");
    EXPECT_EQ(r.exit_code, c.exit_code) << what << "\n" << r.Describe();
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(r.err, HasSubstr(part)) << what;
    }
    // One line, no crash, nothing written.
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << "\n" << r.err;
  }
  EXPECT_FALSE(FileExists(ok_out));
}

TEST_F(RecordCliTest, PermissionDeniedNamesParanoidAndCapability) {
  SKIP_WITHOUT_PERF();
  // An unprivileged user may not profile root's process: run the tool as
  // nobody against a root-owned target.
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  std::string copy = "/tmp/flamekit_record_tool_" + std::to_string(getpid());
  ASSERT_EQ(RunCommand({"/bin/cp", Tool(), copy}).exit_code, 0);
  chmod(copy.c_str(), 0755);
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "20"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = "/tmp/flamekit_perm_" + std::to_string(getpid()) + ".collapsed";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], 2);
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(200);
    execl(copy.c_str(), copy.c_str(), "record", "-d", "1", "-f", out.c_str(),
          std::to_string(target.pid()).c_str(), static_cast<char*>(nullptr));
    _exit(201);
  }
  close(fds[1]);
  std::string err;
  char buf[1024];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  unlink(copy.c_str());
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 200 || code == 201) GTEST_SKIP() << "cannot run as nobody here (" << code << ")";
  EXPECT_EQ(code, kRecordPermissionDenied) << err;
  EXPECT_THAT(err, HasSubstr("perf_event_paranoid is")) << err;
  EXPECT_THAT(err, HasSubstr("CAP_PERFMON")) << err;
  EXPECT_FALSE(FileExists(out));
}

TEST_F(RecordCliTest, ListShowsEventsAndWhyMissing) {
  CommandResult r = RunCommand({Tool(), "list"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("perf_event_paranoid:"));
  for (const PerfEventSpec& spec : KnownPerfEvents()) {
    EXPECT_THAT(r.out, HasSubstr(spec.name));
  }
  PerfEventOptions probe;
  if (OpenPerfEvent(probe).ok()) {
    EXPECT_THAT(r.out, ::testing::ContainsRegex("cpu +time +available"));
    // -e wall is cpu-clock plus context switches: listed with them.
    EXPECT_THAT(r.out, ::testing::ContainsRegex("wall +time +available"));
  }
  probe.event = *ParsePerfEvent("cycles");
  absl::StatusOr<ScopedFd> cycles = OpenPerfEvent(probe);
  if (!cycles.ok() && absl::StrContains(cycles.status().message(), "no PMU")) {
    EXPECT_THAT(r.out, ::testing::ContainsRegex("cycles +count +missing: not available on "
                                                "this machine: no PMU"));
  }
  SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "5"});
  ASSERT_TRUE(target.ok());
  CommandResult for_pid = RunCommand({Tool(), "list", absl::StrCat(target.pid())});
  EXPECT_EQ(for_pid.exit_code, 0) << for_pid.Describe();
  EXPECT_THAT(for_pid.out, HasSubstr(absl::StrCat("events for pid ", target.pid())));
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  CommandResult missing = RunCommand({Tool(), "list", absl::StrCat(gone)});
  EXPECT_EQ(missing.exit_code, kRecordNoProcess) << missing.Describe();
  EXPECT_THAT(missing.err, HasSubstr("no process"));
  EXPECT_EQ(RunCommand({Tool(), "list", "abc"}).exit_code, kRecordUsageError);
}

// Argument parsing on its own (no processes).
TEST(RecordArgsTest, ParsesAllOptions) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      RecordFlags f,
      ParseRecordArgs({"-d", "30", "-e", "page-faults", "-i", "100", "-f", "x.html", "-t",
                       "--include", "Handle", "--exclude=epoll", "--title", "T", "--minwidth",
                       "0.5", "--inverted", "--quiet", "1234"}));
  EXPECT_EQ(f.pid, 1234);
  EXPECT_EQ(f.duration, absl::Seconds(30));
  EXPECT_EQ(f.event.name, "page-faults");
  EXPECT_EQ(f.period.count, 100u);
  EXPECT_EQ(f.file, "x.html");
  EXPECT_TRUE(f.threads);
  EXPECT_EQ(f.includes, std::vector<std::string>{"Handle"});
  EXPECT_EQ(f.excludes, std::vector<std::string>{"epoll"});
  EXPECT_EQ(f.title, "T");
  EXPECT_DOUBLE_EQ(f.minwidth, 0.5);
  EXPECT_TRUE(f.inverted);
  EXPECT_TRUE(f.quiet);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(f, ParseRecordArgs({"-F", "999", "--", "ls", "-l"}));
  EXPECT_EQ(f.period.frequency_hz, 999u);
  EXPECT_EQ(f.command, (std::vector<std::string>{"ls", "-l"}));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(f, ParseRecordArgs({"--name", "srv", "-d", "500ms"}));
  EXPECT_EQ(f.name_pattern, "srv");
  EXPECT_EQ(f.duration, absl::Milliseconds(500));
  EXPECT_THAT(ParseRecordArgs({"1", "2"}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRecordArgs({"1", "--name", "x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only one")));
  EXPECT_THAT(ParseRecordArgs({"--"}), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseRecordArgs({"-d"}), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("needs a value")));
  EXPECT_EQ(ExitCodeOf(ParseRecordArgs({"-x", "1"}).status()), kRecordUsageError);
}

// --unwind, --stack-size, and the timer engines that cannot work by PID.
TEST(RecordArgsTest, UnwindStackSizeAndTimerEnginesByPid) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(RecordFlags f, ParseRecordArgs({"1234"}));
  EXPECT_EQ(f.unwind, AttachUnwind::kAuto);
  EXPECT_EQ(f.stack_bytes, kDefaultAttachStackBytes);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(f, ParseRecordArgs({"--unwind", "dwarf", "--stack-size", "16k",
                                                    "1234"}));
  EXPECT_EQ(f.unwind, AttachUnwind::kDwarf);
  EXPECT_EQ(f.stack_bytes, 16384u);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(f, ParseRecordArgs({"--unwind", "fp", "1234"}));
  EXPECT_EQ(f.unwind, AttachUnwind::kFramePointers);
  EXPECT_THAT(ParseRecordArgs({"--unwind", "lbr", "1234"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fp, dwarf or auto")));
  EXPECT_THAT(ParseRecordArgs({"--stack-size", "1m", "1234"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("65528")));
  EXPECT_THAT(ParseRecordArgs({"--unwind", "fp", "--stack-size", "8k", "1234"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dwarf or auto")));
  for (const char* engine : {"ctimer", "itimer"}) {
    absl::StatusOr<RecordFlags> r = ParseRecordArgs({"-e", engine, "1234"});
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument,
                            AllOf(HasSubstr("cannot profile another process"),
                                  HasSubstr("-e cpu"), HasSubstr("agent"))));
    EXPECT_EQ(ExitCodeOf(r.status()), kRecordUsageError);
  }
}

TEST(RecordArgsTest, ExitCodesByStatus) {
  EXPECT_EQ(ExitCodeOf(absl::OkStatus()), kRecordOk);
  EXPECT_EQ(ExitCodeOf(absl::NotFoundError("no process 1")), kRecordNoProcess);
  EXPECT_EQ(ExitCodeOf(absl::PermissionDeniedError("x")), kRecordPermissionDenied);
  EXPECT_EQ(ExitCodeOf(absl::FailedPreconditionError("x: no PMU")), kRecordNoPmu);
  EXPECT_EQ(ExitCodeOf(absl::FailedPreconditionError("perf events unavailable here")),
            kRecordPerfUnavailable);
  EXPECT_EQ(ExitCodeOf(absl::ResourceExhaustedError("ulimit -n")), kRecordResourceLimit);
  EXPECT_EQ(ExitCodeOf(WithExitCode(absl::NotFoundError("x"), kRecordNameMatch)),
            kRecordNameMatch);
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
