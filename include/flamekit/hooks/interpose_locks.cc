// SPDX-License-Identifier: Apache-2.0
// File: interpose_locks.cc
//
// The `lock` event's hooks: pthread_mutex_lock, pthread_rwlock_rdlock and
// _wrlock, pthread_cond_wait and _timedwait, interposed as interpose.cc
// explains. Thread and signal safety: an uncontended lock costs one
// trylock that succeeds (never timed); a busy one is timed with the vDSO
// clock around the real wait and recorded lock-free if it lasted at least
// the threshold. Nothing here allocates or takes a lock of its own.

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "include/flamekit/hooks/interpose_internal.h"  // private to :interpose

using flamekit::hooks_internal::g_real;

using flamekit::hooks_internal::EnsureResolved;

// Locks: an uncontended lock is one trylock that succeeds (untimed); only
// a lock that was busy is timed around the real wait.
FK_EXPORT int pthread_mutex_lock(pthread_mutex_t* m) __THROW {
  if (!EnsureResolved()) return 0;  // single-threaded start-up: nothing to wait for
  if (!flamekit::hooks_internal::LockEventOn()) return g_real.mutex_lock(m);
  const int tried = g_real.mutex_trylock(m);
  if (tried != EBUSY) return tried;
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.mutex_lock(m);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}

FK_EXPORT int pthread_rwlock_rdlock(pthread_rwlock_t* l) __THROW {
  if (!EnsureResolved()) return 0;
  if (!flamekit::hooks_internal::LockEventOn()) return g_real.rwlock_rdlock(l);
  const int tried = g_real.rwlock_tryrdlock(l);
  if (tried != EBUSY) return tried;
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.rwlock_rdlock(l);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}

FK_EXPORT int pthread_rwlock_wrlock(pthread_rwlock_t* l) __THROW {
  if (!EnsureResolved()) return 0;
  if (!flamekit::hooks_internal::LockEventOn()) return g_real.rwlock_wrlock(l);
  const int tried = g_real.rwlock_trywrlock(l);
  if (tried != EBUSY) return tried;
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.rwlock_wrlock(l);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}

FK_EXPORT int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  EnsureResolved();
  if (!flamekit::hooks_internal::LockEventOn()) return g_real.cond_wait(c, m);
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.cond_wait(c, m);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}

FK_EXPORT int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                     const struct timespec* deadline) {
  EnsureResolved();
  if (!flamekit::hooks_internal::LockEventOn()) return g_real.cond_timedwait(c, m, deadline);
  const uint64_t start = flamekit::hooks_internal::NowNs();
  const int result = g_real.cond_timedwait(c, m, deadline);
  flamekit::hooks_internal::RecordWait(start, FK_FRAME);
  return result;
}

