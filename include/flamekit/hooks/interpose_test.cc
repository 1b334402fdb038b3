// SPDX-License-Identifier: Apache-2.0
// The hooks' countdown across captures, in a program linked with them
// (HookRuntime driven directly, real malloc/free): every allocation hook
// counts down a thread-local budget whatever the event, handed out in
// chunks of 64 KiB (kBudgetChunkBytes), and a capture redraws the budgets
// of the one before. These would fail if a thread kept a budget drawn for
// another capture's mean, if a chunk crossing were taken for a sample, or
// if anything were recorded with the event off. Run time: ~0.3 s.

#include <stdint.h>
#include <stdlib.h>

#include <atomic>
#include <vector>

#include "flamekit/hooks/hook_runtime.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

std::atomic<uintptr_t> g_sink{0};

// `blocks` malloc/free pairs of `size` bytes.
__attribute__((noinline)) void Churn(size_t blocks, size_t size) {
  for (size_t i = 0; i < blocks; ++i) {
    void* p = malloc(size);
    g_sink.fetch_xor(reinterpret_cast<uintptr_t>(p), std::memory_order_relaxed);
    free(p);
  }
}

struct Totals {
  uint64_t bytes = 0;
  uint64_t samples = 0;
};

Totals Take(HookRuntime* hooks) {
  std::vector<HookStack> stacks;
  HookStats stats = hooks->Snapshot(&stacks);
  Totals t;
  for (const HookStack& s : stacks) t.bytes += s.weight;
  t.samples = stats.samples;
  return t;
}

class InterposeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hooks_ = FindHookRuntime();
    ASSERT_NE(hooks_, nullptr) << "linked without //include/flamekit/hooks:interpose";
  }
  void TearDown() override {
    if (hooks_ != nullptr) hooks_->Disable();
  }
  Totals Capture(uint64_t mean, size_t blocks, size_t size) {
    HookConfig config;
    config.event = HookEvent::kAlloc;
    config.mean_bytes = mean;
    hooks_->Enable(config);
    Churn(blocks, size);
    hooks_->Disable();
    return Take(hooks_);
  }
  HookRuntime* hooks_ = nullptr;
};

TEST_F(InterposeTest, NothingIsRecordedWithTheEventOff) {
  Capture(4096, 100, 4096);  // leaves this thread a budget of 4 KiB mean
  const uint64_t before = Take(hooks_).samples;
  Churn(10000, 4096);  // 40 MB with no event on
  EXPECT_EQ(Take(hooks_).samples, before);
}

TEST_F(InterposeTest, ACaptureRedrawsTheBudgetOfTheOneBefore) {
  // A 1 GiB mean leaves this thread a budget that would outlast the next
  // capture (at most 4 MB) by far, were it kept.
  Capture(1ull << 30, 100, 4096);
  const Totals t = Capture(4096, 1000, 4096);  // 4 MB at one sample per 4 KiB
  // Within 25 %: ~1000 samples (3 % deviation), minus at most the 64 KiB
  // the thread may count down before it looks at the new capture.
  EXPECT_NEAR(static_cast<double>(t.bytes), 4096000.0, 0.25 * 4096000) << t.samples << " samples";
}

TEST_F(InterposeTest, BudgetsLongerThanAChunkAreNotCutShort) {
  // 1 GiB at a mean of 8 MiB: ~128 samples (9 % deviation); a chunk
  // crossing taken for a sample would give 128 times as many.
  const Totals t = Capture(8ull << 20, 262144, 4096);
  EXPECT_GT(t.samples, 64u);
  EXPECT_LT(t.samples, 256u);
  EXPECT_NEAR(static_cast<double>(t.bytes), 1073741824.0, 0.3 * 1073741824.0)
      << t.samples << " samples";
}

TEST_F(InterposeTest, EveryAllocationAtAMeanOfOne) {
  Capture(1ull << 30, 10, 64);
  const Totals t = Capture(1, 5000, 100);
  // Every one of them (the first may fall in the 64 KiB look-ahead: at
  // most 655 of 100 bytes).
  EXPECT_GE(t.samples, 5000u - 656u);
  EXPECT_LE(t.samples, 5000u + 50u);  // + the test's own few
}

}  // namespace
}  // namespace flamekit
