// SPDX-License-Identifier: Apache-2.0
#include "flamekit/profile/profile.h"

#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Stacks as "a;b;c" strings -> counts, independent of ids and order.
std::map<std::string, uint64_t> Stacks(const Profile& profile) {
  std::map<std::string, uint64_t> out;
  profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
    std::string key;
    for (size_t i = 0; i < frames.size(); ++i) {
      if (i) key += ';';
      const Frame& f = profile.frame(frames[i]);
      key += f.name;
      if (f.kind != FrameKind::kUser) key += absl::StrCat("{", FrameKindName(f.kind), "}");
    }
    out[key] += count;
  });
  return out;
}

std::vector<FrameId> Intern(Profile* p, std::initializer_list<const char*> names) {
  std::vector<FrameId> ids;
  for (const char* n : names) ids.push_back(p->InternFrame(n));
  return ids;
}

TEST(ProfileTest, InternFrameReturnsSameIdForSameNameAndKind) {
  Profile p;
  FrameId a = p.InternFrame("memcpy", FrameKind::kUser);
  FrameId b = p.InternFrame("memcpy", FrameKind::kKernel);
  EXPECT_NE(a, b);
  EXPECT_EQ(p.InternFrame("memcpy", FrameKind::kUser), a);
  EXPECT_EQ(p.frame_count(), 2u);
  EXPECT_EQ(p.frame(b).kind, FrameKind::kKernel);
  EXPECT_EQ(p.FindFrame("memcpy", FrameKind::kKernel), b);
  EXPECT_EQ(p.FindFrame("nope"), std::nullopt);
}

TEST(ProfileTest, CopiesOwnTheirNameIndexAndMovedFromProfilesStayUsable) {
  // The name index lives behind a pointer (profile_impl.h): a copy that
  // shared it would hand out ids its own frames_ does not have.
  Profile original;
  FrameId main_id = original.InternFrame("main");
  Profile copy = original;
  FrameId only_in_copy = copy.InternFrame("only_in_copy");
  EXPECT_EQ(original.FindFrame("only_in_copy"), std::nullopt);
  EXPECT_EQ(copy.FindFrame("main"), main_id);
  EXPECT_EQ(copy.frame(only_in_copy).name, "only_in_copy");
  EXPECT_EQ(original.InternFrame("only_in_original"), 1u);
  EXPECT_EQ(copy.frame_count(), 2u);

  Profile assigned;
  assigned.InternFrame("overwritten");
  assigned = copy;
  EXPECT_EQ(assigned.FindFrame("overwritten"), std::nullopt);
  EXPECT_EQ(assigned.FindFrame("only_in_copy"), only_in_copy);
  assigned = Profile();
  EXPECT_EQ(assigned.FindFrame("main"), std::nullopt);
  EXPECT_EQ(assigned.frame_count(), 0u);

  Profile moved = std::move(copy);
  EXPECT_EQ(moved.FindFrame("only_in_copy"), only_in_copy);
  copy = Profile();  // a moved-from profile takes a new value and works
  EXPECT_EQ(copy.FindFrame("main"), std::nullopt);
  EXPECT_EQ(copy.InternFrame("again"), 0u);
  Profile empty;
  Profile empty_copy = empty;  // no index yet: copying one is fine too
  EXPECT_EQ(empty_copy.InternFrame("first"), 0u);
}

TEST(ProfileTest, AddStackFoldsIdenticalStacks) {
  Profile p;
  auto s1 = Intern(&p, {"main", "a", "b"});
  auto s2 = Intern(&p, {"main", "a"});
  p.AddStack(s1, 2);
  p.AddStack(s2, 1);
  p.AddStack(s1, 5);
  p.AddStack({}, 9);   // ignored
  p.AddStack(s2, 0);   // ignored
  EXPECT_EQ(p.stack_count(), 2u);
  EXPECT_EQ(p.total_samples(), 8u);
  EXPECT_EQ(p.stack_count_at(0), 7u);
  EXPECT_THAT(p.stack(0), ElementsAre(s1[0], s1[1], s1[2]));
  EXPECT_EQ(p.FindStack(s2), 1u);
  EXPECT_EQ(p.FindStack(Intern(&p, {"x"})), std::nullopt);
}

TEST(ProfileTest, ManyStacksSurviveRehashAndCopy) {
  // Enough distinct stacks to grow the table many times; a prefix relation
  // between stacks ("a", "a;b") must never make them collide into one.
  Profile p;
  std::mt19937 rng(7);
  std::map<std::vector<FrameId>, uint64_t> expected;
  std::vector<FrameId> frames;
  for (int i = 0; i < 200; ++i) frames.push_back(p.InternFrame(absl::StrCat("f", i)));
  for (int i = 0; i < 20000; ++i) {
    std::vector<FrameId> s(1 + rng() % 12);
    for (auto& id : s) id = frames[rng() % 20];
    uint64_t c = 1 + rng() % 3;
    expected[s] += c;
    p.AddStack(s, c);
  }
  Profile copy = p;  // the table must stay valid in a copy
  for (const Profile* q : {&p, &copy}) {
    ASSERT_EQ(q->stack_count(), expected.size());
    std::map<std::vector<FrameId>, uint64_t> got;
    q->ForEachStack([&](absl::Span<const FrameId> s, uint64_t c) {
      got[std::vector<FrameId>(s.begin(), s.end())] += c;
    });
    EXPECT_EQ(got, expected);
  }
  copy.AddStack(p.stack(0), 1);
  EXPECT_EQ(copy.stack_count(), p.stack_count());
  EXPECT_EQ(copy.total_samples(), p.total_samples() + 1);
}

TEST(ProfileTest, SortedStackIndicesOrdersByNamesRootFirst) {
  Profile p;
  // Interned in an order unrelated to the names.
  FrameId z = p.InternFrame("zeta");
  FrameId m = p.InternFrame("main");
  FrameId a = p.InternFrame("alpha");
  FrameId ak = p.InternFrame("alpha", FrameKind::kKernel);
  p.AddStack({m, z}, 1);
  p.AddStack({m, a, z}, 1);
  p.AddStack({m}, 1);
  p.AddStack({m, ak}, 1);
  p.AddStack({m, a}, 1);
  std::vector<std::string> order;
  for (size_t i : p.SortedStackIndices()) {
    std::string s;
    for (FrameId id : p.stack(i)) {
      absl::StrAppend(&s, p.frame(id).name, p.frame(id).kind == FrameKind::kKernel ? "_k" : "", "/");
    }
    order.push_back(s);
  }
  EXPECT_THAT(order, ElementsAre("main/", "main/alpha/", "main/alpha/zeta/",
                                 "main/alpha_k/", "main/zeta/"));
}

TEST(ProfileTest, AddThreadStackPutsThreadRootFirstAndMergeThreadsRemovesIt) {
  Profile p;
  auto s = Intern(&p, {"main", "work"});
  p.AddThreadStack(ThreadFrameName("worker-1", 11), s, 2);
  p.AddThreadStack(ThreadFrameName("worker-2", 12), s, 3);
  p.AddThreadStack(ThreadFrameName("", 13), s, 1);
  p.metadata().threads = 3;
  EXPECT_TRUE(p.HasThreadFrames());
  EXPECT_EQ(p.stack_count(), 3u);
  EXPECT_EQ(p.frame(p.stack(0)[0]).kind, FrameKind::kThread);
  EXPECT_EQ(p.frame(p.stack(0)[0]).name, "worker-1 tid=11");
  EXPECT_EQ(p.frame(p.stack(2)[0]).name, "tid=13");

  Profile merged = MergeThreads(p);
  EXPECT_FALSE(merged.HasThreadFrames());
  EXPECT_EQ(merged.total_samples(), 6u);
  EXPECT_EQ(merged.metadata().threads, 3u);
  EXPECT_EQ(Stacks(merged), (std::map<std::string, uint64_t>{{"main;work", 6}}));
}

TEST(ProfileTest, MergeAddsStacksAndLossCounters) {
  Profile a, b;
  a.AddStack(Intern(&a, {"main", "x"}), 2);
  a.metadata().dropped_samples = 1;
  a.metadata().start_time = absl::FromUnixSeconds(100);
  a.metadata().end_time = absl::FromUnixSeconds(110);
  b.InternFrame("unused");
  b.AddStack(Intern(&b, {"main", "x"}), 3);
  b.AddStack({b.InternFrame("main"), b.InternFrame("x", FrameKind::kKernel)}, 4);
  b.metadata().dropped_samples = 5;
  b.metadata().lost_samples = 6;
  b.metadata().start_time = absl::FromUnixSeconds(90);
  b.metadata().end_time = absl::FromUnixSeconds(120);
  b.metadata().threads = 4;

  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile m, MergeProfiles(a, b));
  EXPECT_EQ(Stacks(m), (std::map<std::string, uint64_t>{{"main;x", 5},
                                                         {"main;x{kernel}", 4}}));
  EXPECT_EQ(m.total_samples(), 9u);
  EXPECT_EQ(m.metadata().dropped_samples, 6u);
  EXPECT_EQ(m.metadata().lost_samples, 6u);
  EXPECT_EQ(m.metadata().start_time, absl::FromUnixSeconds(90));
  EXPECT_EQ(m.metadata().end_time, absl::FromUnixSeconds(120));
  EXPECT_EQ(m.metadata().threads, 4u);

  // Merging a profile with itself doubles it.
  m.Merge(m);
  EXPECT_EQ(m.total_samples(), 18u);
  EXPECT_EQ(m.stack_count(), 2u);
}

TEST(ProfileTest, MergeProfilesRejectsDifferentEvents) {
  Profile a, b;
  b.metadata().event = "page-faults";
  EXPECT_THAT(MergeProfiles(a, b),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("same event")));
}

TEST(ProfileTest, EventsColumnFollowsItsStacksThroughMergeAndMergeThreads) {
  Profile p;
  const FrameId main_id = p.InternFrame("main");
  const FrameId alloc = p.InternFrame("Alloc");
  const FrameId a[] = {main_id, alloc};
  const FrameId b[] = {main_id};
  p.AddStack(b, 100);  // before the column: counts 0
  EXPECT_FALSE(p.has_events());
  EXPECT_EQ(p.stack_events_at(0), 0u);
  p.AddStack(a, 4096, 1);
  p.AddStack(a, 8192, 2);
  p.AddStack(b, 0, 5);  // events only: the weight stays
  ASSERT_TRUE(p.has_events());
  EXPECT_EQ(p.stack_count_at(0), 100u);
  EXPECT_EQ(p.stack_events_at(0), 5u);
  EXPECT_EQ(p.stack_count_at(1), 12288u);
  EXPECT_EQ(p.stack_events_at(1), 3u);
  EXPECT_EQ(p.total_events(), 8u);
  p.AddStack(a, 1, ~uint64_t{0});  // saturates
  EXPECT_EQ(p.stack_events_at(1), ~uint64_t{0});

  Profile q;
  const FrameId q_alloc = q.InternFrame("Alloc");
  const FrameId q_main = q.InternFrame("main");
  const FrameId qa[] = {q_main, q_alloc};
  q.AddThreadStack(ThreadFrameName("w", 7), qa, 4096);  // no events: counts 0
  EXPECT_FALSE(q.has_events());
  q.AddStack(qa, 4096, 1);
  Profile merged = q;
  merged.Merge(q);
  ASSERT_TRUE(merged.has_events());
  std::optional<size_t> plain = merged.FindStack(qa);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(merged.stack_count_at(*plain), 8192u);
  EXPECT_EQ(merged.stack_events_at(*plain), 2u);
  // The thread root goes; the stacks fold, and so do their events.
  Profile folded = MergeThreads(merged);
  ASSERT_TRUE(folded.has_events());
  ASSERT_EQ(folded.stack_count(), 1u);
  EXPECT_EQ(folded.stack_count_at(0), 16384u);
  EXPECT_EQ(folded.stack_events_at(0), 2u);  // the thread stack had none
  // A profile without the column stays without it.
  Profile cpu;
  const FrameId cpu_main[] = {cpu.InternFrame("main")};
  cpu.AddStack(cpu_main, 3);
  cpu.Merge(cpu);
  EXPECT_FALSE(MergeThreads(cpu).has_events());
}

}  // namespace
}  // namespace flamekit
