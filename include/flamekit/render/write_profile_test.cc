// SPDX-License-Identifier: Apache-2.0
// Tests of WriteProfile(): the format by extension or option, atomic files,
// and clear errors.

#include "flamekit/render/write_profile.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/render_test_util.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class WriteProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/write_profile_test";
    mkdir(dir_.c_str(), 0755);
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& name) { return access((dir_ + "/" + name).c_str(), F_OK) == 0; }
  std::string dir_;
  Profile profile_ = render_testing::SmallProfile();
};

TEST_F(WriteProfileTest, ChoosesTheFormatByExtension) {
  for (const char* name : {"a.html", "a.svg", "a.txt", "a.collapsed", "a.pb.gz", "a.pprof",
                           "UPPER.HTML"}) {
    ASSERT_THAT(WriteProfile(profile_, dir_ + "/" + name), IsOk()) << name;
  }
  EXPECT_THAT(Read("a.html"), StartsWith("<!DOCTYPE html>"));
  EXPECT_THAT(Read("UPPER.HTML"), StartsWith("<!DOCTYPE html>"));
  EXPECT_THAT(Read("a.svg"), StartsWith("<?xml"));
  EXPECT_THAT(Read("a.txt"), HasSubstr("main;Server::Run();Server::HandleRequest(Request const&);"
                                       "JsonParser::Parse(std::basic_string_view<char>) 700\n"));
  EXPECT_EQ(Read("a.txt"), Read("a.collapsed"));
  std::string gz = Read("a.pb.gz");
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
  EXPECT_EQ(gz, Read("a.pprof"));
}

TEST_F(WriteProfileTest, CollapsedMarksKindsAndSortsStacks) {
  ASSERT_THAT(WriteProfile(profile_, dir_ + "/k.txt"), IsOk());
  std::string text = Read("k.txt");
  EXPECT_THAT(text, HasSubstr("main;Server::Run();epoll_wait;entry_SYSCALL_64_[k];"
                              "do_epoll_wait_[k] 200\n"));
  EXPECT_THAT(text, HasSubstr("Interp::Eval_[j] 50\n"));
  EXPECT_THAT(text, HasSubstr("Hash(Key const&)_[i] 40\n"));
  EXPECT_THAT(text, StartsWith("main 10\n"));
}

TEST_F(WriteProfileTest, CollapsedReadsBackIntoTheSameProfile) {
  for (const Profile& original :
       {render_testing::SmallProfile(), render_testing::ThreadProfile()}) {
    ASSERT_THAT(WriteProfile(original, dir_ + "/round.collapsed"), IsOk());
    absl::StatusOr<Profile> back = ReadCollapsedFile(dir_ + "/round.collapsed");
    ASSERT_THAT(back, IsOk());
    EXPECT_EQ(RenderCollapsed(*back), RenderCollapsed(original));
    EXPECT_EQ(back->total_samples(), original.total_samples());
    // Kinds survive: thread roots stay threads, kernel frames stay kernel.
    std::map<std::string, FrameKind> kinds;
    for (FrameId id = 0; id < back->frame_count(); ++id) {
      kinds[back->frame(id).name] = back->frame(id).kind;
    }
    for (FrameId id = 0; id < original.frame_count(); ++id) {
      const Frame& f = original.frame(id);
      if (f.kind == FrameKind::kLibrary) continue;  // collapsed text cannot say "library"
      EXPECT_EQ(kinds[f.name], f.kind) << f.name;
    }
  }
}

TEST_F(WriteProfileTest, ExplicitFormatWinsOverTheExtension) {
  RenderOptions options;
  options.format = OutputFormat::kSvg;
  ASSERT_THAT(WriteProfile(profile_, dir_ + "/really_svg.out", options), IsOk());
  EXPECT_THAT(Read("really_svg.out"), StartsWith("<?xml"));
}

TEST_F(WriteProfileTest, UnknownExtensionSaysWhatToDo) {
  EXPECT_THAT(WriteProfile(profile_, dir_ + "/flame.png"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(".pb.gz")));
  EXPECT_FALSE(Exists("flame.png"));
}

TEST_F(WriteProfileTest, MissingDirectoryIsAClearErrorAndLeavesNothing) {
  EXPECT_THAT(WriteProfile(profile_, dir_ + "/no/such/dir/flame.html"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("directory does not exist")));
}

TEST_F(WriteProfileTest, BrokenTemplateLeavesTheOldFileUntouched) {
  ASSERT_THAT(WriteProfile(profile_, dir_ + "/keep.html"), IsOk());
  std::string before = Read("keep.html");
  std::string templates = dir_ + "/broken_templates";
  mkdir(templates.c_str(), 0755);
  std::ofstream(templates + "/flame_graph.html.mustache") << "{{#unclosed}}";
  RenderOptions options;
  options.templates_dir = templates;
  EXPECT_THAT(WriteProfile(profile_, dir_ + "/keep.html", options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Read("keep.html"), before);
}

TEST(ParseOutputFormatTest, KnowsTheNames) {
  EXPECT_THAT(ParseOutputFormat("html"), testing::IsOkAndHolds(OutputFormat::kHtml));
  EXPECT_THAT(ParseOutputFormat("SVG"), testing::IsOkAndHolds(OutputFormat::kSvg));
  EXPECT_THAT(ParseOutputFormat("txt"), testing::IsOkAndHolds(OutputFormat::kCollapsed));
  EXPECT_THAT(ParseOutputFormat("pb.gz"), testing::IsOkAndHolds(OutputFormat::kPprof));
  EXPECT_THAT(ParseOutputFormat("png"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace flamekit
