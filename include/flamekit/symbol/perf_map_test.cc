// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/perf_map.h"

#include <stdlib.h>

#include <random>
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

TEST(PerfMapTest, ParsesEntriesWithSpacesInNames) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      PerfMap map, PerfMap::Parse("7f0000001000 40 LazyCompile:*fib /app/fib.js:3\n"
                                  "0x7f0000001100 0x20 Builtin: ArgumentsAdaptorTrampoline\n"
                                  "\n"
                                  "7F0000001200 10 upper_case_hex\r\n"));
  EXPECT_EQ(map.size(), 3u);
  ASSERT_NE(map.Find(0x7f0000001000), nullptr);
  EXPECT_EQ(map.Find(0x7f000000103f)->name, "LazyCompile:*fib /app/fib.js:3");
  EXPECT_EQ(map.Find(0x7f0000001040), nullptr);  // past its size
  EXPECT_EQ(map.Find(0x7f0000001110)->name, "Builtin: ArgumentsAdaptorTrampoline");
  EXPECT_EQ(map.Find(0x7f0000001205)->name, "upper_case_hex");
}

TEST(PerfMapTest, LaterEntryForSameAddressWins) {
  // A JIT frees code and compiles something else at the same address.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfMap map, PerfMap::Parse("1000 40 old\n2000 10 other\n1000 40 new\n"));
  EXPECT_EQ(map.Find(0x1010)->name, "new");
  EXPECT_EQ(map.Find(0x2000)->name, "other");
}

TEST(PerfMapTest, IgnoresPartialLastLine) {
  // The runtime may be in the middle of writing a line.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfMap map, PerfMap::Parse("1000 40 done\n2000 4"));
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.Find(0x2000), nullptr);
}

TEST(PerfMapTest, MalformedLineNamesSourceAndLine) {
  EXPECT_THAT(PerfMap::Parse("1000 40 ok\nzzzz 40 bad\n", "/tmp/perf-1.map"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/tmp/perf-1.map:2: expected 'START SIZE NAME'")));
  EXPECT_THAT(PerfMap::Parse("1000 40\n"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PerfMap::Parse("1000 -4 x\n"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PerfMapTest, LoadsFileFromTestdata) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfMap map,
                                PerfMap::Load(Runfile("testdata/symbol/perf-4242.map")));
  EXPECT_GE(map.size(), 3u);
  ASSERT_NE(map.Find(0x7f3a2c001010), nullptr);
  EXPECT_EQ(map.Find(0x7f3a2c001010)->name, "Interpreter");
  EXPECT_THAT(PerfMap::Load("/nonexistent/perf-1.map"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(PerfMapTest, RandomTextNeverCrashes) {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789abcdefx \n\t:";
  for (int i = 0; i < 5000; ++i) {
    std::string text;
    int len = static_cast<int>(rng() % 120);
    for (int j = 0; j < len; ++j) text.push_back(alphabet[rng() % alphabet.size()]);
    absl::StatusOr<PerfMap> map = PerfMap::Parse(text);
    if (map.ok()) map->Find(rng());
  }
}

}  // namespace
}  // namespace flamekit
