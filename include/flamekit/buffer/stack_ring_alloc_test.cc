// SPDX-License-Identifier: Apache-2.0
// Counts every heap allocation (operator new and malloc, replaced for this
// binary) made while TryPush() and Drain() run: TryPush must make none.

#include <malloc.h>
#include <stdlib.h>

#include <atomic>
#include <new>

#include "flamekit/buffer/stack_ring.h"
#include "gtest/gtest.h"

extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void __libc_free(void*);

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

extern "C" void* malloc(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, n);
}
extern "C" void free(void* p) { __libc_free(p); }

void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = __libc_malloc(n ? n : 1);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }

namespace flamekit {
namespace {

TEST(StackRingAllocTest, CounterSeesAllocations) {
  long before = g_allocations.load();
  int* p = new int(3);
  void* q = malloc(16);
  EXPECT_GE(g_allocations.load() - before, 2);
  free(q);
  delete p;
}

TEST(StackRingAllocTest, TryPushAndDrainDoNotAllocate) {
  auto ring = StackRing::Create(64);
  ASSERT_TRUE(ring.ok());
  uint64_t frames[kMaxStackFrames + 4];
  for (size_t i = 0; i < kMaxStackFrames + 4; ++i) frames[i] = i;
  uint64_t sum = 0;
  long before = g_allocations.load();
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 70; ++i) {  // 6 of every 70 are dropped (ring full)
      (*ring)->TryPush(1, i, 1, frames, 1 + (i * 7) % (kMaxStackFrames + 4), 0);
    }
    (*ring)->Drain([&](const StackRecord& r) { sum += r.frame_count; });
  }
  long after = g_allocations.load();
  EXPECT_EQ(after - before, 0) << "TryPush/Drain allocated";
  EXPECT_GT(sum, 0u);
  EXPECT_EQ((*ring)->dropped(), 600u);
}

}  // namespace
}  // namespace flamekit
