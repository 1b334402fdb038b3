// SPDX-License-Identifier: Apache-2.0
#include "flamekit/profile/collapsed_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kDir[] = "testdata/collapsed/";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> SortedLines(absl::string_view text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::string TempDir() {
  const char* d = getenv("TEST_TMPDIR");
  return d ? d : "/tmp";
}

// Parses `text`, writes it back and checks every line comes back unchanged
// (the input must already be in canonical form: one space before counts,
// no duplicate stacks).
void ExpectRoundTrip(absl::string_view text) {
  absl::StatusOr<Profile> p = ParseCollapsed(text, "roundtrip.txt");
  ASSERT_THAT(p, IsOk()) << text;
  EXPECT_EQ(SortedLines(ToCollapsedString(*p)), SortedLines(text)) << text;
  // And the writer's output is already sorted.
  std::string out = ToCollapsedString(*p);
  EXPECT_EQ(ToCollapsedString(*ParseCollapsed(out)), out);
}

TEST(CollapsedIoTest, RoundTripsRealFilesExactly) {
  for (const char* name : {"server.txt", "threads.txt", "before.txt", "after.txt"}) {
    SCOPED_TRACE(name);
    std::string text = ReadAll(std::string(kDir) + name);
    ASSERT_FALSE(text.empty());
    ExpectRoundTrip(text);
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p,
                                  ReadCollapsedFile(std::string(kDir) + name));
    uint64_t total = 0;
    for (const std::string& line : SortedLines(text)) {
      total += std::stoull(line.substr(line.rfind(' ') + 1));
    }
    EXPECT_EQ(p.total_samples(), total);
    EXPECT_EQ(p.stack_count(), SortedLines(text).size());
    EXPECT_EQ(p.metadata().engine, "collapsed text");
    EXPECT_EQ(p.metadata().title, name);
  }
}

TEST(CollapsedIoTest, RoundTripsTrickyCppNames) {
  ExpectRoundTrip(
      "main;std::vector<int, std::allocator<int> >::push_back(int const&) 1\n"
      "main;(anonymous namespace)::Foo::operator()(int) const 2\n"
      "main;Foo::Bar()::{lambda(int)#3}::operator()(int) const;memcpy_[k] 3\n"
      "main;operator new(unsigned long);operator<< 4\n"
      "main;a  b   c;  leading 5\n"
      "main;libfoo.so+0x1a2b;libbar.so.6+0xffff;[unknown] 6\n"
      "main;jitted_[j];inlined_[i];[truncated] 7\n"
      "[worker tid=7];main 8\n"
      "main;[not a thread tid=7] 9\n"
      "x_[k]_[i] 10\n"
      "main;\xc3\xa9t\xc3\xa9 11\n");
}

TEST(CollapsedIoTest, FrameKindsFollowTheDocumentedRules) {
  struct Case {
    const char* text;
    bool is_root;
    const char* name;
    FrameKind kind;
  };
  const Case cases[] = {
      {"do_syscall_64_[k]", false, "do_syscall_64", FrameKind::kKernel},
      {"Interpreter::run_[j]", false, "Interpreter::run", FrameKind::kJit},
      {"Lexer::Next()_[i]", false, "Lexer::Next()", FrameKind::kInlined},
      {"odd_[x]", false, "odd_[x]", FrameKind::kUser},
      {"_[k]", false, "_[k]", FrameKind::kUser},
      {"[truncated]", false, "[truncated]", FrameKind::kTruncated},
      {"[unknown]", true, "[unknown]", FrameKind::kUnknown},
      {"libfoo.so+0x1a2b", false, "libfoo.so+0x1a2b", FrameKind::kUnknown},
      {"libc.so.6+0x27d8a", false, "libc.so.6+0x27d8a", FrameKind::kUnknown},
      {"/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1+0x7d0", false,
       "/usr/lib/x86_64-linux-gnu/liblzma.so.5.4.1+0x7d0", FrameKind::kUnknown},
      {"operator+(int)+0x10", false, "operator+(int)+0x10", FrameKind::kUser},
      {"foo+0x", false, "foo+0x", FrameKind::kUser},
      {"[worker-1 tid=4243]", true, "worker-1 tid=4243", FrameKind::kThread},
      {"[tid=42]", true, "tid=42", FrameKind::kThread},
      {"[worker-1 tid=4243]", false, "[worker-1 tid=4243]", FrameKind::kUser},
      {"[worker-1 xtid=4243]", true, "[worker-1 xtid=4243]", FrameKind::kUser},
      {"[vdso]", true, "[vdso]", FrameKind::kUser},
      {"main", true, "main", FrameKind::kUser},
  };
  for (const Case& c : cases) {
    auto [name, kind] = ParseCollapsedFrame(c.text, c.is_root);
    EXPECT_EQ(name, c.name) << c.text;
    EXPECT_EQ(kind, c.kind) << c.text << " -> " << FrameKindName(kind);
  }
}

TEST(CollapsedIoTest, ReadsCrlfTrailingBlanksAndBlankLines) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p,
                                ReadCollapsedFile(std::string(kDir) + "crlf.txt"));
  EXPECT_EQ(ToCollapsedString(p),
            "main;a b c;d e 2\n"
            "main;foo;bar 3\n"
            "main;foo;baz 4\n"
            "main;operator() 7\n");
}

TEST(CollapsedIoTest, SumsRepeatedStacksAndKeepsZeroCountLinesValid) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Profile p, ParseCollapsed("a;b 1\na;c 0\na;b 2\n\xEF\xBB\xBFx 1\n"));
  // A BOM starting any line is dropped (two Windows files joined by cat);
  // one inside a line is a frame's bytes.
  EXPECT_EQ(ToCollapsedString(p), "a;b 3\nx 1\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile joined,
                                ParseCollapsed("a;b 1\n\xEF\xBB\xBF" "a;b 2\nc;\xEF\xBB\xBF" "d 1\n"));
  EXPECT_EQ(ToCollapsedString(joined), "a;b 3\nc;\xEF\xBB\xBF" "d 1\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile q, ParseCollapsed("\xEF\xBB\xBF" "a;b 1\n"));
  EXPECT_EQ(ToCollapsedString(q), "a;b 1\n");
}

TEST(CollapsedIoTest, CountsUpToUint64MaxAndSumsPastItAreAnError) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p, ParseCollapsed("a 18446744073709551615\n"));
  EXPECT_EQ(ToCollapsedString(p), "a 18446744073709551615\n");
  EXPECT_EQ(p.total_samples(), UINT64_MAX);
  // A total past 2^64 - 1 would saturate and show every share wrong
  // (issue 21): the line that overflows it is named.
  EXPECT_THAT(ParseCollapsed("a 18446744073709551615\nb 1\na 5\n", "sum.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("sum.txt:2: the sample counts add up to more than 2^64 - 1")));
  EXPECT_THAT(ParseCollapsed("a 18446744073709551616\n", "big.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("big.txt:1: sample count too large")));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile q, ParseCollapsed("a 00000000000000000000000001\n"));
  EXPECT_EQ(q.total_samples(), 1u);
}

TEST(CollapsedIoTest, SharedPrefixCacheNeverConfusesNeighbours) {
  // Lines chosen so that byte prefixes are shared across frame boundaries.
  const char* text =
      "a;b 1\n"
      "a;bc 2\n"
      "a;b;c 4\n"
      "ab;c 8\n"
      "ab;c 16\n"
      "ab 32\n"
      "ab;c;d_[k] 64\n"
      "ab;c;d 128\n"
      "[t tid=1];x 256\n"
      "[t tid=1];x;[t tid=1] 512\n";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p, ParseCollapsed(text));
  // Sorted by frame names: the thread root is named "t tid=1".
  EXPECT_EQ(ToCollapsedString(p),
            "a;b 1\n"
            "a;b;c 4\n"
            "a;bc 2\n"
            "ab 32\n"
            "ab;c 24\n"
            "ab;c;d 128\n"
            "ab;c;d_[k] 64\n"
            "[t tid=1];x 256\n"
            "[t tid=1];x;[t tid=1] 512\n");
  // The second "[t tid=1]" is not a root, so it is a different (user) frame.
  EXPECT_TRUE(p.FindFrame("t tid=1", FrameKind::kThread).has_value());
  EXPECT_TRUE(p.FindFrame("[t tid=1]", FrameKind::kUser).has_value());
}

TEST(CollapsedIoTest, BadLineNamesFileAndLine) {
  EXPECT_THAT(ReadCollapsedFile(std::string(kDir) + "bad_line.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("testdata/collapsed/bad_line.txt:3: expected "
                                 "'frames count'")));
}

TEST(CollapsedIoTest, MalformedLinesGiveClearErrors) {
  struct Case {
    std::string text;
    const char* message;
  };
  const Case cases[] = {
      {"main;foo\n", "in.txt:1: expected 'frames count'"},
      {"ok 1\nmain;foo 1.5\n", "in.txt:2: expected 'frames count'"},
      {"main;foo -3\n", "in.txt:1: expected 'frames count'"},
      {"main;foo 3x\n", "in.txt:1: expected 'frames count'"},
      {"main;foo3\n", "in.txt:1: expected 'frames count'"},
      {"42\n", "in.txt:1: expected 'frames count'"},
      {"   42\n", "no frames before the count"},
      {"main;;foo 1\n", "in.txt:1: empty frame name"},
      {";main 1\n", "empty frame name"},
      {"main; 1\n", "empty frame name"},
      {"a 1\n\n\nmain;foo 123456789012345678901\n",
       "in.txt:4: sample count too large"},
      {std::string("a 1\nmain\0foo 1\n", 15), "in.txt:2: binary data"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseCollapsed(c.text, "in.txt"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.text;
  }
}

TEST(CollapsedIoTest, LenientModeSkipsAndCountsBadLines) {
  CollapsedReadOptions options;
  options.lenient = true;
  CollapsedReadStats stats;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Profile p, ReadCollapsedFile(std::string(kDir) + "bad_line.txt", options, &stats));
  EXPECT_EQ(ToCollapsedString(p), "main;bar 2\nmain;foo 1\nmain;qux 4\n");
  EXPECT_EQ(stats.lines, 4u);
  EXPECT_EQ(stats.stack_lines, 3u);
  EXPECT_EQ(stats.skipped_lines, 1u);
  EXPECT_THAT(stats.first_error, HasSubstr("bad_line.txt:3:"));
}

TEST(CollapsedIoTest, EmptyAndBlankInputsAreErrors) {
  EXPECT_THAT(ReadCollapsedFile(std::string(kDir) + "empty.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty file")));
  EXPECT_THAT(ParseCollapsed(" \r\n\n\t\n", "blank.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("blank.txt: no stacks, only blank lines")));
  EXPECT_THAT(ParseCollapsed("a;b 0\nc 0\n", "zero.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("zero.txt: no samples: every stack has a count of 0")));
  CollapsedReadOptions lenient;
  lenient.lenient = true;
  EXPECT_THAT(ParseCollapsed("junk\nmore junk\n", "j.txt", lenient),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("j.txt: no valid lines (2 skipped; the first: j.txt:1:")));
}

TEST(CollapsedIoTest, ReadsAOneMegabyteLine) {
  // A deep stack of ~1 MB on one line is valid collapsed text.
  std::string line;
  int frames = 0;
  while (line.size() < (1 << 20)) {
    if (frames) line += ';';
    absl::StrAppend(&line, "namespace_", frames % 1000, "::Function", frames, "(int)");
    ++frames;
  }
  std::string text = absl::StrCat("main;x 1\n", line, " 5\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p, ParseCollapsed(text));
  ASSERT_EQ(p.stack_count(), 2u);
  EXPECT_EQ(p.stack(1).size(), static_cast<size_t>(frames));
  EXPECT_EQ(p.total_samples(), 6u);
  EXPECT_EQ(ToCollapsedString(p), absl::StrCat("main;x 1\n", line, " 5\n"));

  // The same line without a count is an error that names it, not a crash.
  EXPECT_THAT(ParseCollapsed(absl::StrCat("main;x 1\n", line, "\n"), "big.txt"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("big.txt:2: expected 'frames count'")));

  // Over the line limit: an error (or a skipped line when lenient), with
  // memory bounded by the limit, also when the line arrives in pieces.
  CollapsedReadOptions small;
  small.max_line_bytes = 4096;
  Profile q;
  CollapsedParser parser(&q, "long.txt", small);
  ASSERT_THAT(parser.Feed("a 1\n"), IsOk());
  absl::Status s;
  for (size_t i = 0; i < line.size() && s.ok(); i += 1000) {
    s = parser.Feed(absl::string_view(line).substr(i, 1000));
  }
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("long.txt:2: line longer than 4096 bytes")));

  small.lenient = true;
  CollapsedReadStats stats;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Profile r, ParseCollapsed(absl::StrCat("a 1\n", line, " 5\nb 2\n"), "long.txt",
                                small, &stats));
  EXPECT_EQ(ToCollapsedString(r), "a 1\nb 2\n");
  EXPECT_EQ(stats.skipped_lines, 1u);
  EXPECT_EQ(stats.lines, 3u);
}

TEST(CollapsedIoTest, BinaryGarbageIsAClearError) {
  std::mt19937 rng(1234);
  std::string garbage(64 * 1024, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  EXPECT_THAT(ParseCollapsed(garbage, "core.bin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("this is not collapsed text")));
  // Garbage with no NUL bytes and no newline: too long or malformed.
  for (char& c : garbage) c = static_cast<char>(0x80 | (rng() & 0x7f));
  EXPECT_THAT(ParseCollapsed(garbage, "blob.bin"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("blob.bin:1: expected 'frames count'")));
  CollapsedReadOptions lenient;
  lenient.lenient = true;
  for (char& c : garbage) c = static_cast<char>(rng());
  EXPECT_THAT(ParseCollapsed(garbage, "core.bin", lenient),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no valid lines")));
}

TEST(CollapsedIoTest, FeedingInTinyPiecesGivesTheSameProfile) {
  std::string text = ReadAll(std::string(kDir) + "server.txt");
  text += "last;line;without;newline 3";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile whole, ParseCollapsed(text));
  for (size_t piece : {1u, 2u, 7u, 64u}) {
    Profile p;
    CollapsedParser parser(&p, "pieces.txt");
    for (size_t i = 0; i < text.size(); i += piece) {
      ASSERT_THAT(parser.Feed(absl::string_view(text).substr(i, piece)), IsOk());
    }
    ASSERT_THAT(parser.Finish(), IsOk());
    EXPECT_EQ(ToCollapsedString(p), ToCollapsedString(whole)) << piece;
    EXPECT_EQ(parser.stats().bytes, text.size());
  }
}

TEST(CollapsedIoTest, ReadsFromAPipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string text = "a;b 1\na;c 2\n";
  ASSERT_EQ(write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fds[1]);
  Profile p;
  ASSERT_THAT(ReadCollapsedFd(fds[0], "pipe", &p), IsOk());
  close(fds[0]);
  EXPECT_EQ(ToCollapsedString(p), text);
}

TEST(CollapsedIoTest, FileErrorsSayWhatToDo) {
  EXPECT_THAT(ReadCollapsedFile("/nonexistent/profile.txt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("check the path")));
  EXPECT_THAT(ReadCollapsedFile(TempDir()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("directory")));
  Profile p;
  p.AddStack({p.InternFrame("main")}, 1);
  EXPECT_THAT(WriteCollapsedFile(p, "/nonexistent/dir/out.txt"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(CollapsedIoTest, WritesFilesAtomicallyAndDeterministically) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile p,
                                ReadCollapsedFile(std::string(kDir) + "server.txt"));
  const std::string path = TempDir() + "/server_out.txt";
  ASSERT_THAT(WriteCollapsedFile(p, path), IsOk());
  std::string written = ReadAll(path);
  EXPECT_EQ(written, ToCollapsedString(p));
  EXPECT_EQ(SortedLines(written), SortedLines(ReadAll(std::string(kDir) + "server.txt")));
  // Lines come out sorted by frame names.
  std::vector<std::string> lines = absl::StrSplit(written, '\n', absl::SkipEmpty());
  EXPECT_TRUE(std::is_sorted(lines.begin(), lines.end()));
  // A sink error stops the writer and is returned.
  EXPECT_THAT(WriteCollapsed(p, [](absl::string_view) {
                return absl::ResourceExhaustedError("disk full");
              }),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(CollapsedIoTest, WriterReplacesCharactersTheFormatCannotHold) {
  Profile p;
  p.AddStack({p.InternFrame("a;b"), p.InternFrame("line\nbreak\r"),
              p.InternFrame("w", FrameKind::kThread)},
             1);
  EXPECT_EQ(ToCollapsedString(p), "a:b;line break\r;[w] 1\n");
  // A thread name given with its brackets is not bracketed twice.
  Profile q;
  q.AddStack({q.InternFrame("[main tid=7]", FrameKind::kThread), q.InternFrame("f")}, 2);
  EXPECT_EQ(ToCollapsedString(q), "[main tid=7];f 2\n");
}

}  // namespace
}  // namespace flamekit
