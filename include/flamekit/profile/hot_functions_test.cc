// SPDX-License-Identifier: Apache-2.0
#include "flamekit/profile/hot_functions.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/profile/collapsed_io.h"

namespace flamekit {
namespace {

using ::testing::HasSubstr;

Profile Parse(absl::string_view text) {
  absl::StatusOr<Profile> p = ParseCollapsed(text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Profile();
}

TEST(HotFunctionsTest, RanksBySelfAndTotalCountingRecursionOnce) {
  Profile p = Parse(
      "[w tid=1];main;parse;parse;parse;lex 50\n"
      "[w tid=2];main;parse;memcpy_[k] 30\n"
      "[w tid=2];main;memcpy_[k] 15\n"
      "[w tid=2];main 5\n");
  HotFunctions hot = ComputeHotFunctions(p, 10);
  ASSERT_EQ(hot.total_samples, 100u);
  auto name = [&](const HotFunction& f) { return p.frame(f.frame).name; };
  ASSERT_EQ(hot.by_self.size(), 3u);
  EXPECT_EQ(name(hot.by_self[0]), "lex");
  EXPECT_EQ(hot.by_self[0].self, 50u);
  EXPECT_EQ(name(hot.by_self[1]), "memcpy");
  EXPECT_EQ(hot.by_self[1].self, 45u);
  EXPECT_EQ(name(hot.by_self[2]), "main");
  // Totals: main 100, parse 80 (once per stack despite recursion), lex 50,
  // memcpy 45. Thread roots are not listed.
  ASSERT_EQ(hot.by_total.size(), 4u);
  EXPECT_EQ(name(hot.by_total[0]), "main");
  EXPECT_EQ(hot.by_total[0].total, 100u);
  EXPECT_EQ(name(hot.by_total[1]), "parse");
  EXPECT_EQ(hot.by_total[1].total, 80u);
  EXPECT_EQ(hot.by_total[1].self, 0u);
  EXPECT_EQ(name(hot.by_total[2]), "lex");
  EXPECT_EQ(name(hot.by_total[3]), "memcpy");

  HotFunctions top2 = ComputeHotFunctions(p, 2);
  EXPECT_EQ(top2.by_self.size(), 2u);
  EXPECT_EQ(top2.by_total.size(), 2u);
  EXPECT_EQ(name(top2.by_total[1]), "parse");
}

TEST(HotFunctionsTest, TiesAreOrderedByName) {
  Profile p = Parse("m;b 1\nm;a 1\nm;c 1\n");
  HotFunctions hot = ComputeHotFunctions(p, 3);
  ASSERT_EQ(hot.by_self.size(), 3u);
  EXPECT_EQ(p.frame(hot.by_self[0].frame).name, "a");
  EXPECT_EQ(p.frame(hot.by_self[1].frame).name, "b");
  EXPECT_EQ(p.frame(hot.by_self[2].frame).name, "c");
}

TEST(HotFunctionsTest, FormatsAPlainTextTable) {
  Profile p = Parse("main;work 3\nmain;memcpy_[k] 1\n");
  std::string table = FormatHotFunctions(p, ComputeHotFunctions(p, 5));
  EXPECT_THAT(table, HasSubstr("Samples: 4"));
  EXPECT_THAT(table, HasSubstr("By self samples:"));
  EXPECT_THAT(table, HasSubstr("By total samples:"));
  EXPECT_THAT(table, HasSubstr("  75.00%            3   75.00%            3  work\n"));
  EXPECT_THAT(table, HasSubstr("memcpy [kernel]"));
  EXPECT_THAT(table, HasSubstr(" 100.00%            4  main\n"));

  Profile empty;
  EXPECT_THAT(FormatHotFunctions(empty, ComputeHotFunctions(empty, 5)),
              HasSubstr("(no samples)"));
}

}  // namespace
}  // namespace flamekit
