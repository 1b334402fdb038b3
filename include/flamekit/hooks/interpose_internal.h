// SPDX-License-Identifier: Apache-2.0
// File: interpose_internal.h
//
// What interpose.cc (the allocation hooks, the state, the runtime) shares
// with interpose_locks.cc (the lock waits): the thread-local state, the
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

#include "flamekit/hooks/poisson_sampler.h"

#define FK_EXPORT extern "C" __attribute__((visibility("default")))
#define FK_NOINLINE __attribute__((noinline))
#define FK_FRAME reinterpret_cast<uint64_t>(__builtin_frame_address(0))

namespace flamekit {
namespace hooks_internal {

struct ThreadState {
  PoissonSampler sampler;
  uint32_t guard;      // >0: inside the hooks (or bypassed): pass through
  uint32_t resolving;  // finding the real functions: use the arena
  uint64_t stack_low;
  uint64_t stack_high;
  uint32_t bounds_state;  // 0 unknown, 1 known, 2 failed
};

struct Real {
  void* (*malloc)(size_t);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  void* (*reallocarray)(void*, size_t, size_t);
  void (*free)(void*);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
  void* (*mmap)(void*, size_t, int, int, int, off_t);
  int (*munmap)(void*, size_t);
  int (*mutex_lock)(pthread_mutex_t*);
  int (*mutex_trylock)(pthread_mutex_t*);
  int (*rwlock_rdlock)(pthread_rwlock_t*);
  int (*rwlock_tryrdlock)(pthread_rwlock_t*);
  int (*rwlock_wrlock)(pthread_rwlock_t*);
  int (*rwlock_trywrlock)(pthread_rwlock_t*);
  int (*cond_wait)(pthread_cond_t*, pthread_mutex_t*);
  int (*cond_timedwait)(pthread_cond_t*, pthread_mutex_t*, const struct timespec*);
};

extern __thread ThreadState t_state
    __attribute__((tls_model("initial-exec"), visibility("hidden")));
extern Real g_real;

// Finds the real functions on first use; false only on the thread doing
// that (it must not call them yet).
bool EnsureResolved();
// Whether the lock event is on and this thread is not inside the hooks.
bool LockEventOn();
uint64_t NowNs();
// Records a wait that began at `start_ns` if it reached the threshold;
// `fp` is the hooked function's frame.
void RecordWait(uint64_t start_ns, uint64_t fp);

}  // namespace hooks_internal
}  // namespace flamekit

#endif  // FLAMEKIT_HOOKS_INTERPOSE_INTERNAL_H_
