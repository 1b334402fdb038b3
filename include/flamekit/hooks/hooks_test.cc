// SPDX-License-Identifier: Apache-2.0
// The hooks' parts on their own: the Poisson sampler's rate and unbiased
// weights, and the tables' bounds, drops and concurrent use.

#include <stdint.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "flamekit/hooks/live_table.h"
#include "flamekit/hooks/poisson_sampler.h"
#include "flamekit/hooks/stack_table.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

TEST(PoissonSamplerTest, ZeroFilledStateIsValidAndSamplesAtTheMeanRate) {
  PoissonSampler s{};  // as a new thread's TLS
  const uint64_t mean = 512 * 1024;
  const uint64_t size = 64;
  const uint64_t n = 20000000;  // 1.28 GB of 64-byte allocations
  uint64_t sampled = 0;
  SampleWeight total;
  for (uint64_t i = 0; i < n; ++i) {
    if (s.Record(size, mean)) {
      ++sampled;
      SampleWeight w = EstimateWeight(size, mean);
      total.bytes += w.bytes;
      total.count += w.count;
    }
  }
  const double expected = static_cast<double>(n * size) / mean;  // ~2441
  EXPECT_NEAR(static_cast<double>(sampled), expected, 5 * std::sqrt(expected));
  // The weights estimate the true totals (within 10 %).
  EXPECT_NEAR(static_cast<double>(total.bytes), static_cast<double>(n * size), 0.1 * n * size);
  EXPECT_NEAR(static_cast<double>(total.count), static_cast<double>(n), 0.1 * n);
}

TEST(PoissonSamplerTest, LargeAllocationsAreAlwaysSampledAtTheirSize) {
  PoissonSampler s{};
  s.Seed(7);
  int sampled = 0;
  for (int i = 0; i < 100; ++i) sampled += s.Record(64 << 20, 512 * 1024) ? 1 : 0;
  EXPECT_GE(sampled, 99);
  SampleWeight w = EstimateWeight(64 << 20, 512 * 1024);
  EXPECT_EQ(w.bytes, 64u << 20);
  EXPECT_EQ(w.count, 1u);
}

TEST(PoissonSamplerTest, DitheredCountsAreUnbiased) {
  // 4 KiB at a 64 KiB mean: 1/p = 16.504, which rounds to 17 (+3 %). With a
  // uniform dither the sum over 20,000 samples is within 0.3 % of the truth
  // (the dither's own spread: sqrt(0.25 * 20000) / 330000 = 0.02 %).
  const double truth = 1.0 / (1.0 - exp(-4096.0 / 65536.0));
  uint64_t rounded = 0, dithered = 0;
  PoissonSampler rng{};
  rng.Seed(11);
  for (int i = 0; i < 20000; ++i) {
    rng.NextBudget(2);  // steps the generator
    rounded += EstimateWeight(4096, 65536).count;
    dithered += EstimateWeight(4096, 65536, static_cast<uint32_t>(rng.rng >> 32)).count;
  }
  EXPECT_NEAR(static_cast<double>(rounded), 17.0 * 20000, 1);
  EXPECT_NEAR(static_cast<double>(dithered), truth * 20000, 0.003 * truth * 20000);
}

TEST(PoissonSamplerTest, MeanOfOneSamplesEverything) {
  PoissonSampler s{};
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(s.Record(1, 1));
  EXPECT_EQ(EstimateWeight(10, 1).bytes, 10u);
}

// The hooks' split of Record(): Take() inline, Crossed() out of line,
// Untake() for the allocations that must not count (their own, failed).
TEST(PoissonSamplerTest, TakeCrossedUntakeAsTheHooksUseThem) {
  PoissonSampler s{};
  EXPECT_FALSE(s.Take(64));  // a zero state is never positive: slow path
  EXPECT_FALSE(s.Crossed(64, 1ull << 40));  // fresh: counted against a first budget
  const int64_t budget = s.bytes_left;
  ASSERT_GT(budget, 0);
  EXPECT_TRUE(s.Take(100));
  EXPECT_EQ(s.bytes_left, budget - 100);
  s.Untake(100);
  EXPECT_EQ(s.bytes_left, budget);
  // Crossing: the allocation is sampled and a new budget drawn.
  EXPECT_FALSE(s.Take(static_cast<uint64_t>(budget)));
  EXPECT_TRUE(s.Crossed(static_cast<uint64_t>(budget), 1ull << 40));
  EXPECT_GT(s.bytes_left, 0);
  // Sizes of 2^63 and more cross (the compare is unsigned) and take nothing.
  PoissonSampler big{};
  big.bytes_left = 10;
  EXPECT_FALSE(big.Take(~0ull));  // crosses, and takes nothing
  EXPECT_EQ(big.bytes_left, 10);
  EXPECT_FALSE(big.Take(10));      // the budget must stay positive
  EXPECT_TRUE(big.Take(9));
  EXPECT_EQ(big.bytes_left, 1);
}

TEST(StackTableTest, FoldsEqualStacksAndDropsWhenFull) {
  StackTable table(4);
  ASSERT_TRUE(table.ok());
  uint64_t a[2] = {1, 2}, b[2] = {3, 4};
  const int32_t slot = table.Add(a, 2, 100, 1);
  ASSERT_GE(slot, 0);
  EXPECT_EQ(table.Add(a, 2, 50, 2), slot);
  EXPECT_GE(table.Add(b, 2, 7, 1), 0);
  int stacks = 0;
  uint64_t bytes_a = 0;
  table.ForEach([&](const uint64_t* pcs, uint32_t depth, uint64_t bytes, uint64_t count,
                    int32_t) {
    ++stacks;
    if (depth == 2 && pcs[0] == 1) {
      bytes_a = bytes;
      EXPECT_EQ(count, 3u);
    }
  });
  EXPECT_EQ(stacks, 2);
  EXPECT_EQ(bytes_a, 150u);
  // 4 slots: the fifth distinct stack cannot fit.
  for (uint64_t i = 10; i < 13; ++i) {
    uint64_t c[1] = {i};
    table.Add(c, 1, 1, 1);
  }
  EXPECT_EQ(table.dropped(), 1u);
  table.Clear();
  stacks = 0;
  table.ForEach([&](const uint64_t*, uint32_t, uint64_t, uint64_t, int32_t) { ++stacks; });
  EXPECT_EQ(stacks, 0);
  // ForEach() reads the list of claimed slots: Clear() empties it, and
  // the table fills again from the start.
  for (uint64_t i = 20; i < 24; ++i) {
    uint64_t c[1] = {i};
    EXPECT_GE(table.Add(c, 1, 1, 1), 0);
  }
  stacks = 0;
  table.ForEach([&](const uint64_t*, uint32_t, uint64_t, uint64_t, int32_t) { ++stacks; });
  EXPECT_EQ(stacks, 4);
  EXPECT_EQ(table.dropped(), 0u);
}

TEST(StackTableTest, ConcurrentAddsLoseNothing) {
  StackTable table(1024);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (uint64_t i = 0; i < 100000; ++i) {
        uint64_t pcs[3] = {i % 50 + 1, 7, 9};
        table.Add(pcs, 3, 2, 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  uint64_t bytes = 0, count = 0;
  table.ForEach([&](const uint64_t*, uint32_t, uint64_t b, uint64_t c, int32_t) {
    bytes += b;
    count += c;
  });
  EXPECT_EQ(count, 400000u);
  EXPECT_EQ(bytes, 800000u);
  EXPECT_EQ(table.dropped(), 0u);
}

TEST(LiveTableTest, InsertRemoveAndBound) {
  LiveTable live(8);
  EXPECT_FALSE(live.Remove(0x1000));  // empty: one load
  EXPECT_TRUE(live.Insert(0x1000, 64, 3, 11));
  EXPECT_TRUE(live.Insert(0x2000, 32, 4, 12));
  EXPECT_EQ(live.size(), 2u);
  EXPECT_TRUE(live.Remove(0x1000));
  EXPECT_FALSE(live.Remove(0x1000));
  uint64_t total = 0;
  live.ForEach([&](uintptr_t address, uint64_t bytes, int32_t slot, uint64_t) {
    EXPECT_EQ(address, 0x2000u);
    EXPECT_EQ(slot, 4);
    total += bytes;
  });
  EXPECT_EQ(total, 32u);
  // Capacity 8: a ninth live entry is dropped, and counted.
  for (uintptr_t a = 1; a <= 8; ++a) live.Insert(a << 12 | 0x10000, 1, 0, 0);
  EXPECT_EQ(live.size(), 8u);
  EXPECT_EQ(live.dropped(), 1u);
  EXPECT_EQ(live.bytes_reserved(), 8 * 32u);
}

TEST(LiveTableTest, ConcurrentInsertAndRemoveBalance) {
  LiveTable live(1 << 16);
  std::vector<std::thread> threads;
  for (uintptr_t t = 0; t < 4; ++t) {
    threads.emplace_back([&live, t] {
      for (uintptr_t i = 0; i < 200000; ++i) {
        const uintptr_t address = ((t << 40) | (i % 1000)) << 4 | 0x100000;
        ASSERT_TRUE(live.Insert(address, 16, 1, 0));
        ASSERT_TRUE(live.Remove(address));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(live.size(), 0u);
  EXPECT_EQ(live.dropped(), 0u);
}

}  // namespace
}  // namespace flamekit
