// SPDX-License-Identifier: Apache-2.0
// The readers of every format, on what flamekit's own writers produce (HTML,
// SVG, pprof, collapsed: written, read back, compared exactly), on what
// other tools write (a Go test's -cpuprofile, `perf script` of a real perf
// record, both made here; skipped with the reason when the tool is
// missing), and on bad and hostile input (bounds stated in read_profile.h).
// About 3-6 s, most of it `go test` and `perf record`.

#include "flamekit/profile/read_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/flame_graph.h"
#include "flamekit/render/pprof.h"
#include "flamekit/render/svg.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

// Every stack as "name/kind;name/kind COUNT", sorted: equal exactly when
// the two profiles hold the same stacks, names, kinds and counts.
std::vector<std::string> Canonical(const Profile& p) {
  std::vector<std::string> out;
  for (size_t i = 0; i < p.stack_count(); ++i) {
    std::string line;
    for (FrameId id : p.stack(i)) {
      absl::StrAppend(&line, absl::CHexEscape(p.frame(id).name), "/",
                      FrameKindName(p.frame(id).kind), ";");
    }
    absl::StrAppend(&line, " ", p.stack_count_at(i));
    out.push_back(std::move(line));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A profile with every frame kind pprof can carry and names that test the
// escaping of each format (markup, quotes, spaces, UTF-8, '%'); pages also
// get bytes no other format can hold.
Profile Nasty(bool with_odd_bytes) {
  Profile p;
  p.metadata().event = "page-faults";
  p.metadata().title = "nasty <title> & \"quotes\"";
  p.metadata().interval_events = 7;
  p.metadata().engine = "perf page-faults";
  p.metadata().start_time = absl::FromUnixSeconds(1700000000);
  p.metadata().end_time = absl::FromUnixSeconds(1700000030);
  p.metadata().pid = 4242;
  p.metadata().command = "/usr/bin/server --port 80";
  FrameId main = p.InternFrame("main");
  FrameId lib = p.InternFrame("memcpy", FrameKind::kLibrary);
  FrameId kernel = p.InternFrame("do_syscall_64", FrameKind::kKernel);
  FrameId jit = p.InternFrame("Interpreted::run", FrameKind::kJit);
  FrameId unknown = p.InternFrame("libc.so.6+0x27d8a", FrameKind::kUnknown);
  FrameId unknown2 = p.InternFrame("[unknown]", FrameKind::kUnknown);
  FrameId truncated = p.InternFrame(kTruncatedFrameName, FrameKind::kTruncated);
  FrameId script = p.InternFrame("</script><script>alert(1)</script> 100% & ]]> --");
  FrameId cpp = p.InternFrame("std::vector<int, std::allocator<int> >::push_back(int const&)");
  FrameId utf8 = p.InternFrame("f\xC3\xA9t\xE2\x82\xAC");
  p.AddStack({main, cpp, lib, kernel}, 5);
  p.AddStack({main, jit, unknown}, 3);
  p.AddStack({truncated, unknown2}, 2);
  p.AddStack({main, script, utf8}, 11);
  p.AddThreadStack("worker tid=17", std::vector<FrameId>{main, cpp}, 4);
  // Two frames inlined into their caller (one pprof location, three lines).
  FrameId parse = p.InternFrame("Parser::ParseValue()");
  FrameId next = p.InternFrame("Lexer::Next()", FrameKind::kInlined);
  FrameId peek = p.InternFrame("Lexer::Peek()", FrameKind::kInlined);
  p.AddStack({main, parse, next, peek}, 6);
  p.AddStack({main, parse, next}, 2);
  if (with_odd_bytes) {
    FrameId odd = p.InternFrame(std::string("bad\xFF\x01utf8;semi\nline", 20));
    p.AddStack({main, next, odd}, 1);
  }
  return p;
}

absl::StatusOr<Profile> Read(absl::string_view bytes, absl::string_view name,
                             ProfileReadInfo* info = nullptr,
                             const ProfileReadOptions& options = {}) {
  return ParseProfileBytes(bytes, name, options, info);
}

TEST(ReadProfileTest, HtmlPageRoundTripsExactly) {
  const Profile original = Nasty(/*with_odd_bytes=*/true);
  RenderOptions options;
  options.minwidth = 50;  // the drawing is pruned; the embedded stacks are not
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderFlameGraphHtml(original, options));
  ProfileReadInfo info;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile back, Read(html, "page.html", &info));
  EXPECT_EQ(info.format, "html");
  EXPECT_EQ(Canonical(back), Canonical(original));
  EXPECT_EQ(back.total_samples(), original.total_samples());
  const ProfileMetadata& m = back.metadata();
  EXPECT_EQ(m.event, "page-faults");
  EXPECT_EQ(m.title, original.metadata().title);
  EXPECT_EQ(m.interval_events, 7u);
  EXPECT_EQ(m.engine, "perf page-faults");
  EXPECT_EQ(m.start_time, original.metadata().start_time);
  EXPECT_EQ(m.end_time, original.metadata().end_time);
  EXPECT_EQ(m.pid, 4242);
  EXPECT_EQ(m.command, original.metadata().command);
  // Nothing in a name can end the block early or become markup.
  EXPECT_THAT(html, ::testing::Not(HasSubstr("alert(1)</script>")));
}

TEST(ReadProfileTest, SvgRoundTripsExactly) {
  const Profile original = Nasty(true);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg, RenderFlameGraphSvg(original, {}));
  ProfileReadInfo info;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile back, Read(svg, "graph.svg", &info));
  EXPECT_EQ(info.format, "svg");
  EXPECT_EQ(Canonical(back), Canonical(original));
  EXPECT_EQ(back.metadata().event, "page-faults");
}

TEST(ReadProfileTest, PprofRoundTripsGzippedAndRaw) {
  const Profile original = Nasty(/*with_odd_bytes=*/false);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string gz, RenderPprof(original));
  for (const std::string& bytes : {gz, EncodePprofProto(original)}) {
    ProfileReadInfo info;
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile back, Read(bytes, "cpu.pb.gz", &info));
    EXPECT_EQ(info.format, "pprof");
    EXPECT_EQ(Canonical(back), Canonical(original));
    EXPECT_EQ(back.metadata().event, "page-faults");
    EXPECT_EQ(back.metadata().interval_events, 7u);
    EXPECT_EQ(back.metadata().engine, "perf page-faults");
    EXPECT_EQ(back.metadata().start_time, original.metadata().start_time);
    EXPECT_EQ(back.metadata().end_time, original.metadata().end_time);
    // "samples" (a count) is kept by default and the note says so.
    ASSERT_EQ(info.notes.size(), 1u);
    EXPECT_THAT(info.notes[0], HasSubstr("kept sample type samples (count)"));
    EXPECT_THAT(info.notes[0], HasSubstr("page-faults (events)"));
  }
  // The other sample type: counts times the period.
  ProfileReadOptions options;
  options.sample_type = "page-faults";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile events, Read(gz, "cpu.pb.gz", nullptr, options));
  EXPECT_EQ(events.total_samples(), original.total_samples() * 7);
  options.sample_type = "alloc_space";
  EXPECT_THAT(Read(gz, "cpu.pb.gz", nullptr, options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("samples (count)")));
}

// An alloc profile's bytes and allocation counts (render/pprof.h writes
// alloc_space and alloc_objects) come back as the weight and the events
// column; choosing alloc_objects makes the counts the weight.
TEST(ReadProfileTest, PprofKeepsAllocationCountsBesideTheBytes) {
  Profile original;
  original.metadata().event = "alloc";
  const FrameId m = original.InternFrame("main");
  const FrameId a[] = {m, original.InternFrame("Parse")};
  const FrameId b[] = {m, original.InternFrame("Load")};
  original.AddStack(a, 300 * 4096, 300);
  original.AddStack(b, 1000 * 64, 1000);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string gz, RenderPprof(original));
  ProfileReadInfo info;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile back, Read(gz, "alloc.pb.gz", &info));
  EXPECT_EQ(back.metadata().event, "alloc");
  ASSERT_TRUE(back.has_events());
  EXPECT_EQ(back.total_samples(), 300u * 4096 + 1000 * 64);
  EXPECT_EQ(back.total_events(), 1300u);
  for (size_t i = 0; i < back.stack_count(); ++i) {
    EXPECT_EQ(back.stack_count_at(i), back.stack_events_at(i) == 300 ? 300u * 4096 : 64000u);
  }
  // Written again, the counts are still there.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string again, RenderPprof(back));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile twice, Read(again, "again.pb.gz", nullptr));
  EXPECT_EQ(twice.total_events(), 1300u);
  ProfileReadOptions options;
  options.sample_type = "alloc_objects";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile objects, Read(gz, "alloc.pb.gz", nullptr, options));
  EXPECT_EQ(objects.total_samples(), 1300u);
  EXPECT_FALSE(objects.has_events());
}

TEST(ReadProfileTest, CollapsedAndGzippedCollapsedRoundTrip) {
  const Profile original = Nasty(false);
  const std::string text = ToCollapsedString(original);
  ProfileReadInfo info;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile back, Read(text, "p.txt", &info));
  EXPECT_EQ(info.format, "collapsed");
  EXPECT_EQ(ToCollapsedString(back), text);
  EXPECT_EQ(back.metadata().event, "cpu");  // collapsed text cannot say
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string gz, GzipCompress(text));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile unzipped, Read(gz, "p.txt.gz", &info));
  EXPECT_EQ(info.format, "collapsed (gzip)");
  EXPECT_EQ(ToCollapsedString(unzipped), text);
}

TEST(ReadProfileTest, FilesAndStdinAreToldByContentNotName) {
  const std::string dir = ::testing::TempDir();
  const Profile original = Nasty(false);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string gz, RenderPprof(original));
  // A pprof named .txt and a page named .pb.gz still read as what they are.
  const std::string pprof_path = dir + "/really_pprof.txt";
  std::ofstream(pprof_path, std::ios::binary) << gz;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderFlameGraphHtml(original, {}));
  const std::string html_path = dir + "/really_html.pb.gz";
  std::ofstream(html_path, std::ios::binary) << html;
  ProfileReadInfo info;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile a, ReadProfileFile(pprof_path, {}, &info));
  EXPECT_EQ(info.format, "pprof");
  EXPECT_EQ(Canonical(a), Canonical(original));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile b, ReadProfileFile(html_path, {}, &info));
  EXPECT_EQ(info.format, "html");
  EXPECT_EQ(Canonical(b), Canonical(original));
  // A page larger than the 64 KiB head, through a pipe (read in pieces).
  Profile big;
  FrameId root = big.InternFrame("root");
  for (int i = 0; i < 5000; ++i) {
    big.AddStack({root, big.InternFrame(absl::StrCat("function_number_", i))}, 1 + i % 3);
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string big_html, RenderFlameGraphHtml(big, {}));
  ASSERT_GT(big_html.size(), size_t{64} << 10);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    size_t done = 0;
    while (done < big_html.size()) {
      ssize_t n = write(fds[1], big_html.data() + done, std::min<size_t>(4096, big_html.size() - done));
      if (n <= 0) _exit(1);
      done += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  absl::StatusOr<Profile> piped = ReadProfileFd(fds[0], "<pipe>", {}, &info);
  close(fds[0]);
  waitpid(child, nullptr, 0);
  ASSERT_THAT(piped, IsOk());
  EXPECT_EQ(Canonical(*piped), Canonical(big));
}

TEST(ReadProfileTest, PagesWithoutStacksSayWhatToDo) {
  const Profile original = Nasty(false);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderFlameGraphHtml(original, {}));
  // An older page: the drawing data but no embedded stacks.
  size_t at = html.find("<script id=\"fk-stacks\"");
  ASSERT_NE(at, std::string::npos);
  std::string old = html.substr(0, at) + html.substr(html.find("</script>", at) + 9);
  EXPECT_THAT(Read(old, "old.html"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("did not embed its stacks")));
  EXPECT_THAT(Read("<html><body>hello</body></html>", "other.html"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("without flamekit's embedded stacks")));
  // Cut short inside the block.
  EXPECT_THAT(Read(html.substr(0, html.find("\ns ") + 3), "cut.html"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cut short")));
  // A damaged block names its line.
  std::string damaged = html;
  damaged.replace(damaged.find("\nf "), 3, "\nf 9");
  EXPECT_THAT(Read(damaged, "bad.html"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("embedded stacks, line")));
}

TEST(ReadProfileTest, HostileCompressedAndProtobufInputIsBounded) {
  // A gzip bomb: 16 MiB of zeros (16 KiB compressed) against a 1 MiB bound
  // stops after about 1 MiB of output.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string bomb, GzipCompress(std::string(16 << 20, '\0')));
  ProfileReadOptions options;
  options.max_decompressed_bytes = 1 << 20;
  const absl::Time start = absl::Now();
  EXPECT_THAT(Read(bomb, "bomb.pb.gz", nullptr, options),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("gzip bomb")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // Whole-file formats stop reading past max_input_bytes.
  const std::string path = ::testing::TempDir() + "/large.html";
  std::ofstream(path, std::ios::binary) << "<html>" << std::string(3 << 20, 'x');
  options.max_input_bytes = 1 << 20;
  EXPECT_THAT(ReadProfileFile(path, options),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("larger than 1048576")));
  // Truncated gzip, damaged protobuf, undefined locations, negative values.
  const Profile original = Nasty(false);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string gz, RenderPprof(original));
  EXPECT_THAT(Read(gz.substr(0, gz.size() / 2), "cut.pb.gz"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ends early")));
  std::string raw = EncodePprofProto(original);
  EXPECT_THAT(Read(raw.substr(0, raw.size() - 7), "cut.pb"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid pprof")));
  pprof_internal::ProtoWriter w;
  pprof_internal::ProtoWriter type;
  type.Varint(1, 1);
  type.Varint(2, 2);
  w.Message(1, type);
  pprof_internal::ProtoWriter sample;
  sample.PackedVarints(1, {99});
  sample.PackedVarints(2, {5});
  w.Message(2, sample);
  for (const char* s : {"", "samples", "count"}) w.Bytes(6, s);
  EXPECT_THAT(Read(w.data(), "undefined.pb"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("location 99")));
  pprof_internal::ProtoWriter negative;
  negative.Message(1, type);
  pprof_internal::ProtoWriter location;
  location.Varint(1, 1);
  negative.Message(4, location);
  pprof_internal::ProtoWriter neg_sample;
  neg_sample.PackedVarints(1, {1});
  neg_sample.PackedVarints(2, {static_cast<uint64_t>(-3)});
  negative.Message(2, neg_sample);
  for (const char* s : {"", "samples", "count"}) negative.Bytes(6, s);
  EXPECT_THAT(Read(negative.data(), "negative.pb"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative sample values")));
  // Binary junk that is not pprof ends in collapsed text's binary message.
  EXPECT_THAT(Read(std::string("\x7f\x45LF\x02\x01\x01\0\0\0", 10), "a.out"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("binary data")));
}

// Runs `command` with /bin/sh; true when it exits 0.
bool Shell(const std::string& command) {
  int rc = system(command.c_str());
  return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ReadProfileTest, ReadsTheCpuProfileOfAGoTest) {
  if (!Shell("command -v go >/dev/null 2>&1")) {
    GTEST_SKIP() << "no `go` on PATH (Debian package golang-go, tools/setup.sh installs it)";
  }
  const std::string dir = ::testing::TempDir() + "/gospin";
  ASSERT_TRUE(Shell("mkdir -p " + dir));
  std::ofstream(dir + "/go.mod") << "module gospin\n\ngo 1.19\n";
  std::ofstream(dir + "/spin_test.go") << R"(package gospin

import (
	"syscall"
	"testing"
)

//go:noinline
func spinHot(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i * i % 7
	}
	return s
}

// Spins until the process has used 0.5 s of CPU (not wall time: the
// machine may be busy).
func TestSpin(t *testing.T) {
	s := 0
	for {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		if ru.Utime.Sec*1000000+ru.Utime.Usec > 500000 {
			break
		}
		s += spinHot(100000)
	}
	if s == 42 {
		t.Log(s)
	}
}
)";
  const std::string env = absl::StrCat("cd ", dir, " && HOME=", dir, " GOCACHE=", dir,
                                       "/cache GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local ");
  ASSERT_TRUE(Shell(env + "go test -count=1 -cpuprofile cpu.pprof . >go.log 2>&1"))
      << Slurp(dir + "/go.log");
  ProfileReadInfo info;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p, ReadProfileFile(dir + "/cpu.pprof", {}, &info));
  EXPECT_EQ(info.format, "pprof");
  EXPECT_EQ(p.metadata().event, "cpu");  // as flamekit's own CPU profiles
  EXPECT_EQ(p.metadata().interval, absl::Milliseconds(10));  // Go's 100 Hz
  // Go's 100 Hz over 0.5 s of CPU: about 50 samples, most in spinHot under
  // TestSpin.
  EXPECT_GT(p.total_samples(), 20u);
  uint64_t hot = 0;
  for (size_t i = 0; i < p.stack_count(); ++i) {
    std::vector<std::string> names;
    for (FrameId id : p.stack(i)) names.push_back(p.frame(id).name);
    std::string joined = absl::StrJoin(names, ";");
    if (joined.find("gospin.TestSpin;gospin.spinHot") != std::string::npos) {
      hot += p.stack_count_at(i);
    }
  }
  EXPECT_GT(hot * 2, p.total_samples()) << ToCollapsedString(p);
  // The CPU nanoseconds instead of the sample count.
  ASSERT_EQ(info.notes.size(), 1u);
  EXPECT_THAT(info.notes[0], HasSubstr("cpu (nanoseconds)"));
  ProfileReadOptions options;
  options.sample_type = "cpu";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile ns, ReadProfileFile(dir + "/cpu.pprof", options));
  EXPECT_EQ(ns.total_samples(), p.total_samples() * 10000000u);
}

TEST(ReadProfileTest, ReadsPerfScriptOfARealPerfRecordWithAndWithoutCallChains) {
  if (!Shell("command -v perf >/dev/null 2>&1")) {
    GTEST_SKIP() << "no `perf` on PATH (Debian package linux-perf)";
  }
  const std::string dir = ::testing::TempDir();
  const std::string workload =
      "sh -c 'i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done'";
  for (bool callchains : {true, false}) {
    const std::string data = absl::StrCat(dir, "/perf", callchains, ".data");
    const std::string text = absl::StrCat(dir, "/perf", callchains, ".txt");
    if (!Shell(absl::StrCat("perf record -q -e cpu-clock:u -F 999 ", callchains ? "-g " : "",
                            "-o ", data, " -- ", workload, " >/dev/null 2>&1"))) {
      GTEST_SKIP() << "perf record failed here (perf_event_paranoid, or no perf events)";
    }
    ASSERT_TRUE(Shell(absl::StrCat("perf script -i ", data, " >", text, " 2>/dev/null")));
    const std::string script = Slurp(text);
    // Samples as perf counts them: one header line each.
    size_t headers = 0;
    std::istringstream lines(script);
    for (std::string line; std::getline(lines, line);) headers += IsPerfScriptHeader(line);
    ASSERT_GT(headers, 5u) << script.substr(0, 2000);
    ProfileReadInfo info;
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p, ReadProfileFile(text, {}, &info));
    EXPECT_EQ(info.format, "perf script");
    EXPECT_EQ(p.total_samples(), headers);
    EXPECT_EQ(p.metadata().event, "cpu");
    size_t deepest = 0;
    for (size_t i = 0; i < p.stack_count(); ++i) deepest = std::max(deepest, p.stack(i).size());
    if (callchains) {
      EXPECT_GT(deepest, 1u) << ToCollapsedString(p);
    } else {
      EXPECT_EQ(deepest, 1u) << ToCollapsedString(p);
    }
  }
}

TEST(ReadProfileTest, PerfScriptErrorsNameTheLine) {
  const std::string good =
      "prog 12 1.000001: 250000 cpu-clock:u: \n\t 4011a2 spin+0x12 (/tmp/prog)\n\n";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p, Read(good, "perf.txt"));
  EXPECT_EQ(ToCollapsedString(p), "spin 1\n");
  EXPECT_THAT(Read(good + "prog 12 1.000002: 1 page-faults:u: \n\t 1 f (/x)\n", "two.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("two events")));
  EXPECT_THAT(Read(good + "prog 12 1.000003: 250000 cpu-clock:u: \n\tgarbage here\n", "bad.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.txt:5: expected a frame")));
  // A line past max_line_bytes (16 MiB by default; 64 KiB here) is refused.
  ProfileReadOptions options;
  options.max_line_bytes = 64 << 10;
  EXPECT_THAT(Read(good + "\t" + std::string(100 << 10, 'f'), "long.txt", nullptr, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 65536")));
}

}  // namespace
}  // namespace flamekit
