// SPDX-License-Identifier: Apache-2.0
// File: hook_runtime.h
//
// The interface between the allocation/lock hooks (interpose.cc: malloc,
// free, operator new/delete, mmap, pthread_mutex_lock, ... defined by
// symbol interposition) and whoever turns their tables into a profile (the
// embedded profiler, and so the LD_PRELOAD agent). The hooks exist in a
// process only when it links //include/flamekit/hooks:interpose (alwayslink)
// or preloads libflamekit_agent.so; FindHookRuntime() then returns them,
// otherwise nullptr, so code that merely may use them links without them.
//
// Why symbol interposition and not GOT/PLT patching: the definitions in the
// executable or in an LD_PRELOAD object come first in the dynamic linker's
// lookup, so every object, including those dlopen()ed later, calls them
// with no patching pass, no race with a dlopen() in another thread and no
// write to read-only relocations (RELRO). The price: only calls that go
// through a symbol lookup are seen (a library's calls to its own static
// allocator are not), and a process must be started with the agent or
// linked with the hooks; an already running one cannot be hooked this way.
//
// Thread and signal safety: Enable(), Disable() and Snapshot() are called by
// one controlling thread at a time (the profiler's lock); the hooks run
// concurrently on every thread and never block (see interpose.cc). Nothing
// here is for signal handlers.
//
// Example:
//
//   HookRuntime* hooks = FindHookRuntime();
//   if (hooks == nullptr) { /* not linked, not preloaded */ }
//   HookConfig config;
//   config.event = HookEvent::kAlloc;
//   hooks->Enable(config);
//   ...
//   std::vector<HookStack> stacks;
//   HookStats stats = hooks->Snapshot(&stacks);
//   hooks->Disable();

#ifndef FLAMEKIT_HOOKS_HOOK_RUNTIME_H_
#define FLAMEKIT_HOOKS_HOOK_RUNTIME_H_

#include <stdint.h>

#include <vector>

namespace flamekit {

enum class HookEvent : int {
  kOff = 0,
  kAlloc = 1,  // sampled allocations: bytes and count allocated per stack
  kLive = 2,   // sampled allocations not freed yet
  kLock = 3,   // waits on a mutex, rwlock or condition variable
};

struct HookConfig {
  HookEvent event = HookEvent::kOff;
  // alloc/live: mean bytes between samples (Poisson); 1 = every allocation.
  uint64_t mean_bytes = 512 * 1024;
  // lock: waits at least this long are recorded (a mutex whose lock word
  // reads free, or an rwlock whose trylock succeeds, is never timed).
  uint64_t lock_threshold_ns = 10 * 1000;
  // alloc/live: anonymous mmap() calls from this size count as allocations.
  uint64_t mmap_min_bytes = 64 * 1024;
};

// One stack's total: `pcs` leaf first, pcs[0] the return address into the
// code that called the hooked function (not adjusted). For alloc and live,
// `weight` is estimated bytes and `count` estimated allocations; for lock,
// nanoseconds waited and waits. live also gives the oldest allocation's
// time (CLOCK_MONOTONIC ns).
struct HookStack {
  std::vector<uint64_t> pcs;
  uint64_t weight = 0;
  uint64_t count = 0;
  uint64_t oldest_ns = 0;
};

struct HookStats {
  uint64_t samples = 0;         // sampled events recorded
  uint64_t dropped = 0;         // samples lost to full tables
  uint64_t live_entries = 0;    // live: sampled allocations not yet freed
  uint64_t reserved_bytes = 0;  // address space the tables reserve
  // The file whose malloc() the process calls when it is not the hooks'
  // (a replacement allocator loaded before them): calls to it are not
  // seen. nullptr when the hooks' malloc is the process's.
  const char* malloc_shadowed_by = nullptr;
};

class HookRuntime {
 public:
  // Enable() starts recording `config.event` (tables cleared). Disable()
  // stops; the tables keep their contents for Snapshot().
  virtual void Enable(const HookConfig& config) = 0;
  virtual void Disable() = 0;
  // Snapshot() copies the tables' stacks (aggregated per stack) into *out;
  // the copy's own allocations are not sampled.
  virtual HookStats Snapshot(std::vector<HookStack>* out) = 0;
  // Bypass(true/false) brackets work on the calling thread whose
  // allocations and locks must not be recorded (building the profile).
  virtual void Bypass(bool on) = 0;

 protected:
  ~HookRuntime() = default;
};

// FindHookRuntime()
//
// The hooks of this process, or nullptr when neither linked nor preloaded.
HookRuntime* FindHookRuntime();

// Implementation details follow.

}  // namespace flamekit

// Defined by interpose.cc; weak, so a process without the hooks links and
// sees nullptr.
extern "C" flamekit::HookRuntime* flamekit_hook_runtime() __attribute__((weak));

namespace flamekit {
inline HookRuntime* FindHookRuntime() {
  return flamekit_hook_runtime != nullptr ? flamekit_hook_runtime() : nullptr;
}
}  // namespace flamekit

#endif  // FLAMEKIT_HOOKS_HOOK_RUNTIME_H_
