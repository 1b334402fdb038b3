// SPDX-License-Identifier: Apache-2.0
// A program without the hooks asks for `alloc`: one clear refusal that
// says how to get them, not an empty profile. Run time: milliseconds.

#include "absl/strings/match.h"
#include "flamekit/profiler.h"
#include "gtest/gtest.h"

namespace {

TEST(ProfilerNoHooksTest, AllocWithoutHooksSaysHowToGetThem) {
  for (const char* event : {"alloc", "live", "lock"}) {
    flamekit::ProfilerOptions options;
    options.event = event;
    absl::Status status = flamekit::Profiler::Global().Start(options);
    EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "hooks:interpose")) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "LD_PRELOAD")) << status;
    EXPECT_FALSE(flamekit::Profiler::Global().IsRunning());
  }
  EXPECT_TRUE(flamekit::Profiler::HookEvents().empty());
}

}  // namespace
