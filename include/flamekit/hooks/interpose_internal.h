// SPDX-License-Identifier: Apache-2.0
// File: interpose_internal.h
//
// What interpose.cc (the allocation hooks, the state) shares with
// interpose_locks.cc (the lock waits) and interpose_runtime.cc (Enable,
// Snapshot): the thread-local state, the
// real functions, and the few helpers the lock hooks call. Internal to
// //include/flamekit/hooks:interpose; every name here is hidden in the
// object it is linked into. Thread and signal safety: as interpose.cc says.

#ifndef FLAMEKIT_HOOKS_INTERPOSE_INTERNAL_H_
#define FLAMEKIT_HOOKS_INTERPOSE_INTERNAL_H_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>

#include "flamekit/hooks/poisson_sampler.h"

#define FK_EXPORT extern "C" __attribute__((visibility("default")))
#define FK_NOINLINE __attribute__((noinline))
#define FK_FRAME reinterpret_cast<uint64_t>(__builtin_frame_address(0))
// The hooks with a fast path (malloc, calloc, free, operator new/delete,
// the lock hooks): they take no frame address (which stops gcc from
// turning calls into jumps), so their fast path ends in a jump to the real
// function, and their slow path is jumped to as well and takes its own
// frame, whose record is then the caller's. Should a compiler call the
// slow path instead, the walk drops the one return address that points
// into this section (InHookSection()), so the stack is the same either way.
#define FK_HOOK __attribute__((section("flamekit_hooks")))

extern "C" const char __start_flamekit_hooks[] __attribute__((visibility("hidden")));
extern "C" const char __stop_flamekit_hooks[] __attribute__((visibility("hidden")));

namespace flamekit {
class LiveTable;
class StackTable;

namespace hooks_internal {

struct ThreadState {
  PoissonSampler sampler;
  uint32_t guard;      // >0: inside the hooks (or bypassed): pass through
  uint32_t resolving;  // finding the real functions: use the arena
  uint64_t stack_low;
  uint64_t stack_high;
  uint32_t bounds_state;  // 0 unknown, 1 known, 2 failed
  // The g_generation the sampler's budget was drawn for (0: none, or with
  // no allocation event on), and the part of that budget not yet in
  // sampler.bytes_left (Crossed() hands it out in chunks).
  uint32_t budget_generation;
  int64_t budget_pending;
};

// The allocation hooks' fast path is the thread's countdown whatever the
// event (no global load). It counts down at most this many bytes at a
// time: with no allocation event on a thread crosses (and looks at the
// event) once per 64 KiB allocated, which bounds how late it starts
// sampling after Enable(); with one on, a longer budget is handed out in
// chunks of this size (a crossing of a chunk is not a sample).
inline constexpr int64_t kBudgetChunkBytes = 64 * 1024;

// noexcept: the hooks are noexcept (__THROW) and a call to a function
// that might throw from one cannot be a tail call (the exception would
// have to reach std::terminate here).
struct Real {
  void* (*malloc)(size_t) noexcept;
  void* (*calloc)(size_t, size_t) noexcept;
  void* (*realloc)(void*, size_t) noexcept;
  void* (*reallocarray)(void*, size_t, size_t) noexcept;
  void (*free)(void*) noexcept;
  int (*posix_memalign)(void**, size_t, size_t) noexcept;
  void* (*aligned_alloc)(size_t, size_t) noexcept;
  void* (*memalign)(size_t, size_t) noexcept;
  void* (*valloc)(size_t) noexcept;
  void* (*pvalloc)(size_t) noexcept;
  void* (*mmap)(void*, size_t, int, int, int, off_t) noexcept;
  int (*munmap)(void*, size_t) noexcept;
  int (*mutex_lock)(pthread_mutex_t*) noexcept;
  int (*mutex_trylock)(pthread_mutex_t*) noexcept;
  int (*rwlock_rdlock)(pthread_rwlock_t*) noexcept;
  int (*rwlock_tryrdlock)(pthread_rwlock_t*) noexcept;
  int (*rwlock_wrlock)(pthread_rwlock_t*) noexcept;
  int (*rwlock_trywrlock)(pthread_rwlock_t*) noexcept;
  int (*cond_wait)(pthread_cond_t*, pthread_mutex_t*) noexcept;
  int (*cond_timedwait)(pthread_cond_t*, pthread_mutex_t*, const struct timespec*) noexcept;
};

extern __thread ThreadState t_state
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern Real g_real;

// What free(), operator delete and the lock hooks read first, one word
// for all of them: 0 until the real functions are found (g_real is valid
// once the word is non-zero: stored with release after g_real, loaded
// with acquire, a plain load on x86), then which hooks have work to do.
// Anything but the value a hook can skip on takes that hook's
// out-of-line slow path. (The allocation hooks read the thread's
// countdown instead; a thread has a budget only once it saw the real
// functions found.)
enum Mode : uint32_t {
  kUnresolved = 0,
  kModeAlloc = 1,   // allocations are sampled
  kModeLive = 2,    // ... and free() looks the block up in the live table
  kQuiet = 3,       // no event: forward only
  kModeLock = 4,    // the lock hooks time a lock they find busy
};
extern std::atomic<uint32_t> g_mode;

// What free() and operator delete read first: kFreeForward when they only
// forward (the real functions are found, no block came from the start-up
// arena, `live` is off), so their fast path is one load, a compare and
// the jump; kFreeCheckLive when `live` is on (and no arena block exists):
// the live table's size next; kFreeCheckAll otherwise (before the real
// functions are found, or after the arena was used). Stored with release
// after g_real, as g_mode; set by Resolve() and the runtime
// (FreeCheckWord()).
enum FreeCheck : uint32_t { kFreeForward = 0, kFreeCheckLive = 1, kFreeCheckAll = 2 };
extern std::atomic<uint32_t> g_free_check;
// The word for g_free_check with `live` on or off.
uint32_t FreeCheckWord(bool live);

// The recording state (interpose.cc), set by the runtime
// (interpose_runtime.cc): the event as HookEvent's value, its parameters,
// the process that owns the capture, and the tables.
extern std::atomic<int> g_event;
// Bumped by every Enable() (never 0): budgets drawn for another capture
// are redrawn at their first crossing.
extern std::atomic<uint32_t> g_generation;
extern std::atomic<uint64_t> g_mean_bytes;
extern std::atomic<uint64_t> g_lock_threshold_ns;
extern std::atomic<uint64_t> g_mmap_min_bytes;
extern std::atomic<pid_t> g_owner_pid;
extern std::atomic<uint64_t> g_samples;
extern StackTable* g_stacks;
extern LiveTable* g_live;
// The object whose malloc() comes before the hooks', or nullptr.
extern const char* g_shadowed_by;

inline uint32_t LoadMode() { return g_mode.load(std::memory_order_acquire); }

// 0 until Resolve() started, 1 while it runs, 2 once g_real is set.
extern std::atomic<int> g_resolved;
// Finds the real functions (interpose_resolve.cc), or waits for the thread
// that does.
void Resolve();
// Finds the real functions on first use; false only on the thread doing
// that (it must not call them yet). The slow path's: the fast paths test
// LoadMode() != kUnresolved instead.
bool EnsureResolved() noexcept;
uint64_t NowNs();
// Whether `pc` is in a FK_HOOK function (the linker defines the bounds).
bool InHookSection(uint64_t pc);
// The caller's stack from the hooked function's frame `fp` into pcs
// (kHookMaxFrames of room); its depth.
uint32_t WalkStack(uint64_t fp, uint64_t* pcs);
// Whether this process owns the capture (a forked child turns it off).
bool OwnedHere();
// Records a wait that began at `start_ns` if it reached the threshold;
// `fp` is the hooked function's frame.
void RecordWait(uint64_t start_ns, uint64_t fp);

}  // namespace hooks_internal
}  // namespace flamekit

#endif  // FLAMEKIT_HOOKS_INTERPOSE_INTERNAL_H_
