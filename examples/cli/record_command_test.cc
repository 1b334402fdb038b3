// SPDX-License-Identifier: Apache-2.0
// In-process tests of the `record` and `list` commands as cli::Command
// entries (the same functions the flamekit binary runs), and of the
// profiler.sh-form detection.
#include "examples/cli/record_command.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "flamekit/attach/test_util.h"
#include "flamekit/perf/perf_event.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace cli {
namespace {

using ::flamekit::attach_testing::Runfile;
using ::flamekit::attach_testing::SpawnedProcess;
using ::flamekit::attach_testing::TempDir;
using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunCommandInProcess(const Command& command, std::vector<std::string> args) {
  std::ostringstream out, err;
  CommandIo io{out, err};
  int code = RunCommand(command, args, io);
  return Result{code, out.str(), err.str()};
}

TEST(RecordCommandTest, RecordsAWorkloadInProcess) {
  PerfEventOptions probe;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(probe);
  if (!fd.ok()) GTEST_SKIP() << fd.status();
  SpawnedProcess target =
      SpawnedProcess::Start({Runfile("testdata/attach/attach_workload"), "split", "6"});
  ASSERT_TRUE(target.ok()) << target.error();
  std::string out = TempDir() + "/flame.svg";
  Result r = RunCommandInProcess(RecordCommand(), {"-d", "1", "-i", "1ms", "-f", out,
                                   absl::StrCat(target.pid())});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("hottest functions"));
  EXPECT_THAT(r.err, HasSubstr("HotA"));
  EXPECT_THAT(r.err, HasSubstr("wrote " + out));
  // The same through the profiler.sh form.
  std::vector<std::string> sh = {"-d", "1", "-f", TempDir() + "/sh.collapsed",
                                 absl::StrCat(target.pid())};
  ASSERT_TRUE(IsProfilerShForm(sh));
  std::ostringstream o, e;
  CommandIo io{o, e};
  EXPECT_EQ(RunProfilerShForm(sh, io), 0) << e.str();
}

TEST(RecordCommandTest, ErrorsReturnTheirExitCodes) {
  Result r = RunCommandInProcess(RecordCommand(), {"-e", "nonsense", "1"});
  EXPECT_EQ(r.code, kRecordUsageError);
  EXPECT_THAT(r.err, HasSubstr("unknown event"));
  r = RunCommandInProcess(RecordCommand(), {"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--duration"));
}

TEST(RecordCommandTest, ListCommandPrintsEvents) {
  Result r = RunCommandInProcess(ListCommand(), {});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("page-faults"));
  EXPECT_THAT(r.out, HasSubstr("cycles"));
}

TEST(RecordCommandTest, DetectsProfilerShForm) {
  struct Case {
    std::vector<std::string> argv;
    bool expected;
  } cases[] = {
      {{"-d", "30", "-e", "cpu", "-f", "flame.html", "1234"}, true},
      {{"1234"}, true},
      {{"--duration=5", "1"}, true},
      {{"-f", "x.html", "--", "ls"}, true},
      {{"convert", "a.txt", "-f", "b.html"}, false},
      {{"record", "1234"}, false},
      {{"help"}, false},
      {{"--help"}, false},
      {{}, false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsProfilerShForm(c.argv), c.expected) << absl::StrJoin(c.argv, " ");
  }
}

TEST(RecordCommandTest, CommandsDescribeThemselves) {
  EXPECT_STREQ(RecordCommand().name, "record");
  EXPECT_STREQ(ListCommand().name, "list");
  EXPECT_THAT(RecordCommand().details, HasSubstr("--frequency"));
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
