// SPDX-License-Identifier: Apache-2.0
// File: interpose.cc
//
// The hooks themselves (the lock waits are in interpose_locks.cc, the
// runtime that switches them on and off in interpose_runtime.cc):
// definitions of the allocation functions (malloc,
// calloc, realloc, reallocarray, posix_memalign, aligned_alloc, memalign,
// valloc, pvalloc, free, every form of operator new/delete, anonymous
// mmap/munmap) and of the lock waits (pthread_mutex_lock,
// pthread_rwlock_rdlock/wrlock, pthread_cond_wait/timedwait) that take the
// place of libc's by symbol interposition (hook_runtime.h says why), record
// into StackTable/LiveTable when an event is on, and forward to the next
// definition (libc's, or a replacement allocator's such as jemalloc's when
// it comes after this object in the lookup order).
//
// Thread and signal safety, the promises made to the host program:
// - Fast path (an allocation not sampled, event on or off): the thread's
//   byte countdown (a compare and a subtraction in initial-exec TLS), then
//   a jump (not a call) to the real function: malloc is 7 instructions
//   whatever the event; free 4 (one load of g_free_check, a compare, the
//   jump), under `live` 4 more (the live table's size) while nothing
//   sampled is live. No atomic read-modify-write, no lock, no system
//   call, no allocation.
//   With no event on, a thread crosses once per 64 KiB (kBudgetChunkBytes)
//   and its slow path only hands out the next 64 KiB. free() in `live`
//   with sampled blocks live makes a call and a hash probe.
// - Sampled path: a bounded frame-pointer walk inside the thread's stack
//   (bounds cached per thread), a lock-free table insert; never waits, a
//   full table drops the sample and counts it.
// - Re-entrancy: a thread-local guard makes any allocation or lock made
//   while recording (pthread_getattr_np's, the profile's own) go straight
//   to the real function.
// - Thread-local state is initial-exec TLS and valid zero-filled, so threads
//   created before the profiler started, or in their very first malloc,
//   are handled (initial-exec: the object must be the executable, linked
//   into it, or preloaded; a dlopen()ed copy would fail to load for lack
//   of static TLS).
// - fork(): nothing here locks, so a child never inherits a held lock; the
//   first sample in a child turns recording off there (the profile is the
//   parent's).
// - Before the real functions are found (dlsym allocates) allocations come
//   from a small static arena, never freed.
// Signal handlers that call malloc are already undefined behaviour; the
// hooks add no new hazard there (the guard is per thread).

#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <new>
#include <vector>

#include "flamekit/hooks/hook_runtime.h"
#include "include/flamekit/hooks/interpose_internal.h"  // private to :interpose
#include "flamekit/hooks/live_table.h"
#include "flamekit/hooks/poisson_sampler.h"
#include "flamekit/hooks/stack_table.h"


namespace flamekit {
namespace hooks_internal {

__thread ThreadState t_state __attribute__((tls_model("initial-exec"), visibility("hidden")));

Real g_real;
std::atomic<uint32_t> g_mode{kUnresolved};
std::atomic<uint32_t> g_free_check{kFreeCheckAll};
std::atomic<int> g_resolved{0};  // 0 no, 1 in progress, 2 done
// Set by Resolve(): the object whose malloc() comes before ours.
const char* g_shadowed_by = nullptr;

// The arena for allocations made while dlsym() runs (it may calloc).
alignas(64) char g_arena[64 * 1024];
std::atomic<size_t> g_arena_used{0};

uint32_t FreeCheckWord(bool live) {
  if (g_arena_used.load(std::memory_order_relaxed) != 0) return kFreeCheckAll;
  return live ? kFreeCheckLive : kFreeForward;
}

bool InArena(const void* p) {
  return p >= static_cast<const void*>(g_arena) &&
         p < static_cast<const void*>(g_arena + sizeof(g_arena));
}

void* ArenaAlloc(size_t size, size_t align = 16) {
  if (align < 16) align = 16;
  size_t old = g_arena_used.load();
  for (;;) {
    size_t start = (old + align - 1) & ~(align - 1);
    if (start + size > sizeof(g_arena) || start + size < start) return nullptr;
    if (g_arena_used.compare_exchange_weak(old, start + size)) return g_arena + start;
  }
}

__attribute__((always_inline)) inline bool Ready() {
  if (__builtin_expect(g_resolved.load(std::memory_order_acquire) == 2, 1)) return true;
  if (t_state.resolving != 0) return false;
  Resolve();
  return true;
}

// What is recorded, and where.
std::atomic<int> g_event{0};
std::atomic<uint32_t> g_generation{0};
std::atomic<uint64_t> g_mean_bytes{512 * 1024};
std::atomic<uint64_t> g_lock_threshold_ns{10000};
std::atomic<uint64_t> g_mmap_min_bytes{64 * 1024};
std::atomic<pid_t> g_owner_pid{0};
std::atomic<uint64_t> g_samples{0};
StackTable* g_stacks = nullptr;
LiveTable* g_live = nullptr;

bool InHookSection(uint64_t pc) {
  return pc >= reinterpret_cast<uint64_t>(__start_flamekit_hooks) &&
         pc < reinterpret_cast<uint64_t>(__stop_flamekit_hooks);
}

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The caller's stack from the hooked function's frame `fp`: frame records
// {saved fp, return address} walked while they stay inside this thread's
// stack, grow, and are aligned. Bounded by kHookMaxFrames.
uint32_t WalkStack(uint64_t fp, uint64_t* pcs) {
  ThreadState& t = t_state;
  if (t.bounds_state == 0) {
    t.bounds_state = 2;
    pthread_attr_t attr;
    // Allocates (reads /proc/self/maps for the main thread): the guard
    // sends those allocations straight to the real malloc.
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      void* address = nullptr;
      size_t size = 0;
      if (pthread_attr_getstack(&attr, &address, &size) == 0) {
        t.stack_low = reinterpret_cast<uint64_t>(address);
        t.stack_high = t.stack_low + size;
        t.bounds_state = 1;
      }
      pthread_attr_destroy(&attr);
    }
  }
  if (t.bounds_state != 1) return 0;
  uint32_t n = 0;
  uint64_t previous = 0;
  while (n < kHookMaxFrames) {
    if ((fp & 7) != 0 || fp <= previous || fp < t.stack_low || fp + 16 > t.stack_high) break;
    const uint64_t* record = reinterpret_cast<const uint64_t*>(fp);
    const uint64_t return_address = record[1];
    if (return_address == 0) break;
    // A hook that called its slow path instead of jumping to it: its frame
    // is not the program's (FK_HOOK).
    if (n != 0 || !InHookSection(return_address)) pcs[n++] = return_address;
    previous = fp;
    fp = record[0];
  }
  return n;
}

bool OwnedHere() {
  const pid_t owner = g_owner_pid.load(std::memory_order_relaxed);
  if (owner == getpid()) return true;
  // A forked child: the capture is the parent's. Stop recording here.
  g_event.store(0, std::memory_order_relaxed);
  g_mode.store(kQuiet, std::memory_order_release);
  return false;
}

FK_NOINLINE void RecordAllocation(void* p, uint64_t size, uint64_t fp, int event) {
  ThreadState& t = t_state;
  ++t.guard;
  if (OwnedHere()) {
    uint64_t pcs[kHookMaxFrames];
    const uint32_t depth = WalkStack(fp, pcs);
    const uint64_t mean = g_mean_bytes.load(std::memory_order_relaxed);
    // The generator's state was just stepped to draw the next budget: its
    // bits, through another multiplier than the budget's (so the dither
    // does not follow the next budget), round the count without bias.
    const SampleWeight w = EstimateWeight(
        size, mean, static_cast<uint32_t>((t.sampler.rng * 0x9E3779B97F4A7C15ull) >> 32));
    const int32_t slot = g_stacks->Add(pcs, depth, event == 2 ? 0 : w.bytes, event == 2 ? 0 : w.count);
    g_samples.fetch_add(1, std::memory_order_relaxed);
    if (event == 2 && slot >= 0) {
      g_live->Insert(reinterpret_cast<uintptr_t>(p), w.bytes, slot, NowNs(),
                     w.count > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(w.count));
    }
  }
  --t.guard;
}

// The allocation of `size` bytes at p crossed this thread's countdown
// (Take() returned false, and took nothing). The countdown runs in chunks
// of at most kBudgetChunkBytes, so that a thread looks at the event at
// least that often (the bound on how late it starts sampling after an
// Enable()). With no allocation event on, the thread gets one chunk and
// nothing is recorded. With one on: a budget drawn for another capture
// (t.budget_generation says) is replaced by one drawn now, and this
// allocation counted against it (exponential draws are memoryless: a
// budget that starts here is as valid as one drawn at Enable()); else the
// rest of the budget is the chunk left plus t.budget_pending. An
// allocation that does not exhaust it takes the next chunk; one that does
// is sampled, and a new budget drawn. The hooks' own allocations (guard)
// and failed ones change nothing.
FK_NOINLINE void Crossed(void* p, uint64_t size, uint64_t fp) {
  ThreadState& t = t_state;
  const int event = g_event.load(std::memory_order_relaxed);
  if (event != 1 && event != 2) {
    t.sampler.bytes_left = kBudgetChunkBytes;
    t.budget_pending = 0;
    t.budget_generation = 0;
    return;
  }
  if (t.guard != 0 || p == nullptr) return;
  const uint64_t mean = g_mean_bytes.load(std::memory_order_relaxed);
  const uint32_t generation = g_generation.load(std::memory_order_relaxed);
  // Takes `rest` bytes (>= 0) as the budget: a chunk now, the rest later.
  auto set_budget = [&t](int64_t rest) {
    t.sampler.bytes_left = rest < kBudgetChunkBytes ? rest : kBudgetChunkBytes;
    t.budget_pending = rest - t.sampler.bytes_left;
  };
  int64_t rest = 0;
  if (__builtin_expect(t.budget_generation != generation, 0)) {
    t.budget_generation = generation;
    if (t.sampler.rng == 0) {
      t.sampler.Seed(reinterpret_cast<uint64_t>(&t) ^ (NowNs() * 0x9E3779B97F4A7C15ull));
    }
    if (mean > 1) rest = t.sampler.NextBudget(mean);
  } else {
    rest = t.sampler.bytes_left + t.budget_pending;
  }
  if (mean > 1 && size < static_cast<uint64_t>(rest)) {
    set_budget(rest - static_cast<int64_t>(size));
    return;
  }
  set_budget(mean > 1 ? t.sampler.NextBudget(mean) : 0);
  RecordAllocation(p, size, fp, event);
}

// Every allocation hook counts its bytes down the thread's budget, event
// or not (Take(): a thread-local compare and subtraction, no global load);
// only a crossing looks at the event (Crossed()).
__attribute__((always_inline)) inline void OnAlloc(void* p, uint64_t size, uint64_t fp) {
  if (__builtin_expect(t_state.sampler.Take(size), 1)) return;
  Crossed(p, size, fp);
}

// Before the block at p goes back to the allocator (so another thread's
// allocation at the same address cannot be forgotten by mistake).
__attribute__((always_inline)) inline void OnFree(void* p) {
  if (__builtin_expect(LoadMode() != kModeLive, 1) || p == nullptr) return;
  g_live->Remove(reinterpret_cast<uintptr_t>(p));
}

bool EnsureResolved() noexcept { return Ready(); }

FK_NOINLINE void* NewImpl(size_t size, size_t align, bool nothrow, uint64_t fp) {
  if (size == 0) size = 1;
  for (;;) {
    void* p = nullptr;
    if (!Ready()) {
      p = ArenaAlloc(size, align);
    } else if (align > alignof(max_align_t)) {
      if (g_real.posix_memalign(&p, align, size) != 0) p = nullptr;
    } else {
      p = g_real.malloc(size);
    }
    if (p != nullptr) {
      OnAlloc(p, size, fp);
      return p;
    }
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

FK_NOINLINE void FreeSlow(void* p) noexcept {
  if (p == nullptr || InArena(p)) return;
  OnFree(p);
  if (Ready()) g_real.free(p);
}

// One compare: the arena is one static block.
__attribute__((always_inline)) inline bool NotInArena(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(g_arena) >= sizeof(g_arena);
}

// free() and every operator delete. Fast path: the mode load and the arena
// compare, then a tail call.
__attribute__((always_inline)) inline void FreeImpl(void* p) noexcept {
  const uint32_t check = g_free_check.load(std::memory_order_acquire);
  if (__builtin_expect(check == kFreeForward, 1)) return g_real.free(p);
  // live, no arena block, nothing sampled live: one more load.
  if (check == kFreeCheckLive && g_live->size() == 0) return g_real.free(p);
  const uint32_t mode = LoadMode();
  if (__builtin_expect(mode != kModeLive && mode != kUnresolved, 1) && NotInArena(p)) {
    return g_real.free(p);
  }
  // live while nothing sampled is live (a program that frees what it
  // allocates): two more loads. Otherwise FreeSlow() probes the table.
  if (mode == kModeLive && NotInArena(p) && g_live->size() == 0) return g_real.free(p);
  FreeSlow(p);
}

// operator new without alignment. Fast path as malloc's; a null result or
// a crossing goes the whole way (NewImpl, with the bytes given back first).
__attribute__((always_inline)) inline void* NewFast(size_t size, bool nothrow, uint64_t fp) {
  if (__builtin_expect(t_state.sampler.Take(size), 1)) {
    void* p = g_real.malloc(size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    t_state.sampler.Untake(size);
  }
  return NewImpl(size, 0, nothrow, fp);
}


}  // namespace hooks_internal
}  // namespace flamekit

using flamekit::hooks_internal::g_real;
using flamekit::hooks_internal::OnAlloc;
using flamekit::hooks_internal::OnFree;
using flamekit::hooks_internal::Ready;

namespace flamekit {
namespace hooks_internal {

// The slow paths of malloc and calloc: a countdown that crossed, which is
// also every thread's first allocation (a zero budget) and so every
// allocation before the real functions are found.
FK_NOINLINE void* MallocSlow(size_t size) noexcept {
  const uint64_t fp = FK_FRAME;  // malloc() jumped here: its caller's frame
  if (!Ready()) return ArenaAlloc(size);
  void* p = g_real.malloc(size);
  OnAlloc(p, size, fp);
  return p;
}

FK_NOINLINE void* CallocSlow(size_t n, size_t size) noexcept {
  const uint64_t fp = FK_FRAME;  // as MallocSlow()
  if (!Ready()) {
    // The arena is zero-filled static storage, never reused.
    if (size != 0 && n > SIZE_MAX / size) return nullptr;
    return flamekit::hooks_internal::ArenaAlloc(n * size);
  }
  void* p = g_real.calloc(n, size);
  if (p != nullptr) OnAlloc(p, static_cast<uint64_t>(n) * size, fp);
  return p;
}

}  // namespace hooks_internal
}  // namespace flamekit

using flamekit::hooks_internal::t_state;

// Fast path, event or not: the thread's countdown (a compare and a
// subtraction in initial-exec TLS), then a tail call (jmp) to the real
// malloc; no global is read but the real function's address. Every exit
// is a tail call, so this function leaves no frame of its own (FK_HOOK
// says why that matters).
FK_EXPORT FK_HOOK void* malloc(size_t size) __THROW {
  if (__builtin_expect(t_state.sampler.Take(size), 1)) return g_real.malloc(size);
  return flamekit::hooks_internal::MallocSlow(size);
}

FK_EXPORT FK_HOOK void* calloc(size_t n, size_t size) __THROW {
  uint64_t total = 0;
  // An overflowing product fails in calloc; it is not counted down.
  if (__builtin_expect(!__builtin_mul_overflow(n, size, &total), 1) &&
      __builtin_expect(t_state.sampler.Take(total), 1)) {
    return g_real.calloc(n, size);
  }
  return flamekit::hooks_internal::CallocSlow(n, size);
}

FK_EXPORT void* realloc(void* old, size_t size) __THROW {
  using flamekit::hooks_internal::InArena;
  if (!Ready() || InArena(old)) {
    // Arena blocks are not resized in place: copy what may have been used.
    void* p = Ready() ? g_real.malloc(size) : flamekit::hooks_internal::ArenaAlloc(size);
    if (p != nullptr && old != nullptr) {
      const size_t room = static_cast<size_t>(flamekit::hooks_internal::g_arena +
                                              sizeof(flamekit::hooks_internal::g_arena) -
                                              static_cast<char*>(old));
      memcpy(p, old, size < room ? size : room);
    }
    return p;
  }
  OnFree(old);
  void* p = g_real.realloc(old, size);
  if (p != nullptr && size != 0) OnAlloc(p, size, FK_FRAME);
  return p;
}

FK_EXPORT void* reallocarray(void* old, size_t n, size_t size) __THROW {
  if (size != 0 && n > SIZE_MAX / size) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!Ready() || flamekit::hooks_internal::InArena(old)) return realloc(old, n * size);
  OnFree(old);
  void* p = g_real.reallocarray(old, n, size);
  if (p != nullptr && n * size != 0) OnAlloc(p, static_cast<uint64_t>(n) * size, FK_FRAME);
  return p;
}

FK_EXPORT FK_HOOK void free(void* p) __THROW { flamekit::hooks_internal::FreeImpl(p); }

FK_EXPORT int posix_memalign(void** out, size_t align, size_t size) __THROW {
  if (!Ready()) {
    void* p = flamekit::hooks_internal::ArenaAlloc(size, align);
    if (p == nullptr) return ENOMEM;
    *out = p;
    return 0;
  }
  const int error = g_real.posix_memalign(out, align, size);
  if (error == 0) OnAlloc(*out, size, FK_FRAME);
  return error;
}

FK_EXPORT void* aligned_alloc(size_t align, size_t size) __THROW {
  if (!Ready()) return flamekit::hooks_internal::ArenaAlloc(size, align);
  void* p = g_real.aligned_alloc(align, size);
  OnAlloc(p, size, FK_FRAME);
  return p;
}

FK_EXPORT void* memalign(size_t align, size_t size) __THROW {
  if (!Ready()) return flamekit::hooks_internal::ArenaAlloc(size, align);
  void* p = g_real.memalign(align, size);
  OnAlloc(p, size, FK_FRAME);
  return p;
}

FK_EXPORT void* valloc(size_t size) __THROW {
  if (!Ready()) return flamekit::hooks_internal::ArenaAlloc(size, 4096);
  void* p = g_real.valloc(size);
  OnAlloc(p, size, FK_FRAME);
  return p;
}

FK_EXPORT void* pvalloc(size_t size) __THROW {
  if (!Ready()) return flamekit::hooks_internal::ArenaAlloc(size, 4096);
  void* p = g_real.pvalloc(size);
  OnAlloc(p, size, FK_FRAME);
  return p;
}

FK_EXPORT void* mmap(void* address, size_t length, int prot, int flags, int fd, off_t offset) __THROW {
  if (!Ready()) {
    return reinterpret_cast<void*>(syscall(SYS_mmap, address, length, prot, flags, fd, offset));
  }
  void* p = g_real.mmap(address, length, prot, flags, fd, offset);
  if (p != MAP_FAILED && (flags & MAP_ANONYMOUS) != 0 &&
      length >= flamekit::hooks_internal::g_mmap_min_bytes.load(std::memory_order_relaxed)) {
    OnAlloc(p, length, FK_FRAME);
  }
  return p;
}

FK_EXPORT int munmap(void* address, size_t length) __THROW {
  if (!Ready()) return static_cast<int>(syscall(SYS_munmap, address, length));
  OnFree(address);
  return g_real.munmap(address, length);
}

// operator new/delete, every form: they allocate here directly (rather
// than leaving libstdc++'s, which has no frame pointer, to call malloc), so
// the walk's first frame is the code that said `new`.
#define FK_CXX __attribute__((visibility("default"))) FK_HOOK
using flamekit::hooks_internal::FreeImpl;
using flamekit::hooks_internal::NewFast;
using flamekit::hooks_internal::NewImpl;

FK_CXX void* operator new(size_t n) { return NewFast(n, false, FK_FRAME); }
FK_CXX void* operator new[](size_t n) { return NewFast(n, false, FK_FRAME); }
FK_CXX void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return NewFast(n, true, FK_FRAME);
}
FK_CXX void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return NewFast(n, true, FK_FRAME);
}
FK_CXX void* operator new(size_t n, std::align_val_t a) {
  return NewImpl(n, static_cast<size_t>(a), false, FK_FRAME);
}
FK_CXX void* operator new[](size_t n, std::align_val_t a) {
  return NewImpl(n, static_cast<size_t>(a), false, FK_FRAME);
}
FK_CXX void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewImpl(n, static_cast<size_t>(a), true, FK_FRAME);
}
FK_CXX void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewImpl(n, static_cast<size_t>(a), true, FK_FRAME);
}
FK_CXX void operator delete(void* p) noexcept { FreeImpl(p); }
FK_CXX void operator delete[](void* p) noexcept { FreeImpl(p); }
FK_CXX void operator delete(void* p, size_t) noexcept { FreeImpl(p); }
FK_CXX void operator delete[](void* p, size_t) noexcept { FreeImpl(p); }
FK_CXX void operator delete(void* p, const std::nothrow_t&) noexcept { FreeImpl(p); }
FK_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept { FreeImpl(p); }
FK_CXX void operator delete(void* p, std::align_val_t) noexcept { FreeImpl(p); }
FK_CXX void operator delete[](void* p, std::align_val_t) noexcept { FreeImpl(p); }
FK_CXX void operator delete(void* p, size_t, std::align_val_t) noexcept { FreeImpl(p); }
FK_CXX void operator delete[](void* p, size_t, std::align_val_t) noexcept { FreeImpl(p); }
FK_CXX void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  FreeImpl(p);
}
FK_CXX void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  FreeImpl(p);
}
