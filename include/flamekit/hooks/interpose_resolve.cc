// SPDX-License-Identifier: Apache-2.0
// File: interpose_resolve.cc
//
// Finding the real functions the hooks forward to (interpose.cc): on the
// process's first allocation or lock, the definitions after this object's
// in the lookup order (libc's, or a replacement allocator's), or a
// replacement preloaded before it (then reported as shadowing malloc).
// Thread and signal safety: Resolve() runs once, on the first thread that
// needs it; others spin until it is done (only ever during start-up).
// dlsym() may allocate: the resolving thread's allocations meanwhile come
// from interpose.cc's static arena (t_state.resolving).

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <atomic>

#include "include/flamekit/hooks/interpose_internal.h"  // private to :interpose

namespace flamekit {
namespace hooks_internal {

// Internal linkage: its address is computed PC-relative, so it is always in
// this object (an exported function's address may come through the GOT
// and be another object's definition).
static void SelfMarker() {}

// Whether `address` is inside the object that holds this code.
bool InThisObject(void* address) {
  Dl_info self, other;
  if (dladdr(reinterpret_cast<void*>(&SelfMarker), &self) == 0) return false;
  if (dladdr(address, &other) == 0) return false;
  return self.dli_fbase == other.dli_fbase;
}

// The definition to forward to: the global one if it is not ours (a
// replacement allocator preloaded before us), else the next one after us.
void* Next(const char* name, void* /*unused*/, const char* version = nullptr) {
  void* global = version != nullptr ? dlvsym(RTLD_DEFAULT, name, version)
                                    : dlsym(RTLD_DEFAULT, name);
  if (global != nullptr && !InThisObject(global)) return global;
  return version != nullptr ? dlvsym(RTLD_NEXT, name, version) : dlsym(RTLD_NEXT, name);
}

}  // namespace hooks_internal
}  // namespace flamekit

namespace flamekit {
namespace hooks_internal {

void Resolve() {
  int expected = 0;
  if (!g_resolved.compare_exchange_strong(expected, 1)) {
    // Another thread resolves: its dlsym() is short; spinning here is
    // bounded by it (only ever at the process's first allocations).
    while (g_resolved.load() != 2) {
    }
    return;
  }
  ThreadState& t = t_state;
  ++t.resolving;
  Real r;
  r.malloc = reinterpret_cast<decltype(r.malloc)>(Next("malloc", reinterpret_cast<void*>(&::malloc)));
  r.calloc = reinterpret_cast<decltype(r.calloc)>(Next("calloc", reinterpret_cast<void*>(&::calloc)));
  r.realloc = reinterpret_cast<decltype(r.realloc)>(Next("realloc", reinterpret_cast<void*>(&::realloc)));
  r.reallocarray = reinterpret_cast<decltype(r.reallocarray)>(
      Next("reallocarray", reinterpret_cast<void*>(&::reallocarray)));
  r.free = reinterpret_cast<decltype(r.free)>(Next("free", reinterpret_cast<void*>(&::free)));
  r.posix_memalign = reinterpret_cast<decltype(r.posix_memalign)>(
      Next("posix_memalign", reinterpret_cast<void*>(&::posix_memalign)));
  r.aligned_alloc = reinterpret_cast<decltype(r.aligned_alloc)>(
      Next("aligned_alloc", reinterpret_cast<void*>(&::aligned_alloc)));
  r.memalign = reinterpret_cast<decltype(r.memalign)>(Next("memalign", reinterpret_cast<void*>(&::memalign)));
  r.valloc = reinterpret_cast<decltype(r.valloc)>(Next("valloc", reinterpret_cast<void*>(&::valloc)));
  r.pvalloc = reinterpret_cast<decltype(r.pvalloc)>(Next("pvalloc", reinterpret_cast<void*>(&::pvalloc)));
  r.mmap = reinterpret_cast<decltype(r.mmap)>(Next("mmap", reinterpret_cast<void*>(&::mmap)));
  r.munmap = reinterpret_cast<decltype(r.munmap)>(Next("munmap", reinterpret_cast<void*>(&::munmap)));
  r.mutex_lock = reinterpret_cast<decltype(r.mutex_lock)>(
      Next("pthread_mutex_lock", reinterpret_cast<void*>(&::pthread_mutex_lock)));
  r.mutex_trylock = reinterpret_cast<decltype(r.mutex_trylock)>(dlsym(RTLD_NEXT, "pthread_mutex_trylock"));
  r.rwlock_rdlock = reinterpret_cast<decltype(r.rwlock_rdlock)>(
      Next("pthread_rwlock_rdlock", reinterpret_cast<void*>(&::pthread_rwlock_rdlock)));
  r.rwlock_tryrdlock =
      reinterpret_cast<decltype(r.rwlock_tryrdlock)>(dlsym(RTLD_NEXT, "pthread_rwlock_tryrdlock"));
  r.rwlock_wrlock = reinterpret_cast<decltype(r.rwlock_wrlock)>(
      Next("pthread_rwlock_wrlock", reinterpret_cast<void*>(&::pthread_rwlock_wrlock)));
  r.rwlock_trywrlock =
      reinterpret_cast<decltype(r.rwlock_trywrlock)>(dlsym(RTLD_NEXT, "pthread_rwlock_trywrlock"));
  // The condition variable functions have two versions; programs built
  // since glibc 2.3.2 use these (the older ones take another struct).
  r.cond_wait = reinterpret_cast<decltype(r.cond_wait)>(
      Next("pthread_cond_wait", reinterpret_cast<void*>(&::pthread_cond_wait), "GLIBC_2.3.2"));
  r.cond_timedwait = reinterpret_cast<decltype(r.cond_timedwait)>(Next(
      "pthread_cond_timedwait", reinterpret_cast<void*>(&::pthread_cond_timedwait), "GLIBC_2.3.2"));
  void* global_malloc = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info;
  if (global_malloc != nullptr && !InThisObject(global_malloc) &&
      dladdr(global_malloc, &info) != 0) {
    g_shadowed_by = info.dli_fname;
  }
  g_real = r;
  --t.resolving;
  // Before g_resolved: an Enable() waiting in Ready() sets its own mode
  // after this one, never before. The arena is used only before this
  // point (by the thread resolving), so whether it was is now final.
  g_free_check.store(FreeCheckWord(false), std::memory_order_release);
  g_mode.store(kQuiet, std::memory_order_release);
  g_resolved.store(2);
}

}  // namespace hooks_internal
}  // namespace flamekit
