// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/build_id.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string Runfile(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/flamekit/", rel);
  return std::string(rel);
}

TEST(BuildIdTest, DebugPathSplitsFirstByte) {
  EXPECT_EQ(BuildIdDebugPath("/usr/lib/debug", "93ac61ec5a8eb1396f9fbd350e3169a558528a40"),
            "/usr/lib/debug/.build-id/93/ac61ec5a8eb1396f9fbd350e3169a558528a40.debug");
  EXPECT_EQ(BuildIdDebugPath("/r", "ab"), "");
}

TEST(BuildIdTest, FindsInstalledLibcDebugFile) {
  const char* libc = "/lib/x86_64-linux-gnu/libc.so.6";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(libc));
  std::string expected = BuildIdDebugPath("/usr/lib/debug", elf->build_id());
  if (access(expected.c_str(), R_OK) != 0) GTEST_SKIP() << "libc6-dbg is not installed";
  EXPECT_THAT(FindDebugFile(*elf, libc), ::flamekit::testing::IsOkAndHolds(expected));
}

TEST(BuildIdTest, FindsDebugFileByDebuglinkNextToFile) {
  std::string dir = Runfile("include/flamekit/symbol");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf,
                                ElfFile::Open(dir + "/symbol_test_helper_stripped"));
  DebugFileOptions options;
  options.roots = {};
  EXPECT_THAT(FindDebugFile(*elf, dir + "/symbol_test_helper_stripped", options),
              ::flamekit::testing::IsOkAndHolds(dir + "/symbol_test_helper.debug"));
}

TEST(BuildIdTest, NotFoundSaysWhatToInstall) {
  std::string dir = Runfile("include/flamekit/symbol");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf,
                                ElfFile::Open(dir + "/symbol_test_helper_stripped"));
  DebugFileOptions options;
  options.roots = {"/nonexistent/debug"};
  // Looked up as if it lived elsewhere, so the debuglink search misses too.
  EXPECT_THAT(FindDebugFile(*elf, "/nonexistent/bin/helper", options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("-dbgsym")));
}

TEST(BuildIdTest, Crc32MatchesTheStandardCheckValue) {
  EXPECT_EQ(DebuglinkCrc32("123456789"), 0xcbf43926u);
  EXPECT_EQ(DebuglinkCrc32(""), 0u);
}

TEST(BuildIdTest, DebuglinkCrcIsTheDebugFilesCrc) {
  std::string dir = Runfile("include/flamekit/symbol");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> stripped,
                                ElfFile::Open(dir + "/symbol_test_helper_nobid_stripped"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> debug,
                                ElfFile::Open(dir + "/symbol_test_helper_nobid.debug"));
  EXPECT_TRUE(stripped->build_id().empty());
  EXPECT_EQ(stripped->debuglink(), "symbol_test_helper_nobid.debug");
  EXPECT_EQ(stripped->debuglink_crc(), DebuglinkCrc32(debug->bytes()));
}

TEST(BuildIdTest, WithoutBuildIdMatchesByCrcOnly) {
  std::string dir = Runfile("include/flamekit/symbol");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> stripped,
                                ElfFile::Open(dir + "/symbol_test_helper_nobid_stripped"));
  DebugFileOptions options;
  options.roots = {};
  EXPECT_THAT(FindDebugFile(*stripped, dir + "/symbol_test_helper_nobid_stripped", options),
              ::flamekit::testing::IsOkAndHolds(dir + "/symbol_test_helper_nobid.debug"));
  // Another file (with a .symtab) under the debuglink's name: wrong CRC.
  const char* tmp = getenv("TEST_TMPDIR");
  std::string other = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/crc_", getpid());
  ASSERT_EQ(mkdir(other.c_str(), 0755), 0);
  ASSERT_EQ(system(absl::StrCat("cp ", dir, "/libfk_symbol_test_dso.so ", other,
                                "/symbol_test_helper_nobid.debug").c_str()),
            0);
  EXPECT_THAT(FindDebugFile(*stripped, other + "/helper", options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no debug file found")));
}

}  // namespace
}  // namespace flamekit
