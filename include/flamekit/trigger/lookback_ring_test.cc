// SPDX-License-Identifier: Apache-2.0
#include "flamekit/trigger/lookback_ring.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "absl/time/clock.h"

namespace flamekit {
namespace {

LookbackSample At(absl::Time t, uint64_t weight = 1) {
  LookbackSample s;
  s.time = t;
  s.tid = 7;
  s.frames = {0x1000, 0x2000};
  s.weight = weight;
  return s;
}

TEST(LookbackRingTest, KeepsOnlyTheWindowOldestFirst) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  LookbackRing ring(absl::Seconds(2), 100);
  for (int i = 0; i < 50; ++i) ring.Add(At(t0 + absl::Milliseconds(100 * i), i));
  absl::Time now = t0 + absl::Milliseconds(4900);
  std::vector<LookbackSample> snap = ring.Snapshot(now);
  // Samples at 2.9 s .. 4.9 s: 21 of them.
  ASSERT_EQ(snap.size(), 21u);
  EXPECT_EQ(snap.front().time, t0 + absl::Milliseconds(2900));
  EXPECT_EQ(snap.back().time, now);
  for (size_t i = 1; i < snap.size(); ++i) EXPECT_LT(snap[i - 1].time, snap[i].time);
  EXPECT_EQ(snap.front().frames, (std::vector<uint64_t>{0x1000, 0x2000}));
  EXPECT_EQ(ring.overwritten(), 0u);
  // Aged-out samples were dropped on Add, not kept around.
  EXPECT_LE(ring.size(), 21u);
}

TEST(LookbackRingTest, OverwritesTheOldestWhenFullAndCounts) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  LookbackRing ring(absl::Seconds(10), 8);
  for (int i = 0; i < 20; ++i) ring.Add(At(t0 + absl::Milliseconds(i), i));
  EXPECT_EQ(ring.size(), 8u);
  EXPECT_EQ(ring.overwritten(), 12u);
  std::vector<LookbackSample> snap = ring.Snapshot(t0 + absl::Milliseconds(19));
  ASSERT_EQ(snap.size(), 8u);
  EXPECT_EQ(snap.front().weight, 12u);
  EXPECT_EQ(snap.back().weight, 19u);
}

TEST(LookbackRingTest, SnapshotExcludesTheFutureAndClearEmpties) {
  absl::Time t0 = absl::FromUnixSeconds(1000);
  LookbackRing ring(absl::Seconds(5), 16);
  ring.Add(At(t0));
  ring.Add(At(t0 + absl::Seconds(1)));
  EXPECT_EQ(ring.Snapshot(t0 + absl::Milliseconds(500)).size(), 1u);
  ring.Clear();
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_TRUE(ring.Snapshot(t0 + absl::Seconds(1)).empty());
}

TEST(LookbackRingTest, CapacityForCoversTheWindowWithSlack) {
  size_t n = LookbackRing::CapacityFor(absl::Seconds(10), 19, 4);
  EXPECT_GE(n, 10u * 19 * 4);
  EXPECT_LE(n, 10u * 19 * 4 * 2);
  EXPECT_GE(LookbackRing(absl::Seconds(1), 0).capacity(), 1u);
}

TEST(LookbackRingTest, ConcurrentAddAndSnapshotStayConsistent) {
  LookbackRing ring(absl::Milliseconds(200), 64);
  std::atomic<bool> stop{false};
  std::atomic<int> added{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&] {
      while (!stop.load()) {
        ring.Add(At(absl::Now()));
        added.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 2000 || added.load() < 5000; ++i) {
    absl::Time now = absl::Now();
    std::vector<LookbackSample> snap = ring.Snapshot(now);
    ASSERT_LE(snap.size(), 64u);
    for (const LookbackSample& s : snap) {
      ASSERT_GE(s.time, now - absl::Milliseconds(200));
      ASSERT_LE(s.time, now);
      ASSERT_EQ(s.frames.size(), 2u);
    }
  }
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_LE(ring.size(), 64u);
}

}  // namespace
}  // namespace flamekit
