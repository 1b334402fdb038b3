// SPDX-License-Identifier: Apache-2.0
// File: stack_bounds.h
//
// The address range of a thread's stack, which bounds every frame-pointer
// walk so that a bad frame pointer is never dereferenced. Bounds are found
// on an ordinary thread (CurrentThreadStackBounds() with
// pthread_getattr_np, or StackBoundsFromMaps() from /proc/self/maps and a
// stack pointer seen in a sample) and cached in a ThreadStackTable, which a
// signal handler reads with FindThreadStack() lock-free.
//
// Thread and signal safety: CurrentThreadStackBounds() and
// StackBoundsFromMaps() allocate and must not run in a signal handler.
// ThreadStackTable::Find() is async-signal-safe and may run concurrently
// with Insert()/Erase(), which must be called by one thread at a time.
//
// Example:
//
//   absl::StatusOr<flamekit::StackBounds> bounds =
//       flamekit::CurrentThreadStackBounds();
//   table.Insert(gettid(), *bounds);
//   // In the handler:
//   flamekit::StackBounds b;
//   if (table.Find(tid, &b) && b.Contains(sp)) { ... }

#ifndef FLAMEKIT_UNWIND_STACK_BOUNDS_H_
#define FLAMEKIT_UNWIND_STACK_BOUNDS_H_

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <atomic>
#include <cinttypes>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace flamekit {

struct StackBounds {
  uint64_t low = 0;   // lowest usable address
  uint64_t high = 0;  // one past the highest address
  bool known() const { return high > low; }
  // Whether [address, address + bytes) lies inside the stack.
  bool Contains(uint64_t address, uint64_t bytes = 1) const {
    return address >= low && address < high && bytes <= high - address;
  }
};

// CurrentThreadStackBounds()
//
// The calling thread's stack, from pthread_getattr_np(). Not signal-safe.
absl::StatusOr<StackBounds> CurrentThreadStackBounds();

// StackBoundsFromMaps()
//
// The mapping of `maps_path` (default /proc/self/maps) that contains `sp`:
// the stack of the thread whose stack pointer that was. NotFound when no
// writable mapping contains it. Not signal-safe.
absl::StatusOr<StackBounds> StackBoundsFromMaps(
    uint64_t sp, absl::string_view maps_path = "/proc/self/maps");

// ThreadStackTable
//
// A fixed-size open-addressing map from thread id to StackBounds. One
// writer thread (Insert/Erase), any number of readers in signal handlers
// (Find). Sized at construction; a full table refuses new threads (their
// samples then hold the leaf frame only).
class ThreadStackTable {
 public:
  explicit ThreadStackTable(size_t capacity_pow2 = 8192);
  ThreadStackTable(const ThreadStackTable&) = delete;
  ThreadStackTable& operator=(const ThreadStackTable&) = delete;

  // Insert()
  //
  // Adds or replaces the bounds of `tid`. False when the table is full.
  // Single writer.
  bool Insert(uint32_t tid, const StackBounds& bounds);
  // Erase()
  //
  // Forgets `tid` (the thread exited). Single writer.
  void Erase(uint32_t tid);
  // Find()
  //
  // Copies the bounds of `tid` into *bounds; false when unknown or changing
  // right now. Async-signal-safe, lock-free.
  bool Find(uint32_t tid, StackBounds* bounds) const;
  // Number of threads in the table (writer's view).
  size_t size() const { return size_; }

 private:
  static constexpr uint32_t kEmpty = 0;
  static constexpr uint32_t kTombstone = 0xffffffffu;
  struct Entry {
    std::atomic<uint32_t> tid{kEmpty};
    // Seqlock version: odd while the writer changes the entry.
    std::atomic<uint32_t> version{0};
    std::atomic<uint64_t> low{0};
    std::atomic<uint64_t> high{0};
  };
  size_t Hash(uint32_t tid) const { return (tid * 2654435761u) & mask_; }
  static void Write(Entry& e, uint32_t tid, const StackBounds& bounds);
  void Rebuild();

  std::unique_ptr<Entry[]> entries_;
  size_t mask_;
  size_t size_ = 0;
  size_t used_ = 0;  // live + tombstones
};

// Implementation details follow.

inline absl::StatusOr<StackBounds> CurrentThreadStackBounds() {
  pthread_attr_t attr;
  int error = pthread_getattr_np(pthread_self(), &attr);
  if (error != 0) {
    return absl::ErrnoToStatus(error, "pthread_getattr_np(self)");
  }
  void* address = nullptr;
  size_t size = 0;
  error = pthread_attr_getstack(&attr, &address, &size);
  pthread_attr_destroy(&attr);
  if (error != 0) return absl::ErrnoToStatus(error, "pthread_attr_getstack");
  StackBounds bounds;
  bounds.low = reinterpret_cast<uint64_t>(address);
  bounds.high = bounds.low + size;
  return bounds;
}

inline absl::StatusOr<StackBounds> StackBoundsFromMaps(uint64_t sp,
                                                       absl::string_view maps_path) {
  std::string path(maps_path);
  FILE* file = fopen(path.c_str(), "re");
  if (file == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  char line[512];
  absl::StatusOr<StackBounds> result = absl::NotFoundError(absl::StrCat(
      "no writable mapping of ", path, " contains the stack pointer 0x",
      absl::Hex(sp)));
  while (fgets(line, sizeof(line), file) != nullptr) {
    uint64_t start = 0, end = 0;
    char perms[8] = {0};
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s", &start, &end, perms) != 3) {
      continue;
    }
    if (sp >= start && sp < end) {
      if (perms[0] == 'r' && perms[1] == 'w') {
        result = StackBounds{start, end};
      }
      break;
    }
  }
  fclose(file);
  return result;
}

inline ThreadStackTable::ThreadStackTable(size_t capacity_pow2) {
  size_t capacity = 16;
  while (capacity < capacity_pow2) capacity <<= 1;
  entries_.reset(new Entry[capacity]);
  mask_ = capacity - 1;
}

inline bool ThreadStackTable::Insert(uint32_t tid, const StackBounds& bounds) {
  if (tid == kEmpty || tid == kTombstone) return false;
  size_t free_slot = SIZE_MAX;
  for (size_t i = 0, slot = Hash(tid); i <= mask_; ++i, slot = (slot + 1) & mask_) {
    Entry& e = entries_[slot];
    // Relaxed: we are the only writer; our own stores are visible to us.
    uint32_t current = e.tid.load(std::memory_order_relaxed);
    if (current == tid) {
      Write(e, tid, bounds);
      return true;
    }
    if (current == kTombstone && free_slot == SIZE_MAX) free_slot = slot;
    if (current == kEmpty) {
      if (free_slot == SIZE_MAX) free_slot = slot;
      break;
    }
  }
  if (free_slot == SIZE_MAX) return false;
  // Keep a quarter free so that probes for absent tids stay short.
  bool reuses_tombstone =
      entries_[free_slot].tid.load(std::memory_order_relaxed) == kTombstone;
  if (!reuses_tombstone && (used_ + 1) * 4 > (mask_ + 1) * 3) {
    if (size_ == used_ || (size_ + 1) * 4 > (mask_ + 1) * 3) return false;
    Rebuild();  // drop the tombstones exited threads left
    return Insert(tid, bounds);
  }
  Write(entries_[free_slot], tid, bounds);
  ++size_;
  if (!reuses_tombstone) ++used_;
  return true;
}

inline void ThreadStackTable::Rebuild() {
  // Readers racing with this may miss a thread for a moment (its sample then
  // holds the leaf only); each entry they do find is consistent (seqlock).
  std::vector<std::pair<uint32_t, StackBounds>> live;
  live.reserve(size_);
  for (size_t slot = 0; slot <= mask_; ++slot) {
    Entry& e = entries_[slot];
    uint32_t tid = e.tid.load(std::memory_order_relaxed);
    if (tid != kEmpty && tid != kTombstone) {
      live.emplace_back(tid, StackBounds{e.low.load(std::memory_order_relaxed),
                                         e.high.load(std::memory_order_relaxed)});
    }
    if (tid != kEmpty) Write(e, kEmpty, StackBounds{});
  }
  size_ = 0;
  used_ = 0;
  for (const auto& [tid, bounds] : live) Insert(tid, bounds);
}

inline void ThreadStackTable::Write(Entry& e, uint32_t tid,
                                    const StackBounds& bounds) {
  // Relaxed: single writer.
  uint32_t version = e.version.load(std::memory_order_relaxed);
  // Relaxed store of an odd version, then a release fence: a reader that
  // sees any of the stores below also sees the odd version (seqlock write).
  e.version.store(version + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  e.low.store(bounds.low, std::memory_order_relaxed);
  e.high.store(bounds.high, std::memory_order_relaxed);
  e.tid.store(tid, std::memory_order_relaxed);
  // Release: publishes the fields above with the even version.
  e.version.store(version + 2, std::memory_order_release);
}

inline void ThreadStackTable::Erase(uint32_t tid) {
  if (tid == kEmpty || tid == kTombstone) return;
  for (size_t i = 0, slot = Hash(tid); i <= mask_; ++i, slot = (slot + 1) & mask_) {
    Entry& e = entries_[slot];
    uint32_t current = e.tid.load(std::memory_order_relaxed);
    if (current == kEmpty) return;
    if (current == tid) {
      Write(e, kTombstone, StackBounds{});
      --size_;
      return;
    }
  }
}

inline bool ThreadStackTable::Find(uint32_t tid, StackBounds* bounds) const {
  if (tid == kEmpty || tid == kTombstone) return false;
  for (size_t i = 0, slot = Hash(tid); i <= mask_; ++i, slot = (slot + 1) & mask_) {
    const Entry& e = entries_[slot];
    // Acquire: pairs with the writer's final release store of the version;
    // the fields it wrote before are visible.
    uint32_t version = e.version.load(std::memory_order_acquire);
    uint32_t current = e.tid.load(std::memory_order_relaxed);
    if (current == kEmpty) return false;
    if (current != tid) continue;
    if (version & 1) return false;  // being rewritten right now
    bounds->low = e.low.load(std::memory_order_relaxed);
    bounds->high = e.high.load(std::memory_order_relaxed);
    // Acquire fence: the loads above happen before the version re-check, so
    // a concurrent Write() that changed them is caught (seqlock read).
    std::atomic_thread_fence(std::memory_order_acquire);
    return e.version.load(std::memory_order_relaxed) == version;
  }
  return false;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_STACK_BOUNDS_H_
