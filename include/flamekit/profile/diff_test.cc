// SPDX-License-Identifier: Apache-2.0
#include "flamekit/profile/diff.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/profile/collapsed_io.h"

namespace flamekit {
namespace {

Profile Read(const std::string& name) {
  absl::StatusOr<Profile> p = ReadCollapsedFile("testdata/collapsed/" + name);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Profile();
}

std::string Key(const DiffProfile& diff, const DiffStack& s) {
  std::string key;
  for (size_t i = 0; i < s.frames.size(); ++i) {
    if (i) key += ';';
    key += CollapsedFrameText(diff.frames.frame(s.frames[i]));
  }
  return key;
}

TEST(DiffTest, MatchesStacksAndKeepsRawCounts) {
  Profile before = Read("before.txt");
  Profile after = Read("after.txt");
  before.metadata().title = "base";
  after.metadata().title = "next";
  DiffProfile diff = ComputeDiff(before, after);
  EXPECT_EQ(diff.total_before, 100u);
  EXPECT_EQ(diff.total_after, 200u);
  EXPECT_EQ(diff.base_metadata.title, "base");
  EXPECT_EQ(diff.frames.metadata().title, "next");
  EXPECT_EQ(diff.frames.stack_count(), 0u);

  std::map<std::string, std::pair<uint64_t, uint64_t>> got;
  std::vector<std::string> order;
  for (const DiffStack& s : diff.stacks) {
    got[Key(diff, s)] = {s.before, s.after};
    order.push_back(Key(diff, s));
  }
  const std::string h = "main;Server::Run();Server::Handle(Request const&);";
  std::map<std::string, std::pair<uint64_t, uint64_t>> want = {
      {h + "Parser::Parse()", {60, 30}},
      {h + "memcpy", {30, 120}},
      {h + "Cache::Lookup(Key const&)", {0, 40}},
      {"main;Server::Run();epoll_wait", {10, 10}},
  };
  EXPECT_EQ(got, want);
  // Sorted like the collapsed writer sorts.
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));

  // Normalized: before scaled by 200/100.
  EXPECT_DOUBLE_EQ(diff.before_scale(), 2.0);
  double sum = 0;
  for (const DiffStack& s : diff.stacks) sum += diff.NormalizedBefore(s);
  EXPECT_DOUBLE_EQ(sum, 200.0);
  const DiffStack& epoll = diff.stacks.back();
  ASSERT_EQ(Key(diff, epoll), "main;Server::Run();epoll_wait");
  EXPECT_EQ(diff.Delta(epoll), 0);
  EXPECT_DOUBLE_EQ(NormalizedBefore(diff, epoll), 20.0);
  EXPECT_DOUBLE_EQ(diff.NormalizedDelta(epoll), -10.0);
}

TEST(DiffTest, StacksOnlyInBaseHaveZeroAfterAndKindsMatter) {
  Profile a, b;
  ASSERT_TRUE(ParseCollapsed("m;f 3\nm;g_[k] 1\n").ok());
  a = *ParseCollapsed("m;f 3\nm;g_[k] 1\n");
  b = *ParseCollapsed("m;g 5\n");
  DiffProfile diff = ComputeDiff(a, b);
  ASSERT_EQ(diff.stacks.size(), 3u);
  EXPECT_EQ(Key(diff, diff.stacks[0]), "m;f");
  EXPECT_EQ(diff.stacks[0].before, 3u);
  EXPECT_EQ(diff.stacks[0].after, 0u);
  EXPECT_EQ(Key(diff, diff.stacks[1]), "m;g");
  EXPECT_EQ(diff.stacks[1].after, 5u);
  EXPECT_EQ(Key(diff, diff.stacks[2]), "m;g_[k]");
  EXPECT_EQ(diff.stacks[2].before, 1u);
  EXPECT_EQ(diff.Delta(diff.stacks[2]), -1);
}

TEST(DiffTest, EmptyBaseScalesByOne) {
  Profile empty;
  Profile b = *ParseCollapsed("m 5\n");
  DiffProfile diff = ComputeDiff(empty, b);
  EXPECT_DOUBLE_EQ(diff.before_scale(), 1.0);
  ASSERT_EQ(diff.stacks.size(), 1u);
  EXPECT_EQ(diff.stacks[0].before, 0u);
  EXPECT_EQ(diff.stacks[0].after, 5u);
  DiffProfile none = ComputeDiff(empty, empty);
  EXPECT_TRUE(none.stacks.empty());
}

}  // namespace
}  // namespace flamekit
