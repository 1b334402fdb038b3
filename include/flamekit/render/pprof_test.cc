// SPDX-License-Identifier: Apache-2.0
// Tests of the pprof writer: the encoding itself, and the real consumer,
// Debian's `go tool pprof`, reading what we write.

#include "flamekit/render/pprof.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "flamekit/render/render_test_util.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "zlib.h"

namespace flamekit {
namespace {

using ::testing::HasSubstr;

TEST(ProtoWriterTest, EncodesVarintsAndLengthDelimitedFields) {
  pprof_internal::ProtoWriter w;
  w.Varint(1, 150);  // the protobuf docs' example: 08 96 01
  w.Bytes(2, "testing");
  w.PackedVarints(3, {3, 270});
  EXPECT_EQ(w.data(), std::string("\x08\x96\x01"
                                  "\x12\x07testing"
                                  "\x1a\x03\x03\x8e\x02",
                                  17));
}

TEST(PprofTest, GzipRoundTripsThroughZlib) {
  std::string proto = EncodePprofProto(render_testing::SmallProfile());
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string gz, GzipCompress(proto));
  std::string back(proto.size() + 16, '\0');
  z_stream s = {};
  ASSERT_EQ(inflateInit2(&s, 15 + 16), Z_OK);
  s.next_in = reinterpret_cast<Bytef*>(gz.data());
  s.avail_in = static_cast<uInt>(gz.size());
  s.next_out = reinterpret_cast<Bytef*>(back.data());
  s.avail_out = static_cast<uInt>(back.size());
  ASSERT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END);
  back.resize(s.total_out);
  inflateEnd(&s);
  EXPECT_EQ(back, proto);
}

class GoPprofTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/go", X_OK) != 0) {
      GTEST_SKIP() << "/usr/bin/go missing: install Debian's golang-go to check pprof output";
    }
    const char* tmp = getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/go_pprof_test";
    mkdir(dir_.c_str(), 0755);
  }

  // Runs `go tool pprof ARGS FILE` with a private HOME/GOCACHE/GOPATH.
  std::string Pprof(const std::string& args, const Profile& profile) {
    std::string path = dir_ + "/profile.pb.gz";
    absl::StatusOr<std::string> gz = RenderPprof(profile);
    EXPECT_TRUE(gz.ok()) << gz.status();
    std::ofstream(path, std::ios::binary) << *gz;
    std::string env = "HOME=" + dir_ + " GOCACHE=" + dir_ + "/gocache GOPATH=" + dir_ +
                      "/gopath GOTOOLCHAIN=local GOFLAGS= GOPROXY=off PPROF_TMPDIR=" + dir_ +
                      " PPROF_BINARY_PATH=" + dir_ + "/nobinaries";
    std::string command = "env " + env + " /usr/bin/go tool pprof " + args + " " + path +
                          " 2>&1 </dev/null";
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    int status = pclose(pipe);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command << "\n" << out;
    return out;
  }

  // From `-top` output: function name -> (flat, cum) as printed.
  static std::map<std::string, std::pair<std::string, std::string>> ParseTop(
      const std::string& text) {
    std::map<std::string, std::pair<std::string, std::string>> rows;
    std::regex row(R"(^\s*(\S+)\s+[\d.]+%\s+[\d.]+%\s+(\S+)\s+[\d.]+%\s+(.+?)\s*$)");
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_match(line, m, row)) rows[m[3]] = {m[1], m[2]};
    }
    return rows;
  }

  std::string dir_;
};

TEST_F(GoPprofTest, TopListsTheHottestFunctionsWithTheirCounts) {
  std::string out = Pprof("-top -sample_index=samples", render_testing::SmallProfile());
  auto rows = ParseTop(out);
  ASSERT_FALSE(rows.empty()) << out;
  // pprof shortens C++ names (drops arguments and template arguments).
  EXPECT_EQ(rows["JsonParser::Parse"], std::make_pair(std::string("700"), std::string("700")))
      << out;
  EXPECT_EQ(rows["std::vector::push_back"].first, "300") << out;
  EXPECT_EQ(rows["deflate"].first, "250") << out;
  EXPECT_EQ(rows["do_epoll_wait"].first, "200") << out;
  EXPECT_EQ(rows["Server::HandleRequest"].second, "1400") << out;
  EXPECT_EQ(rows["main"].second, "2000") << out;
  // The hottest function is listed first.
  std::regex first_row(R"(flat%[^\n]*\n\s*700\s)");
  EXPECT_TRUE(std::regex_search(out, first_row)) << out;
}

TEST_F(GoPprofTest, CpuTimeComesFromTheInterval) {
  std::string out = Pprof("-top -sample_index=cpu", render_testing::SmallProfile());
  EXPECT_THAT(out, HasSubstr("Type: cpu"));
  EXPECT_THAT(out, HasSubstr("Duration: 2.50s"));
  auto rows = ParseTop(out);
  // 700 samples at 10 ms.
  EXPECT_EQ(rows["JsonParser::Parse"].first, "7s") << out;
}

TEST_F(GoPprofTest, ThreadRootsBecomeLabels) {
  std::string out = Pprof("-tags -sample_index=samples", render_testing::ThreadProfile());
  EXPECT_THAT(out, HasSubstr("thread:"));
  EXPECT_THAT(out, HasSubstr("worker-1 tid=101"));
  EXPECT_THAT(out, HasSubstr("worker-2 tid=102"));
  std::string top = Pprof("-top -sample_index=samples", render_testing::ThreadProfile());
  EXPECT_THAT(top, HasSubstr("File: checkout-service"));
  auto rows = ParseTop(top);
  EXPECT_EQ(rows["Crunch(int)"].first, "1000") << top;
  // Thread frames are labels, not functions.
  EXPECT_EQ(rows.count("worker-1 tid=101"), 0u) << top;
}

TEST_F(GoPprofTest, MappingsNameTheObjectFiles) {
  std::string out = Pprof("-raw", render_testing::SmallProfile());
  EXPECT_THAT(out, HasSubstr("/usr/bin/checkout-service"));
  EXPECT_THAT(out, HasSubstr("[kernel.kallsyms]"));
  EXPECT_THAT(out, HasSubstr("libfoo.so"));
}

TEST_F(GoPprofTest, HostileAndEmptyProfilesOpen) {
  std::string out = Pprof("-top -sample_index=samples", render_testing::HostileProfile());
  EXPECT_THAT(out, HasSubstr("</script>"));
  out = Pprof("-top", Profile());
  EXPECT_THAT(out, HasSubstr("Showing nodes accounting for 0"));
}

// A hook event's profile: bytes (or ns) per stack, and the events behind
// them (Profile::has_events()): 300 blocks of 4 KiB from Parse, 1000 of
// 64 bytes from Load.
Profile HookProfile(const std::string& event, bool with_events) {
  Profile p;
  p.metadata().event = event;
  p.metadata().command = "/usr/bin/server";
  const FrameId main_id = p.InternFrame("main");
  const FrameId parse = p.InternFrame("Parse");
  const FrameId load = p.InternFrame("Load");
  const FrameId parse_stack[] = {main_id, parse};
  const FrameId load_stack[] = {main_id, load};
  if (with_events) {
    p.AddStack(parse_stack, 300 * 4096, 300);
    p.AddStack(load_stack, 1000 * 64, 1000);
  } else {
    p.AddStack(parse_stack, 300 * 4096);
    p.AddStack(load_stack, 1000 * 64);
  }
  return p;
}

// The sample types line of `go tool pprof -raw` ("alloc_space/bytes[dflt] ...").
std::string SampleTypes(const std::string& raw) {
  std::istringstream in(raw);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "Samples:" && std::getline(in, line)) return line;
  }
  return "";
}

TEST_F(GoPprofTest, AllocHasBytesAndObjectsBytesTheDefault) {
  const Profile profile = HookProfile("alloc", true);
  EXPECT_EQ(SampleTypes(Pprof("-raw", profile)), "alloc_space/bytes[dflt] alloc_objects/count");
  std::string top = Pprof("-top -sample_index=alloc_objects", profile);
  EXPECT_THAT(top, HasSubstr("Type: alloc_objects"));
  auto rows = ParseTop(top);
  EXPECT_EQ(rows["Parse"].first, "300") << top;
  EXPECT_EQ(rows["Load"].first, "1000") << top;
  EXPECT_EQ(rows["main"].second, "1300") << top;
  // No -sample_index: the bytes (300 x 4 KiB, which pprof prints as 1200kB).
  top = Pprof("-top", profile);
  EXPECT_THAT(top, HasSubstr("Type: alloc_space"));
  rows = ParseTop(top);
  EXPECT_EQ(rows["Parse"].first, "1200kB") << top;
  EXPECT_EQ(rows["Load"].first, "62.50kB") << top;
}

TEST_F(GoPprofTest, LiveAndLockNameTheirTypesAsGoDoes) {
  EXPECT_EQ(SampleTypes(Pprof("-raw", HookProfile("live", true))),
            "inuse_space/bytes[dflt] inuse_objects/count");
  EXPECT_EQ(SampleTypes(Pprof("-raw", HookProfile("lock", true))),
            "delay/nanoseconds[dflt] contentions/count");
  std::string top = Pprof("-top -sample_index=inuse_objects", HookProfile("live", true));
  EXPECT_EQ(ParseTop(top)["Load"].first, "1000") << top;
}

TEST_F(GoPprofTest, WithoutEventsOneTypeAndCpuKeepsItsOwn) {
  // An alloc profile without the events column (e.g. read from collapsed
  // text): the bytes only, so -sample_index=alloc_objects is refused.
  EXPECT_EQ(SampleTypes(Pprof("-raw", HookProfile("alloc", false))), "alloc_space/bytes[dflt]");
  // A cpu profile is not touched: samples and cpu time, no objects, even
  // with an events column (which only hook events write).
  EXPECT_EQ(SampleTypes(Pprof("-raw", render_testing::SmallProfile())),
            "samples/count cpu/nanoseconds[dflt]");
  Profile cpu = render_testing::SmallProfile();
  cpu.EnableEvents();
  EXPECT_EQ(SampleTypes(Pprof("-raw", cpu)), "samples/count cpu/nanoseconds[dflt]");
}

}  // namespace
}  // namespace flamekit
