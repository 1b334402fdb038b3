// SPDX-License-Identifier: Apache-2.0
#include "flamekit/buffer/stack_ring.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;

std::unique_ptr<StackRing> MakeRing(size_t capacity) {
  absl::StatusOr<std::unique_ptr<StackRing>> ring = StackRing::Create(capacity);
  EXPECT_TRUE(ring.ok()) << ring.status();
  return ring.ok() ? std::move(*ring) : nullptr;
}

TEST(StackRingTest, CreateRejectsBadCapacity) {
  EXPECT_THAT(StackRing::Create(0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StackRing::Create(1).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StackRing::Create(1000).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(StackRing::Create(StackRing::kMaxCapacity * 2).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(StackRing::Create(2).ok());
}

TEST(StackRingTest, RoundTripsRecordFields) {
  std::unique_ptr<StackRing> ring = MakeRing(4);
  ASSERT_NE(ring, nullptr);
  uint64_t frames[] = {0x1000, 0x2000, 0x3000};
  ASSERT_TRUE(ring->TryPush(42, 123456, 7, frames, 3, 0, ThreadState::kSyscall,
                            202, 0x7fff0000));
  int seen = 0;
  ring->Drain([&](const StackRecord& r) {
    ++seen;
    EXPECT_EQ(r.tid, 42u);
    EXPECT_EQ(r.timestamp_ns, 123456u);
    EXPECT_EQ(r.weight, 7u);
    EXPECT_EQ(r.sp, 0x7fff0000u);
    EXPECT_EQ(r.state, ThreadState::kSyscall);
    EXPECT_EQ(r.syscall_number, 202);
    EXPECT_FALSE(r.truncated());
    ASSERT_EQ(r.frame_count, 3u);
    EXPECT_EQ(r.frames[0], 0x1000u);
    EXPECT_EQ(r.frames[2], 0x3000u);
  });
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(ring->Drain([](const StackRecord&) {}), 0u);
}

TEST(StackRingTest, DropsWhenFull) {
  std::unique_ptr<StackRing> ring = MakeRing(8);
  ASSERT_NE(ring, nullptr);
  uint64_t frame = 1;
  for (int i = 0; i < 8; ++i) {
    frame = static_cast<uint64_t>(i);
    EXPECT_TRUE(ring->TryPush(1, 0, 1, &frame, 1, 0)) << "push " << i;
  }
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(ring->TryPush(1, 0, 1, &frame, 1, 0));
  EXPECT_EQ(ring->dropped(), 5u);
  EXPECT_EQ(ring->pushed(), 8u);
  // Drain three, then exactly three more fit.
  std::vector<uint64_t> got;
  EXPECT_EQ(ring->Drain([&](const StackRecord& r) { got.push_back(r.frames[0]); }, 3),
            3u);
  EXPECT_THAT(got, ::testing::ElementsAre(0, 1, 2));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ring->TryPush(1, 0, 1, &frame, 1, 0));
  EXPECT_FALSE(ring->TryPush(1, 0, 1, &frame, 1, 0));
  EXPECT_EQ(ring->dropped(), 6u);
  EXPECT_EQ(ring->Drain([](const StackRecord&) {}), 8u);
}

TEST(StackRingTest, TruncatesAndMarksDeepStacks) {
  std::unique_ptr<StackRing> ring = MakeRing(2);
  ASSERT_NE(ring, nullptr);
  std::vector<uint64_t> frames(kMaxStackFrames + 10);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = i + 1;
  ASSERT_TRUE(ring->TryPush(1, 0, 1, frames.data(), frames.size(), 0));
  ring->Drain([&](const StackRecord& r) {
    EXPECT_TRUE(r.truncated());
    EXPECT_EQ(r.frame_count, kMaxStackFrames);
    EXPECT_EQ(r.frames[kMaxStackFrames - 1], kMaxStackFrames);
  });
}

// Writers encode (writer, sequence) in the frames; the reader checks every
// accepted record arrives once, intact, in per-writer order.
TEST(StackRingTest, ManyWritersOneReader) {
  constexpr int kWriters = 4;
  constexpr uint64_t kPerWriter = 200000;
  std::unique_ptr<StackRing> ring = MakeRing(256);
  ASSERT_NE(ring, nullptr);
  std::atomic<int> done{0};
  std::atomic<uint64_t> accepted{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      uint64_t frames[8];
      for (uint64_t i = 0; i < kPerWriter; ++i) {
        for (int k = 0; k < 8; ++k) frames[k] = (i << 8) | (w << 4) | k;
        if (ring->TryPush(w, i, 1, frames, 1 + i % 8, 0)) {
          accepted.fetch_add(1, std::memory_order_relaxed);
        }
      }
      done.fetch_add(1);
    });
  }
  std::vector<int64_t> last(kWriters, -1);
  uint64_t drained = 0;
  bool bad = false;
  auto check = [&](const StackRecord& r) {
    ++drained;
    if (r.tid >= kWriters || r.frame_count != 1 + r.timestamp_ns % 8) {
      bad = true;
      return;
    }
    if (static_cast<int64_t>(r.timestamp_ns) <= last[r.tid]) bad = true;
    last[r.tid] = static_cast<int64_t>(r.timestamp_ns);
    for (uint32_t k = 0; k < r.frame_count; ++k) {
      if (r.frames[k] != ((r.timestamp_ns << 8) | (r.tid << 4) | k)) bad = true;
    }
  };
  while (done.load() < kWriters) ring->Drain(check);
  for (auto& t : writers) t.join();
  ring->Drain(check);
  EXPECT_FALSE(bad) << "a record arrived torn or out of order";
  EXPECT_EQ(drained, accepted.load());
  EXPECT_EQ(ring->pushed(), accepted.load());
  EXPECT_EQ(ring->pushed() + ring->dropped(), kWriters * kPerWriter);
}

// A SIGPROF storm: many threads are interrupted over and over and push from
// the handler while one thread drains.
StackRing* g_storm_ring = nullptr;
std::atomic<uint64_t> g_storm_handled{0};

void StormHandler(int, siginfo_t*, void*) {
  uint64_t frames[16];
  uint32_t tid = static_cast<uint32_t>(syscall(SYS_gettid));
  for (int k = 0; k < 16; ++k) frames[k] = (uint64_t{tid} << 16) | k;
  g_storm_ring->TryPush(tid, 0, 1, frames, 16, 0);
  g_storm_handled.fetch_add(1, std::memory_order_relaxed);
}

TEST(StackRingTest, SignalStormOverManyThreads) {
  std::unique_ptr<StackRing> ring = MakeRing(1024);
  ASSERT_NE(ring, nullptr);
  g_storm_ring = ring.get();
  struct sigaction action = {}, previous = {};
  action.sa_sigaction = StormHandler;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  ASSERT_EQ(sigaction(SIGPROF, &action, &previous), 0);

  constexpr int kThreads = 8;
  std::atomic<bool> stop{false};
  std::vector<pid_t> tids(kThreads, 0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      tids[i] = static_cast<pid_t>(syscall(SYS_gettid));
      ready.fetch_add(1);
      // Also push from the interrupted code itself, so handlers interrupt
      // pushes in progress.
      uint64_t frames[4] = {1, 2, 3, 4};
      while (!stop.load(std::memory_order_relaxed)) {
        ring->TryPush(0, 0, 1, frames, 4, 0);
        // Leave the reader room for the handlers' records.
        for (volatile int spin = 0; spin < 200; spin = spin + 1) {
        }
      }
    });
  }
  while (ready.load() < kThreads) std::this_thread::yield();
  std::atomic<bool> stop_killer{false};
  std::thread killer([&] {
    while (!stop_killer.load(std::memory_order_relaxed)) {
      for (pid_t tid : tids) syscall(SYS_tgkill, getpid(), tid, SIGPROF);
    }
  });
  uint64_t drained = 0, from_handler = 0;
  bool bad = false;
  // Until the handlers ran two thousand times (a busy machine gives the
  // threads little CPU), for at least one second, at most 30 seconds.
  auto start = std::chrono::steady_clock::now();
  while (true) {
    drained += ring->Drain([&](const StackRecord& r) {
      if (r.tid == 0) return;
      ++from_handler;
      if (r.frame_count != 16) bad = true;
      for (int k = 0; k < 16; ++k) {
        if (r.frames[k] != ((uint64_t{r.tid} << 16) | k)) bad = true;
      }
    });
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed > std::chrono::seconds(30)) break;
    if (g_storm_handled.load() >= 2000 && elapsed > std::chrono::seconds(1)) break;
  }
  stop_killer = true;
  killer.join();
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_EQ(sigaction(SIGPROF, &previous, nullptr), 0);
  drained += ring->Drain([&](const StackRecord& r) { from_handler += r.tid != 0; });
  EXPECT_FALSE(bad) << "a record pushed from a handler arrived torn";
  EXPECT_GE(g_storm_handled.load(), 2000u) << "the storm delivered too few signals";
  EXPECT_GT(from_handler, 0u) << "no handler push got into the ring";
  EXPECT_EQ(drained, ring->pushed());
  g_storm_ring = nullptr;
}

}  // namespace
}  // namespace flamekit
