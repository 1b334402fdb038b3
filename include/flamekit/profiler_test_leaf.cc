// SPDX-License-Identifier: Apache-2.0
#include "flamekit/profiler_test_leaf.h"

#include "flamekit/testing/thread_cpu.h"

namespace flamekit {
namespace leaf_test {
namespace {

using ::flamekit::testing::ThreadCpuSeconds;

// The loop both callers run: the sum keeps the call from being a tail call
// (a tail call would leave no caller to find).
inline uint64_t CallLeafUntil(double cpu_seconds) {
  const double until = ThreadCpuSeconds() + cpu_seconds;
  uint64_t sum = 0;
  while (ThreadCpuSeconds() < until) sum += FramelessLeaf(200000);
  return sum;
}

}  // namespace

__attribute__((noinline)) uint64_t FramelessLeaf(uint64_t rounds) {
  uint64_t x = rounds;
  for (uint64_t i = 0; i < rounds; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    asm volatile("" : "+r"(x));  // keeps the loop from being folded away
  }
  return x;
}

__attribute__((noinline)) uint64_t FirstCallerOfTheLeaf(double cpu_seconds) {
  return CallLeafUntil(cpu_seconds) + 1;
}

__attribute__((noinline)) uint64_t SecondCallerOfTheLeaf(double cpu_seconds) {
  return CallLeafUntil(cpu_seconds) + 2;
}

}  // namespace leaf_test
}  // namespace flamekit
