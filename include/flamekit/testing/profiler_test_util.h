// SPDX-License-Identifier: Apache-2.0
// File: profiler_test_util.h
//
// Helpers the embedded profiler's tests share: a CPU-bound spin the
// profiler must see, the samples of stacks holding a frame, and a short
// text of a profile for failure messages. Test code only; SpinFor() runs on
// the calling thread, the others only read the Profile.

#ifndef FLAMEKIT_TESTING_PROFILER_TEST_UTIL_H_
#define FLAMEKIT_TESTING_PROFILER_TEST_UTIL_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "flamekit/profile/profile.h"
#include "flamekit/testing/thread_cpu.h"

namespace flamekit {
namespace testing {

// Burns `seconds` of this thread's CPU time in a frame of its own.
__attribute__((noinline)) inline uint64_t SpinFor(double seconds) {
  double until = ThreadCpuSeconds() + seconds;
  volatile uint64_t x = 0;
  while (ThreadCpuSeconds() < until) {
    for (int i = 0; i < 10000; ++i) x = x + i;
  }
  return x;
}

// Samples of stacks that contain a frame whose name contains `needle`.
inline uint64_t SamplesWith(const Profile& profile, absl::string_view needle) {
  uint64_t n = 0;
  profile.ForEachStack([&](absl::Span<const FrameId> stack, uint64_t count) {
    for (FrameId id : stack) {
      if (absl::StrContains(profile.frame(id).name, needle)) {
        n += count;
        return;
      }
    }
  });
  return n;
}

// The engine, its note, the sample total and the heaviest stacks.
inline std::string Describe(const Profile& profile, size_t max_stacks = 15) {
  std::string out = absl::StrCat("engine=", profile.metadata().engine, " note=",
                                 profile.metadata().engine_note,
                                 " samples=", profile.total_samples(), "\n");
  size_t shown = 0;
  for (size_t i : profile.SortedStackIndices()) {
    if (shown++ == max_stacks) break;
    std::vector<std::string> names;
    for (FrameId id : profile.stack(i)) names.push_back(profile.frame(id).name);
    absl::StrAppend(&out, absl::StrJoin(names, ";"), " ", profile.stack_count_at(i), "\n");
  }
  return out;
}

}  // namespace testing
}  // namespace flamekit

#endif  // FLAMEKIT_TESTING_PROFILER_TEST_UTIL_H_
