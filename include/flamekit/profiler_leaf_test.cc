// SPDX-License-Identifier: Apache-2.0
// The embedded profiler names the caller of a function that keeps no frame
// (gcc's leaf functions at -O2): the frame-pointer walk alone skips it in
// every such sample, and the collector puts it back from the stack words
// the sample kept and the leaf's .eh_frame rule.

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "flamekit/profiler.h"
#include "flamekit/profiler_test_leaf.h"
#include "flamekit/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;

void ExpectCallerKept(const std::string& event) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers a signal to the next call it intercepts: no sample "
                  "lands inside a leaf that makes no calls";
#endif
  Profiler& profiler = Profiler::Global();
  ProfilerOptions options;
  options.event = event;
  options.interval = absl::Milliseconds(1);
  ASSERT_THAT(profiler.Start(options), IsOk());
  std::thread first([] { leaf_test::FirstCallerOfTheLeaf(0.5); });
  std::thread second([] { leaf_test::SecondCallerOfTheLeaf(0.5); });
  first.join();
  second.join();
  absl::StatusOr<Profile> profile = profiler.Stop();
  ASSERT_TRUE(profile.ok()) << profile.status();

  uint64_t in_leaf = 0, first_caller = 0, second_caller = 0, leaf_only = 0;
  std::vector<std::string> wrong;
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t count) {
    if (stack.empty() || !absl::StrContains(profile->frame(stack.back()).name, "FramelessLeaf")) {
      return;
    }
    if (stack.size() == 1) {
      // A thread's first samples, taken before the collector learnt its
      // stack's bounds, have no frames to walk at all (not this test's case).
      leaf_only += count;
      return;
    }
    in_leaf += count;
    const std::string caller =
        stack.size() >= 2 ? profile->frame(stack[stack.size() - 2]).name : "(none)";
    if (absl::StrContains(caller, "FirstCallerOfTheLeaf")) {
      first_caller += count;
    } else if (absl::StrContains(caller, "SecondCallerOfTheLeaf")) {
      second_caller += count;
    } else if (wrong.size() < 5) {
      std::vector<std::string> names;
      for (FrameId id : stack) names.push_back(profile->frame(id).name);
      wrong.push_back(absl::StrCat(absl::StrJoin(names, ";"), " ", count));
    }
  });
  const std::string context =
      absl::StrCat("engine ", profile->metadata().engine, ": ", in_leaf, " samples in the leaf (and ", leaf_only,
                   " with no stack), ",
                   first_caller, " under the first caller, ", second_caller,
                   " under the second; others:\n", absl::StrJoin(wrong, "\n"));
  ASSERT_GT(in_leaf, 50u) << context;
  EXPECT_LT(leaf_only, in_leaf / 10) << context;
  // The leaf's entry and exit instructions are the only samples whose
  // caller may be missed (a return address not yet pushed is not).
  EXPECT_GE(first_caller + second_caller, in_leaf * 98 / 100) << context;
  EXPECT_GT(first_caller, in_leaf / 4) << context;
  EXPECT_GT(second_caller, in_leaf / 4) << context;
}

TEST(ProfilerLeafTest, TheCallerOfAFramelessLeafIsKeptWithTheCpuEngine) {
  std::string why;
  if (!leaf_test::LeafHasNoFrame(&why)) GTEST_SKIP() << why;
  ExpectCallerKept("cpu");
}

TEST(ProfilerLeafTest, TheCallerOfAFramelessLeafIsKeptWithTheItimerEngine) {
  std::string why;
  if (!leaf_test::LeafHasNoFrame(&why)) GTEST_SKIP() << why;
  ExpectCallerKept("itimer");
}

}  // namespace
}  // namespace flamekit
