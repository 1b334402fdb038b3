// SPDX-License-Identifier: Apache-2.0
// `flamekit record -e alloc|live|lock -- COMMAND` launches a real program
// with the real agent (runfiles), and `-e alloc PID` is refused with what
// to do; the .pb.gz it leaves carries bytes and allocation counts, read
// back with Debian's `go tool pprof`. Run time: ~6 s (4 s of it the
// pprof test: two workload runs and four `go tool pprof` calls).

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
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

// `go tool pprof -top -unit=B ARGS PATH` (private HOME and caches) as
// function -> flat value; empty when Go is missing (*skip set).
std::map<std::string, double> PprofFlat(const std::string& args, const std::string& path,
                                        bool* skip) {
  std::map<std::string, double> rows;
  if (access("/usr/bin/go", X_OK) != 0) {
    *skip = true;
    return rows;
  }
  const std::string dir = TestTmp("go");
  const std::string command =
      "mkdir -p " + dir + " && env HOME=" + dir + " GOCACHE=" + dir + "/cache GOPATH=" + dir +
      "/path GOTOOLCHAIN=local GOFLAGS= GOPROXY=off PPROF_TMPDIR=" + dir +
      " /usr/bin/go tool pprof -top -unit=B " + args + " " + path + " 2>&1 </dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  // "  446465 59.48% 59.48%  446465 59.48%  SiteSixty" (bytes end in "B").
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string flat, a, b, cum, c, name;
    if (!(fields >> flat >> a >> b >> cum >> c >> name) || a.back() != '%') continue;
    if (flat.back() == 'B') flat.pop_back();
    rows[name] = std::stod(flat);
  }
  return rows;
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

// The workload makes 450,000 / 225,000 / 75,000 allocations of 4 KiB at
// its three sites: the pprof file has them as alloc_objects (5,800 samples:
// the total within 5 %, each site's count its bytes / 4096 within 0.5 %),
// and the bytes as the default sample type.
TEST_F(RecordHooksTest, PprofCarriesBytesAndAllocationCounts) {
  const std::string out = TestTmp("record-alloc.pb.gz");
  CliResult r = RunFlamekit({"record", "-e", "alloc", "-f", out, "--", workload_, "split"});
  ASSERT_EQ(r.code, 0) << r.err;
  bool skip = false;
  std::map<std::string, double> objects = PprofFlat("-sample_index=alloc_objects", out, &skip);
  if (skip) GTEST_SKIP() << "/usr/bin/go missing: install Debian's golang-go to read pprof";
  std::map<std::string, double> bytes = PprofFlat("", out, &skip);
  const double total = objects["SiteSixty"] + objects["SiteThirty"] + objects["SiteTen"];
  EXPECT_NEAR(total, 750000, 0.05 * 750000);
  for (const char* site : {"SiteSixty", "SiteThirty", "SiteTen"}) {
    ASSERT_GT(objects[site], 0) << site;
    EXPECT_NEAR(objects[site] * 4096, bytes[site], 0.005 * bytes[site]) << site;
  }
  EXPECT_NEAR(objects["SiteSixty"], 450000, 0.05 * 450000);
  // live: the 64 MiB leak is 16,384 objects of 4 KiB (1,000 samples at 64k).
  const std::string live = TestTmp("record-live.pb.gz");
  r = RunFlamekit({"record", "-e", "live", "-i", "64k", "-f", live, "--", workload_, "leak"});
  ASSERT_EQ(r.code, 0) << r.err;
  objects = PprofFlat("-sample_index=inuse_objects", live, &skip);
  EXPECT_NEAR(objects["LeakSite"], 16384, 0.1 * 16384);
  bytes = PprofFlat("-sample_index=inuse_space", live, &skip);
  EXPECT_NEAR(bytes["LeakSite"], 64.0 * 1024 * 1024, 0.1 * 64 * 1024 * 1024);
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
