// SPDX-License-Identifier: Apache-2.0
// File: interpose_locks.cc
//
// The `lock` event's hooks: pthread_mutex_lock, pthread_rwlock_rdlock and
// _wrlock, pthread_cond_wait and _timedwait, interposed as interpose.cc
// explains. Thread and signal safety: with the event on, a mutex costs a
// plain load of its lock word (an rwlock a trylock) when free, never
// timed; a busy one is timed with the vDSO clock around the real wait and
// recorded lock-free if it lasted at least the threshold. Nothing here
// allocates or takes a lock of its own.

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "flamekit/hooks/stack_table.h"
#include "include/flamekit/hooks/interpose_internal.h"  // private to :interpose

using flamekit::hooks_internal::g_real;
using flamekit::hooks_internal::kModeLock;
using flamekit::hooks_internal::kUnresolved;
using flamekit::hooks_internal::LoadMode;
using flamekit::hooks_internal::t_state;

using flamekit::hooks_internal::EnsureResolved;

namespace flamekit {
namespace hooks_internal {

FK_NOINLINE void RecordWait(uint64_t start_ns, uint64_t fp) {
  const uint64_t waited = NowNs() - start_ns;
  if (waited < g_lock_threshold_ns.load(std::memory_order_relaxed)) return;
  ThreadState& t = t_state;
  ++t.guard;
  if (OwnedHere()) {
    uint64_t pcs[kHookMaxFrames];
    const uint32_t depth = WalkStack(fp, pcs);
    g_stacks->Add(pcs, depth, waited, 1);
    g_samples.fetch_add(1, std::memory_order_relaxed);
  }
  --t.guard;
}

}  // namespace hooks_internal
}  // namespace flamekit

namespace {

// The event is on: trylock first; only a busy lock is timed, around the
// real wait. Out of line, so the fast path saves no registers.
template <typename Lock, typename TryFn, typename LockFn>
FK_NOINLINE int TimedLock(Lock* object, TryFn tryreal, LockFn real) noexcept {
  const uint64_t fp = FK_FRAME;  // jumped to: the caller's frame (FK_HOOK)
  if (t_state.guard != 0) return real(object);
  const int tried = tryreal(object);
  if (tried != EBUSY) return tried;
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = real(object);
  flamekit::hooks_internal::RecordWait(start, fp);
  return result;
}

// A mutex seen busy: timed around the real lock, no trylock.
FK_NOINLINE int TimedBusyMutex(pthread_mutex_t* m) noexcept {
  const uint64_t fp = FK_FRAME;  // jumped to: the caller's frame (FK_HOOK)
  if (t_state.guard != 0) return g_real.mutex_lock(m);
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.mutex_lock(m);
  flamekit::hooks_internal::RecordWait(start, fp);
  return result;
}

}  // namespace

// Fast path (lock event off): the mode load every hook shares, then the
// real function. Before the real functions are found the process is
// single-threaded and starting: a mutex cannot be busy, so "locked" (0).
#define FK_LOCK_HOOK(real, tryreal, object)                                      \
  const uint32_t mode = LoadMode();                                              \
  if (__builtin_expect(mode != kModeLock, 1)) {                                  \
    if (__builtin_expect(mode != kUnresolved, 1) || EnsureResolved()) {          \
      return g_real.real(object);                                                \
    }                                                                            \
    return 0;                                                                    \
  }                                                                              \
  return TimedLock(object, g_real.tryreal, g_real.real)

// With the event on, a mutex whose lock word reads 0 (glibc's
// __data.__lock, the word every mutex kind's lock takes first) is taken
// untimed: a plain load where a trylock would be an atomic write to a
// line other threads are fighting over. Only one seen busy is timed; a
// lock taken by another thread between the load and the real lock is
// missed (an undercount of waits that began in that window). Closing the
// window was measured: taking a mutex seen free with a trylock and timing
// it on EBUSY recorded 662 ms of the 4-thread test's waits (600 ms
// without), but cost the 2-thread contended benchmark +12..+14 % (against
// +1.5 %), as the race is lost often there and each loss then pays the
// clock twice and a second atomic. rwlocks (FK_LOCK_HOOK) go straight to
// the trylock: a successful one is the acquisition itself, so they miss
// no wait and pay no extra atomic when free; only a busy rwlock pays one
// failed trylock before its timed wait (glibc's rwlock word, shared by
// readers, has no simple "free" value to load instead).
FK_EXPORT FK_HOOK int pthread_mutex_lock(pthread_mutex_t* m) __THROW {
  const uint32_t mode = LoadMode();
  if (__builtin_expect(mode == kModeLock, 0)) {
    if (__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) == 0) return g_real.mutex_lock(m);
    return TimedBusyMutex(m);
  }
  if (__builtin_expect(mode != kUnresolved, 1) || EnsureResolved()) return g_real.mutex_lock(m);
  return 0;
}

FK_EXPORT FK_HOOK int pthread_rwlock_rdlock(pthread_rwlock_t* l) __THROW {
  FK_LOCK_HOOK(rwlock_rdlock, rwlock_tryrdlock, l);
}

FK_EXPORT FK_HOOK int pthread_rwlock_wrlock(pthread_rwlock_t* l) __THROW {
  FK_LOCK_HOOK(rwlock_wrlock, rwlock_trywrlock, l);
}
// A condition wait always waits: timed whenever the event is on.
FK_EXPORT int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  const uint32_t mode = LoadMode();
  if (__builtin_expect(mode != kModeLock, 1)) {
    if (mode == kUnresolved) EnsureResolved();
    return g_real.cond_wait(c, m);
  }
  if (t_state.guard != 0) return g_real.cond_wait(c, m);
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.cond_wait(c, m);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}

FK_EXPORT int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                     const struct timespec* deadline) {
  const uint32_t mode = LoadMode();
  if (__builtin_expect(mode != kModeLock, 1)) {
    if (mode == kUnresolved) EnsureResolved();
    return g_real.cond_timedwait(c, m, deadline);
  }
  if (t_state.guard != 0) return g_real.cond_timedwait(c, m, deadline);
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.cond_timedwait(c, m, deadline);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}
