// SPDX-License-Identifier: Apache-2.0
// File: interpose_runtime.cc
//
// The HookRuntime the profiler drives (hook_runtime.h): Enable() sets the
// tables, the parameters and then the mode word the hooks read
// (interpose.cc); Snapshot() copies the tables out. Thread and signal
// safety: called by one controlling thread at a time, concurrently with
// the hooks on every thread; its own allocations are bypassed (guard).

#include <stdint.h>
#include <unistd.h>

#include <atomic>
#include <utility>
#include <vector>

#include "flamekit/hooks/hook_runtime.h"
#include "flamekit/hooks/live_table.h"
#include "flamekit/hooks/stack_table.h"
#include "include/flamekit/hooks/interpose_internal.h"  // private to :interpose

namespace flamekit {
namespace hooks_internal {

class Runtime final : public HookRuntime {
 public:
  void Enable(const HookConfig& config) override {
    EnsureResolved();
    ++t_state.guard;
    if (g_stacks == nullptr) g_stacks = new StackTable();
    if (g_live == nullptr) g_live = new LiveTable();
    --t_state.guard;
    g_event.store(0);
    g_mode.store(kQuiet, std::memory_order_release);
    // From here free() looks at the mode again (before a live sample can
    // be inserted: every free of one must reach the table).
    g_free_check.store(FreeCheckWord(config.event == HookEvent::kLive),
                       std::memory_order_release);
    g_stacks->Clear();
    g_live->Clear();
    g_samples.store(0);
    g_mean_bytes.store(config.mean_bytes == 0 ? 1 : config.mean_bytes);
    g_lock_threshold_ns.store(config.lock_threshold_ns);
    g_mmap_min_bytes.store(config.mmap_min_bytes);
    g_owner_pid.store(getpid());
    // Threads redraw their budgets for this capture's mean at their next
    // crossing, within kBudgetChunkBytes.
    uint32_t generation = g_generation.load() + 1;
    if (generation == 0) generation = 1;
    g_generation.store(generation);
    last_event_ = config.event;
    g_event.store(static_cast<int>(config.event), std::memory_order_release);
    g_mode.store(config.event == HookEvent::kAlloc  ? kModeAlloc
                 : config.event == HookEvent::kLive ? kModeLive
                 : config.event == HookEvent::kLock ? kModeLock
                                                    : kQuiet,
                 std::memory_order_release);
  }

  void Disable() override {
    g_event.store(0, std::memory_order_release);
    g_mode.store(kQuiet, std::memory_order_release);
    g_free_check.store(FreeCheckWord(false), std::memory_order_release);
  }

  HookStats Snapshot(std::vector<HookStack>* out) override {
    ++t_state.guard;
    HookStats stats;
    out->clear();
    if (g_stacks != nullptr) {
      stats.samples = g_samples.load();
      stats.dropped = g_stacks->dropped() + g_live->dropped();
      stats.reserved_bytes = g_stacks->bytes_reserved() + g_live->bytes_reserved();
      stats.live_entries = g_live->size();
      stats.malloc_shadowed_by = g_shadowed_by;
      const bool live = last_event_ == HookEvent::kLive;
      if (stats.samples == 0) {
        // Nothing recorded since Enable() cleared the tables: do not walk
        // them (every slot of StackTable's ~8 MiB, a page fault per page:
        // ~20 ms at each Status() of an idle capture, the agent's first
        // one included).
      } else if (!live) {
        g_stacks->ForEach([&](const uint64_t* pcs, uint32_t depth, uint64_t bytes, uint64_t count,
                              int32_t) {
          HookStack s;
          s.pcs.assign(pcs, pcs + depth);
          s.weight = bytes;
          s.count = count;
          out->push_back(std::move(s));
        });
      } else {
        // Live: sum what is still allocated per stack slot.
        std::vector<HookStack> by_slot(g_stacks->capacity());
        // count: the allocations each sample stands for, as alloc's is.
        g_live->ForEachWithCount([&](uintptr_t, uint64_t bytes, int32_t slot, uint64_t time_ns,
                                     uint32_t count) {
          if (slot < 0 || static_cast<size_t>(slot) >= by_slot.size()) return;
          HookStack& s = by_slot[slot];
          s.weight += bytes;
          s.count += count;
          if (s.oldest_ns == 0 || time_ns < s.oldest_ns) s.oldest_ns = time_ns;
        });
        for (size_t slot = 0; slot < by_slot.size(); ++slot) {
          if (by_slot[slot].count == 0) continue;
          const uint64_t* pcs = nullptr;
          const uint32_t depth = g_stacks->Stack(static_cast<int32_t>(slot), &pcs);
          if (depth == 0) continue;
          by_slot[slot].pcs.assign(pcs, pcs + depth);
          out->push_back(std::move(by_slot[slot]));
        }
      }
    }
    --t_state.guard;
    return stats;
  }

  void Bypass(bool on) override {
    if (on) {
      ++t_state.guard;
    } else if (t_state.guard > 0) {
      --t_state.guard;
    }
  }

  HookEvent last_event_ = HookEvent::kOff;
};

Runtime g_runtime;

}  // namespace hooks_internal
}  // namespace flamekit

FK_EXPORT flamekit::HookRuntime* flamekit_hook_runtime() {
  return &flamekit::hooks_internal::g_runtime;
}
