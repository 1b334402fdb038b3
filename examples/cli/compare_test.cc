// SPDX-License-Identifier: Apache-2.0
// `convert` and `diff` on real captures: the flamekit binary records an
// attach_workload process to .html, converts that page to every format, and
// each file reads back to exactly the stacks of the page; two record
// captures are diffed page to page; two events are refused. About 4 s
// (two 1 s captures, the rest in-process).
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "examples/cli/cli_test_util.h"
#include "flamekit/attach/test_util.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/profile/read_profile.h"
#include "flamekit/render/flame_graph.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace cli {
namespace {

using ::flamekit::attach_testing::CommandResult;
using ::flamekit::attach_testing::RunCommand;
using ::flamekit::attach_testing::Runfile;
using ::flamekit::attach_testing::SpawnedProcess;
using ::testing::HasSubstr;

std::string Tool() { return Runfile("examples/cli/flamekit"); }
std::string Workload() { return Runfile("testdata/attach/attach_workload"); }

// Every stack as "name/kind;... COUNT", sorted (exact comparison).
std::vector<std::string> Canonical(const Profile& p) {
  std::vector<std::string> out;
  for (size_t i = 0; i < p.stack_count(); ++i) {
    std::string line;
    for (FrameId id : p.stack(i)) {
      absl::StrAppend(&line, p.frame(id).name, "/", FrameKindName(p.frame(id).kind), ";");
    }
    absl::StrAppend(&line, " ", p.stack_count_at(i));
    out.push_back(std::move(line));
  }
  std::sort(out.begin(), out.end());
  return out;
}

class CompareCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PerfEventOptions probe;
    absl::StatusOr<ScopedFd> fd = OpenPerfEvent(probe);
    if (!fd.ok()) GTEST_SKIP() << "perf events unusable: " << fd.status();
    dir_ = attach_testing::TempDir();
  }
  std::string Out(absl::string_view name) { return absl::StrCat(dir_, "/", name); }
  // A 1 s capture of a running workload, as `record` writes it.
  void Record(const std::string& path) {
    SpawnedProcess target = SpawnedProcess::Start({Workload(), "split", "8"});
    ASSERT_TRUE(target.ok()) << target.error();
    CommandResult r = RunCommand({Tool(), "record", "-d", "1", "-i", "1ms", "-f", path,
                                  absl::StrCat(target.pid())});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  std::string dir_;
};

TEST_F(CompareCliTest, RecordedPageConvertsToEveryFormatAndReadsBackExactly) {
  const std::string html = Out("capture.html");
  ASSERT_NO_FATAL_FAILURE(Record(html));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile page, ReadProfileFile(html));
  ASSERT_GT(page.total_samples(), 50u);
  EXPECT_EQ(page.metadata().event, "cpu");
  const std::vector<std::string> expected = Canonical(page);
  const std::string collapsed = ToCollapsedString(page);
  for (const char* name : {"again.html", "capture.svg", "capture.pb.gz", "capture.pprof",
                           "capture.txt", "capture.collapsed"}) {
    SCOPED_TRACE(name);
    const std::string out = Out(name);
    CliResult r = RunFlamekit({"convert", html, "-f", out});
    ASSERT_EQ(r.code, 0) << r.err;
    ProfileReadInfo info;
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile back, ReadProfileFile(out, {}, &info));
    const std::string ext = std::string(name).substr(std::string(name).find('.') + 1);
    if (ext == "txt" || ext == "collapsed") {
      // Collapsed text cannot say a frame's object (library vs program): the
      // text is what must match.
      EXPECT_EQ(ToCollapsedString(back), collapsed);
    } else {
      EXPECT_EQ(Canonical(back), expected) << info.format;
      EXPECT_EQ(back.metadata().event, "cpu");
      EXPECT_EQ(back.metadata().interval, page.metadata().interval);
    }
  }
}

TEST_F(CompareCliTest, DiffsTwoRecordCapturesAndRefusesTwoEvents) {
  const std::string before = Out("before.html"), after = Out("after.html");
  ASSERT_NO_FATAL_FAILURE(Record(before));
  ASSERT_NO_FATAL_FAILURE(Record(after));
  CliResult r = RunFlamekit({"diff", before, after, "-f", Out("diff.html")});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(Out("diff.html"));
  std::stringstream page;
  page << in.rdbuf();
  EXPECT_THAT(page.str(), HasSubstr("\"diff\":true"));
  // The difffolded text holds both captures' samples.
  r = RunFlamekit({"diff", before, after, "-f", "-"});
  ASSERT_EQ(r.code, 0) << r.err;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile a, ReadProfileFile(before));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile b, ReadProfileFile(after));
  uint64_t sum_before = 0, sum_after = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    size_t last = line.rfind(' '), prev = line.rfind(' ', last - 1);
    sum_before += std::stoull(line.substr(prev + 1, last - prev - 1));
    sum_after += std::stoull(line.substr(last + 1));
  }
  EXPECT_EQ(sum_before, a.total_samples());
  EXPECT_EQ(sum_after, b.total_samples());
  // A diff page is not a capture: it says what to give instead.
  r = RunFlamekit({"diff", Out("diff.html"), after, "-f", Out("x.html")});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("give the two captures it was made from"));
  // Two events: refused, naming both.
  Profile faults = b;
  faults.metadata().event = "page-faults";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string faults_html, RenderFlameGraphHtml(faults, {}));
  std::ofstream(Out("faults.html")) << faults_html;
  r = RunFlamekit({"diff", before, Out("faults.html"), "-f", Out("y.html")});
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("BASE sampled 'cpu' but NEW 'page-faults'"));
  struct stat st;
  EXPECT_NE(stat(Out("y.html").c_str(), &st), 0);  // no half-written output
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
