// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/proc_maps.h"

#include <stdlib.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern "C" __attribute__((noinline)) int FkProcMapsTestFunction() { return 42; }

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string Runfile(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/flamekit/", rel);
  return std::string(rel);
}

TEST(ProcMapsTest, ParsesFileMapping) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Mapping m,
      ParseMapsLine("7f1e2a228000-7f1e2a3bd000 r-xp 00028000 08:01 1054123                    "
                    "/usr/lib/x86_64-linux-gnu/libc.so.6\n"));
  EXPECT_EQ(m.start, 0x7f1e2a228000u);
  EXPECT_EQ(m.end, 0x7f1e2a3bd000u);
  EXPECT_EQ(m.size(), 0x195000u);
  EXPECT_EQ(m.file_offset, 0x28000u);
  EXPECT_TRUE(m.readable);
  EXPECT_FALSE(m.writable);
  EXPECT_TRUE(m.executable);
  EXPECT_TRUE(m.is_private);
  EXPECT_EQ(m.dev_major, 8u);
  EXPECT_EQ(m.dev_minor, 1u);
  EXPECT_EQ(m.inode, 1054123u);
  EXPECT_EQ(m.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
  EXPECT_FALSE(m.deleted);
  EXPECT_TRUE(m.IsFile());
  EXPECT_FALSE(m.IsPseudo());
  EXPECT_TRUE(m.Contains(0x7f1e2a228000u));
  EXPECT_FALSE(m.Contains(0x7f1e2a3bd000u));
  EXPECT_EQ(m.MapFilesName(), "7f1e2a228000-7f1e2a3bd000");
}

TEST(ProcMapsTest, ParsesOddPathsFromTestdata) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string text,
                                ReadSmallFile(Runfile("testdata/maps/odd_paths.maps")));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> maps, ParseMaps(text, "odd_paths.maps"));
  ASSERT_EQ(maps.size(), 15u);
  EXPECT_EQ(maps[0].path, "/usr/bin/cat");
  EXPECT_EQ(maps[2].path, "[heap]");
  EXPECT_TRUE(maps[2].IsPseudo());
  // Spaces inside the path are kept, including doubled ones.
  EXPECT_EQ(maps[5].path, "/opt/my app/bin/with  two  spaces");
  EXPECT_FALSE(maps[5].deleted);
  EXPECT_EQ(maps[6].path, "/tmp/build/libold.so");
  EXPECT_TRUE(maps[6].deleted);
  // " (deleted)" only counts at the end.
  EXPECT_EQ(maps[7].path, "/tmp/odd (deleted) name.so");
  EXPECT_FALSE(maps[7].deleted);
  // Anonymous: empty path (the trailing space is padding).
  EXPECT_EQ(maps[8].path, "");
  EXPECT_TRUE(maps[8].IsAnonymous());
  EXPECT_TRUE(maps[8].writable && maps[8].executable);
  EXPECT_FALSE(maps[9].is_private);
  EXPECT_TRUE(maps[9].deleted);
  EXPECT_EQ(maps[10].path, "[anon:jit code]");
  EXPECT_TRUE(maps[10].IsAnonymous());
  EXPECT_EQ(maps[12].path, "[vvar]");
  EXPECT_FALSE(maps[12].IsFile());
  EXPECT_TRUE(maps[0].IsFile());
  Mapping perf_anon;
  perf_anon.path = "//anon";
  EXPECT_TRUE(perf_anon.IsAnonymous());
  EXPECT_FALSE(perf_anon.IsFile());
  EXPECT_TRUE(maps[13].IsVdso());
  EXPECT_EQ(maps[14].start, 0xffffffffff600000u);
  EXPECT_FALSE(maps[14].readable);
}

TEST(ProcMapsTest, GarbageLineNamesSourceAndLine) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string text,
                                ReadSmallFile(Runfile("testdata/maps/garbage_line2.maps")));
  EXPECT_THAT(ParseMaps(text, "garbage_line2.maps"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("garbage_line2.maps:2: malformed maps line (bad address range)")));
}

TEST(ProcMapsTest, RejectsMalformedLines) {
  const char* const kBad[] = {
      "",
      "-",
      "7f00-",
      "7f00-7e00 r-xp 00000000 08:01 1 /x",            // end before start
      "7f00-7f10 r-xp",                                // missing fields
      "7f00-7f10 r-x 00000000 08:01 1 /x",             // short perms
      "7f00-7f10 rwzp 00000000 08:01 1 /x",            // bad perm letter
      "7f00-7f10 r-xq 00000000 08:01 1 /x",            // bad share flag
      "7f00-7f10 r-xp zz 08:01 1 /x",                  // bad offset
      "7f00-7f10 r-xp 00000000 0801 1 /x",             // bad device
      "7f00-7f10 r-xp 00000000 08:01 -1 /x",           // bad inode
      "7f00-7f10 r-xp 00000000 08:01 1x /x",           // bad inode
      "g7f00-7f10 r-xp 00000000 08:01 1 /x",           // bad hex
      "11111111111111111-7f10 r-xp 00000000 08:01 1",  // 17 hex digits
  };
  for (const char* line : kBad) {
    EXPECT_THAT(ParseMapsLine(line), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("expected 'START-END PERMS")))
        << "line: \"" << line << "\"";
  }
}

TEST(ProcMapsTest, RandomBytesNeverCrash) {
  std::mt19937 rng(1234);
  const std::string alphabet = "0123456789abcdef- :/rwxps()[]\n\t\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string line;
    int len = static_cast<int>(rng() % 80);
    for (int j = 0; j < len; ++j) {
      line.push_back(rng() % 4 == 0 ? static_cast<char>(rng() & 0xff)
                                    : alphabet[rng() % alphabet.size()]);
    }
    absl::StatusOr<std::vector<Mapping>> maps = ParseMaps(line);
    if (maps.ok()) {
      for (const Mapping& m : *maps) EXPECT_LE(m.start, m.end);
    }
  }
}

TEST(ProcMapsTest, ReadsOwnMapsWithThisExecutable) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> maps, ReadProcMaps(0));
  uint64_t fn = reinterpret_cast<uint64_t>(&FkProcMapsTestFunction);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  bool found = false;
  for (const Mapping& m : maps) {
    if (m.Contains(fn)) {
      found = true;
      EXPECT_TRUE(m.executable);
      EXPECT_EQ(m.path, exe);
    }
  }
  EXPECT_TRUE(found);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> by_pid, ReadProcMaps(getpid()));
  EXPECT_FALSE(by_pid.empty());
}

TEST(ProcMapsTest, MissingProcessIsNotFound) {
  EXPECT_THAT(ReadProcMaps(0x3ffffff0), StatusIs(absl::StatusCode::kNotFound,
                                                 HasSubstr("no process 1073741808")));
  EXPECT_THAT(ReadProcMaps(-1), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcMapsTest, ReadSmallFileErrorsNameThePath) {
  EXPECT_THAT(ReadSmallFile("/nonexistent/flamekit"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/flamekit")));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string head, ReadSmallFile("/proc/self/status", 10));
  EXPECT_EQ(head.size(), 10u);
}

}  // namespace
}  // namespace flamekit
