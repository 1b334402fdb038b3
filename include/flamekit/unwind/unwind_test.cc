// SPDX-License-Identifier: Apache-2.0
// Tests of ucontext_regs.h, stack_bounds.h and frame_pointer.h on this
// machine's real stacks and signals.

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "flamekit/testing/status_matchers.h"
#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/stack_bounds.h"
#include "flamekit/unwind/ucontext_regs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

constexpr size_t kTestMaxFrames = 128;

// ---- stack_bounds.h ----

TEST(StackBoundsTest, CurrentThreadContainsLocals) {
  int local = 0;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StackBounds bounds, CurrentThreadStackBounds());
  EXPECT_TRUE(bounds.Contains(reinterpret_cast<uint64_t>(&local), sizeof(local)));
  EXPECT_FALSE(bounds.Contains(0x10));
  std::thread([] {
    int other = 0;
    absl::StatusOr<StackBounds> b = CurrentThreadStackBounds();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_TRUE(b->Contains(reinterpret_cast<uint64_t>(&other)));
  }).join();
}

TEST(StackBoundsTest, FromMapsFindsTheStackMapping) {
  int local = 0;
  uint64_t sp = reinterpret_cast<uint64_t>(&local);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StackBounds bounds, StackBoundsFromMaps(sp));
  EXPECT_TRUE(bounds.Contains(sp));
  std::thread([] {
    int other = 0;
    uint64_t thread_sp = reinterpret_cast<uint64_t>(&other);
    absl::StatusOr<StackBounds> from_maps = StackBoundsFromMaps(thread_sp);
    ASSERT_TRUE(from_maps.ok()) << from_maps.status();
    absl::StatusOr<StackBounds> from_pthread = CurrentThreadStackBounds();
    ASSERT_TRUE(from_pthread.ok());
    EXPECT_TRUE(from_maps->Contains(thread_sp));
    // The pthread stack lies inside the mapping (which may be wider).
    EXPECT_LE(from_maps->low, from_pthread->low);
    EXPECT_GE(from_maps->high, from_pthread->high);
  }).join();
  EXPECT_THAT(StackBoundsFromMaps(0x10).status(),
              testing::StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(StackBoundsFromMaps(sp, "/nonexistent/maps").status(),
              testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST(ThreadStackTableTest, InsertFindEraseReinsert) {
  ThreadStackTable table(64);
  StackBounds b;
  EXPECT_FALSE(table.Find(5, &b));
  EXPECT_TRUE(table.Insert(5, {100, 200}));
  EXPECT_TRUE(table.Insert(5 + 64, {300, 400}));  // same bucket
  ASSERT_TRUE(table.Find(5, &b));
  EXPECT_EQ(b.low, 100u);
  ASSERT_TRUE(table.Find(69, &b));
  EXPECT_EQ(b.high, 400u);
  table.Erase(5);
  EXPECT_FALSE(table.Find(5, &b));
  ASSERT_TRUE(table.Find(69, &b)) << "erase must not cut the probe chain";
  EXPECT_TRUE(table.Insert(69, {500, 600}));
  ASSERT_TRUE(table.Find(69, &b));
  EXPECT_EQ(b.low, 500u);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_FALSE(table.Insert(0, {1, 2}));
}

TEST(ThreadStackTableTest, RefusesWhenFullAndReusesTombstones) {
  ThreadStackTable table(16);
  int inserted = 0;
  for (uint32_t tid = 1; tid <= 32; ++tid) inserted += table.Insert(tid, {tid, tid + 1});
  EXPECT_EQ(inserted, 12);  // three quarters of 16
  for (uint32_t tid = 1; tid <= 12; ++tid) table.Erase(tid);
  EXPECT_EQ(table.size(), 0u);
  for (uint32_t tid = 100; tid < 112; ++tid) {
    EXPECT_TRUE(table.Insert(tid, {tid, tid + 1})) << tid;
  }
  StackBounds b;
  for (uint32_t tid = 100; tid < 112; ++tid) {
    ASSERT_TRUE(table.Find(tid, &b));
    EXPECT_EQ(b.low, tid);
  }
}

// Readers never see bounds of one write mixed with another's.
TEST(ThreadStackTableTest, ConcurrentReadersSeeConsistentBounds) {
  ThreadStackTable table(256);
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, found{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      StackBounds b;
      while (!stop.load(std::memory_order_relaxed)) {
        for (uint32_t tid = 1; tid < 64; ++tid) {
          if (table.Find(tid, &b)) {
            found.fetch_add(1, std::memory_order_relaxed);
            if (b.high != b.low * 2 + tid) bad.fetch_add(1);
          }
        }
      }
    });
  }
  // At least 20,000 writes, and until the readers (which a busy machine may
  // start late) have found entries many times; at most 20 s.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (uint64_t round = 1;
       round < 20000 ||
       (found.load() < 100000 && std::chrono::steady_clock::now() < deadline);
       ++round) {
    uint32_t tid = 1 + round % 63;
    if (round % 3 == 0) {
      table.Erase(tid);
    } else {
      table.Insert(tid, {round, round * 2 + tid});
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(found.load(), 0);
}

// ---- frame_pointer.h ----

uint64_t g_return_addresses[8];
UnwindResult g_result;
uint64_t g_frames[kTestMaxFrames];

__attribute__((noinline)) void Level3() {
  g_return_addresses[3] = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  absl::StatusOr<StackBounds> bounds = CurrentThreadStackBounds();
  FramePointerStart start;
  start.pc = reinterpret_cast<uint64_t>(&Level3);
  start.fp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
  start.sp = start.fp;
  g_result = UnwindFramePointers(start, *bounds, g_frames, kTestMaxFrames);
  asm volatile("" ::: "memory");
}
__attribute__((noinline)) void Level2() {
  g_return_addresses[2] = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  Level3();
  asm volatile("" ::: "memory");
}
__attribute__((noinline)) void Level1() {
  g_return_addresses[1] = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  Level2();
  asm volatile("" ::: "memory");
}

TEST(FramePointerTest, WalksTheRealCallChain) {
  Level1();
  ASSERT_GE(g_result.frame_count, 5u);
  EXPECT_FALSE(g_result.truncated);
  EXPECT_EQ(g_frames[0], reinterpret_cast<uint64_t>(&Level3));
  EXPECT_EQ(g_frames[1], g_return_addresses[3]);  // in Level2
  EXPECT_EQ(g_frames[2], g_return_addresses[2]);  // in Level1
  EXPECT_EQ(g_frames[3], g_return_addresses[1]);  // in this test
}

__attribute__((noinline)) int Recurse(int depth, UnwindResult* result,
                                      uint64_t* frames, size_t max) {
  if (depth == 0) {
    absl::StatusOr<StackBounds> bounds = CurrentThreadStackBounds();
    FramePointerStart start{1, reinterpret_cast<uint64_t>(__builtin_frame_address(0)),
                            reinterpret_cast<uint64_t>(__builtin_frame_address(0))};
    *result = UnwindFramePointers(start, *bounds, frames, max);
    return 0;
  }
  int r = Recurse(depth - 1, result, frames, max);
  asm volatile("" ::: "memory");
  return r + 1;
}

TEST(FramePointerTest, TruncatesAtMaxFramesAndMarksIt) {
  UnwindResult result;
  uint64_t frames[16];
  Recurse(100, &result, frames, 16);
  EXPECT_EQ(result.frame_count, 16u);
  EXPECT_TRUE(result.truncated);
  // The ten-thousand-frame recursion the profiler must survive.
  std::vector<uint64_t> big(kTestMaxFrames);
  std::thread([&] { Recurse(10000, &result, big.data(), big.size()); }).join();
  EXPECT_EQ(result.frame_count, kTestMaxFrames);
  EXPECT_TRUE(result.truncated);
  // Room for everything: not truncated.
  std::vector<uint64_t> many(200);
  Recurse(20, &result, many.data(), many.size());
  EXPECT_FALSE(result.truncated);
  EXPECT_GT(result.frame_count, 21u);
}

TEST(FramePointerTest, StopsAtBadFramesWithoutFaulting) {
  // A fake stack of frame records we control.
  alignas(16) uint64_t fake[64] = {};
  StackBounds bounds{reinterpret_cast<uint64_t>(&fake[0]),
                     reinterpret_cast<uint64_t>(&fake[64])};
  auto at = [&](int i) { return reinterpret_cast<uint64_t>(&fake[i]); };
  uint64_t frames[32];
  // A good chain: 0 -> 4 -> 8 -> null.
  fake[0] = at(4); fake[1] = 0x1111;
  fake[4] = at(8); fake[5] = 0x2222;
  fake[8] = 0;     fake[9] = 0x3333;
  UnwindResult r = UnwindFramePointers({0xaaaa, at(0), at(0)}, bounds, frames, 32);
  ASSERT_EQ(r.frame_count, 4u);
  EXPECT_THAT(std::vector<uint64_t>(frames, frames + 4),
              ::testing::ElementsAre(0xaaaa, 0x1111, 0x2222, 0x3333));
  // A cycle (fp points to itself) stops after one frame.
  fake[0] = at(0);
  r = UnwindFramePointers({0xaaaa, at(0), at(0)}, bounds, frames, 32);
  EXPECT_EQ(r.frame_count, 2u);
  EXPECT_FALSE(r.truncated);
  // Going down the stack, misaligned, or out of bounds: stop, no load.
  fake[0] = at(4); fake[4] = at(2);
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(0)}, bounds, frames, 32).frame_count, 3u);
  fake[4] = at(8) + 3;
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(0)}, bounds, frames, 32).frame_count, 3u);
  fake[4] = 0xdead0000;  // unmapped
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(0)}, bounds, frames, 32).frame_count, 3u);
  fake[4] = at(63);  // record would straddle the upper bound
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(0)}, bounds, frames, 32).frame_count, 3u);
  // A frame pointer below sp is not followed.
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(8)}, bounds, frames, 32).frame_count, 1u);
  // Unknown bounds: the leaf only.
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(0)}, StackBounds{}, frames, 32).frame_count,
            1u);
  EXPECT_EQ(UnwindFramePointers({1, at(0), at(0)}, bounds, frames, 0).frame_count, 0u);
}

TEST(FramePointerTest, RandomFramePointersNeverFault) {
  int local = 0;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StackBounds bounds, CurrentThreadStackBounds());
  std::mt19937_64 random(42);
  uint64_t frames[kTestMaxFrames];
  uint64_t here = reinterpret_cast<uint64_t>(&local);
  for (int i = 0; i < 200000; ++i) {
    uint64_t fp = (i % 2 == 0) ? random()
                               : here - 4096 + (random() % (bounds.high - here + 8192));
    UnwindResult r = UnwindFramePointers({1, fp, here - 8192}, bounds, frames,
                                         kTestMaxFrames);
    ASSERT_GE(r.frame_count, 1u);
  }
}

// ---- ucontext_regs.h ----

std::atomic<bool> g_got_signal{false};
MachineRegisters g_regs;
std::atomic<bool> g_in_syscall{false};
std::atomic<int> g_syscall_number{-2};

void RecordRegisters(int, siginfo_t*, void* ucontext) {
  ReadMachineRegisters(ucontext, &g_regs);
  int32_t number = -1;
  g_in_syscall = InterruptedSystemCall(ucontext, &number);
  g_syscall_number = number;
  g_got_signal = true;
}

class UcontextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kHaveMachineRegisters) GTEST_SKIP() << "no register layout for this CPU";
    struct sigaction action = {};
    action.sa_sigaction = RecordRegisters;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR2, &action, &previous_), 0);
    g_got_signal = false;
  }
  void TearDown() override { sigaction(SIGUSR2, &previous_, nullptr); }
  struct sigaction previous_ = {};
};

TEST_F(UcontextTest, RunningThreadRegistersAreOnItsStack) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> stop{false};
  StackBounds bounds;
  std::thread spinner([&] {
    bounds = *CurrentThreadStackBounds();
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    volatile uint64_t x = 0;
    while (!stop.load(std::memory_order_relaxed)) x = x + 1;
  });
  while (tid.load() == 0) std::this_thread::yield();
  syscall(SYS_tgkill, getpid(), tid.load(), SIGUSR2);
  while (!g_got_signal.load()) std::this_thread::yield();
  stop = true;
  spinner.join();
  EXPECT_TRUE(bounds.Contains(g_regs.sp)) << std::hex << g_regs.sp;
  EXPECT_NE(g_regs.pc, 0u);
  EXPECT_FALSE(g_in_syscall.load());
}

TEST_F(UcontextTest, BlockedThreadIsInSystemCall) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads and cannot fork a "
                  "multi-threaded process";
#endif
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::atomic<pid_t> tid{0};
  std::thread reader([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    char c;
    ssize_t n = read(pipe_fds[0], &c, 1);  // restarted after the handler
    EXPECT_EQ(n, 1);
  });
  while (tid.load() == 0) std::this_thread::yield();
  usleep(100 * 1000);  // let it block in read()
  syscall(SYS_tgkill, getpid(), tid.load(), SIGUSR2);
  while (!g_got_signal.load()) std::this_thread::yield();
  ASSERT_EQ(write(pipe_fds[1], "x", 1), 1);
  reader.join();
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_TRUE(g_in_syscall.load());
  EXPECT_EQ(g_syscall_number.load(), SYS_read);
}

// poll() is never restarted after a handler: it returns EINTR and the
// number is gone from the registers, but libc loads it just before the call.
TEST_F(UcontextTest, CallThatReturnsEintrIsStillInSystemCallWithItsNumber) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to blocked threads";
#endif
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::atomic<pid_t> tid{0};
  std::atomic<int> result{0}, error{0};
  std::thread poller([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    struct pollfd p = {pipe_fds[0], POLLIN, 0};
    result = poll(&p, 1, -1);
    error = errno;
  });
  while (tid.load() == 0) std::this_thread::yield();
  usleep(100 * 1000);  // let it block in poll()
  syscall(SYS_tgkill, getpid(), tid.load(), SIGUSR2);
  poller.join();
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  ASSERT_EQ(result.load(), -1);
  ASSERT_EQ(error.load(), EINTR);
  EXPECT_TRUE(g_in_syscall.load());
#if defined(__x86_64__)
  EXPECT_EQ(g_syscall_number.load(), SYS_poll);
#endif
}

}  // namespace
}  // namespace flamekit
