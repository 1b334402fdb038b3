// SPDX-License-Identifier: Apache-2.0
// `flamekit record -e alloc|live|lock -- COMMAND` launches a real program
// with the real agent (runfiles), and `-e alloc PID` is refused with what
// to do. Run time: ~2 s.

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "examples/cli/cli_test_util.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace cli {
namespace {

std::string Runfile(const std::string& path) {
  return std::string(getenv("TEST_SRCDIR")) + "/" + getenv("TEST_WORKSPACE") + "/" + path;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The weight of the collapsed lines containing `needle`.
uint64_t Weight(const std::string& collapsed, const std::string& needle) {
  uint64_t total = 0;
  std::istringstream lines(collapsed);
  for (std::string line; std::getline(lines, line);) {
    if (!absl::StrContains(line, needle)) continue;
    total += std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

class RecordHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("FLAMEKIT_AGENT", Runfile("examples/agent/libflamekit_agent.so").c_str(), 1);
  }
  const std::string workload_ = Runfile("examples/agent/alloc_workload");
};

TEST_F(RecordHooksTest, AllocLaunchesTheCommandWithTheAgent) {
  const std::string out = TestTmp("record-alloc.collapsed");
  CliResult r = RunFlamekit({"record", "-e", "alloc", "-f", out, "--", workload_, "split"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "alloc profile (bytes) -> " + out)) << r.err;
  const std::string profile = Slurp(out);
  const double a = Weight(profile, "SiteSixty"), b = Weight(profile, "SiteThirty"),
               c = Weight(profile, "SiteTen");
  ASSERT_GT(a + b + c, 0) << profile;
  EXPECT_NEAR(100 * a / (a + b + c), 60, 2) << profile;
  EXPECT_NEAR(100 * c / (a + b + c), 10, 2) << profile;
}

TEST_F(RecordHooksTest, LiveAndLockWithTheirIntervals) {
  const std::string live = TestTmp("record-live.collapsed");
  CliResult r = RunFlamekit({"record", "-e", "live", "-i", "64k", "-f", live, "--", workload_,
                             "leak"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NEAR(Weight(Slurp(live), "LeakSite"), 64.0 * 1024 * 1024, 0.1 * 64 * 1024 * 1024)
      << Slurp(live);
  const std::string lock = TestTmp("record-lock.collapsed");
  r = RunFlamekit({"record", "-e", "lock", "-i", "100us", "-f", lock, "--", workload_, "lock"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GE(Weight(Slurp(lock), "TakeTheLock"), 100000000u) << Slurp(lock);
  EXPECT_TRUE(absl::StrContains(r.err, "lock profile (time waited)")) << r.err;
}

TEST_F(RecordHooksTest, ARunningProcessIsRefusedWithWhatToDo) {
  CliResult r = RunFlamekit({"record", "-e", "alloc", std::to_string(getpid())});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "flamekit record -e alloc -- COMMAND")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "hooks:interpose")) << r.err;
  r = RunFlamekit({"record", "-e", "live", "--name", "anything"});
  EXPECT_EQ(r.code, 2) << r.err;
}

TEST_F(RecordHooksTest, BadSettingsFailBeforeAnythingRuns) {
  const std::string marker = TestTmp("must-not-exist");
  CliResult r = RunFlamekit({"record", "-e", "alloc", "-i", "lots", "--", "touch", marker});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "mean bytes between samples")) << r.err;
  r = RunFlamekit({"record", "-e", "alloc", "-d", "5", "--", "touch", marker});
  EXPECT_EQ(r.code, 2) << r.err;
  r = RunFlamekit({"record", "-e", "alloc", "-f", "/nonexistent-dir/x.html", "--", "touch", marker});
  EXPECT_EQ(r.code, 8) << r.err;
  setenv("FLAMEKIT_AGENT", "/nonexistent/libflamekit_agent.so", 1);
  r = RunFlamekit({"record", "-e", "alloc", "--", "touch", marker});
  EXPECT_EQ(r.code, 10) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "FLAMEKIT_AGENT")) << r.err;
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the command ran";
}

TEST_F(RecordHooksTest, ACommandKilledBySignalLeavesNoProfileAndSaysWhy) {
  const std::string out = TestTmp("killed.collapsed");
  CliResult r = RunFlamekit({"record", "-e", "alloc", "-f", out, "--", "sh", "-c", "kill -9 $$"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "was killed by signal 9")) << r.err;
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
