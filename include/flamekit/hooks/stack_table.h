// SPDX-License-Identifier: Apache-2.0
// File: stack_table.h
//
// StackTable: the hooks' fold table. Each distinct stack gets one slot that
// adds up the bytes (or nanoseconds) and the count of the samples taken
// there; `live` entries point at a slot by its index. Storage is one
// anonymous mapping made at construction (pages are touched as slots fill),
// so adding never allocates; a full table (or a probe run longer than
// kMaxProbes) drops the sample and counts it. The indices of claimed slots
// are kept in order of claim, so ForEach() reads only those (a few pages
// for a few hundred stacks) instead of every slot's page of the 8.5 MiB.
//
// Thread and signal safety: Add() is lock-free and allocation-free, safe
// from any number of threads at once, and never waits: a slot another
// thread is still filling is skipped (the same stack may then own two
// slots, which the reader folds together). ForEach() may run concurrently
// with Add() and sees only published slots. Not async-signal-safe in the
// strict sense only because nobody needs that: it uses nothing but atomics.
//
// Example:
//
//   StackTable table(StackTable::kDefaultSlots);
//   uint64_t pcs[2] = {0x401000, 0x402000};
//   int32_t slot = table.Add(pcs, 2, /*bytes=*/4096, /*count=*/1);
//   table.ForEach([](const uint64_t* pcs, uint32_t depth, uint64_t bytes,
//                    uint64_t count) { ... });

#ifndef FLAMEKIT_HOOKS_STACK_TABLE_H_
#define FLAMEKIT_HOOKS_STACK_TABLE_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace flamekit {

// Deepest stack a hook records (nearest the allocation kept).
inline constexpr uint32_t kHookMaxFrames = 64;

class StackTable {
 public:
  // 16384 slots of 544 bytes: 8.5 MiB of address space, touched as used.
  static constexpr size_t kDefaultSlots = 16384;
  static constexpr size_t kMaxProbes = 64;

  // `slots` is rounded up to a power of two. ok() is false when the
  // mapping failed (every Add() then drops).
  explicit StackTable(size_t slots = kDefaultSlots);
  ~StackTable();
  StackTable(const StackTable&) = delete;
  StackTable& operator=(const StackTable&) = delete;

  bool ok() const { return slots_ != nullptr; }

  // Add()
  //
  // Adds `bytes` and `count` to the slot of pcs[0..depth) (leaf first,
  // depth <= kHookMaxFrames) and returns its index, or -1 when dropped.
  // Lock-free, allocation-free.
  int32_t Add(const uint64_t* pcs, uint32_t depth, uint64_t bytes, uint64_t count);

  // Stack()
  //
  // The frames of a published slot (from Add()'s return value): depth, and
  // *pcs pointing into the table. 0 for a slot not published.
  uint32_t Stack(int32_t slot, const uint64_t** pcs) const;

  // ForEach()
  //
  // Calls fn(pcs, depth, bytes, count, slot) for every published slot with
  // a non-zero count.
  template <typename Fn>
  void ForEach(Fn&& fn) const;

  // Clear() empties the table. Only while no Add() runs (the hooks are off).
  void Clear();

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t capacity() const { return mask_ + 1; }
  size_t bytes_reserved() const { return capacity() * (sizeof(Slot) + 4); }

 private:
  struct Slot {
    std::atomic<uint64_t> hash;    // 0 = empty; claimed by CAS
    std::atomic<uint32_t> ready;   // 1 once frames/depth are written
    uint32_t depth;
    std::atomic<uint64_t> bytes;
    std::atomic<uint64_t> count;
    uint64_t pcs[kHookMaxFrames];
  };

  static uint64_t Hash(const uint64_t* pcs, uint32_t depth);

  Slot* slots_ = nullptr;
  size_t mask_ = 0;
  // Slot index + 1 of each claimed slot, in order of claim (0: a claim
  // whose index is not written yet), and how many were claimed; in the
  // same mapping, after the slots.
  std::atomic<uint32_t>* claimed_ = nullptr;
  std::atomic<uint32_t> claimed_count_{0};
  std::atomic<uint64_t> dropped_{0};
};

// Implementation details follow.

inline StackTable::StackTable(size_t slots) {
  size_t n = 1;
  while (n < slots) n <<= 1;
  // A raw system call: the hooks interpose mmap(), and this table must not
  // be reported as the profiled program's memory.
  void* p = reinterpret_cast<void*>(syscall(SYS_mmap, nullptr, n * sizeof(Slot) + n * 4,
                                            PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (p == MAP_FAILED) return;
  slots_ = static_cast<Slot*>(p);  // zero-filled: every slot empty
  claimed_ = reinterpret_cast<std::atomic<uint32_t>*>(slots_ + n);
  mask_ = n - 1;
}

inline StackTable::~StackTable() {
  if (slots_ != nullptr) syscall(SYS_munmap, slots_, capacity() * (sizeof(Slot) + 4));
}

inline uint64_t StackTable::Hash(const uint64_t* pcs, uint32_t depth) {
  uint64_t h = 0xcbf29ce484222325ull ^ depth;
  for (uint32_t i = 0; i < depth; ++i) {
    h ^= pcs[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h == 0 ? 1 : h;
}

inline int32_t StackTable::Add(const uint64_t* pcs, uint32_t depth, uint64_t bytes,
                               uint64_t count) {
  if (slots_ == nullptr || depth == 0) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  if (depth > kHookMaxFrames) depth = kHookMaxFrames;
  const uint64_t h = Hash(pcs, depth);
  for (size_t probe = 0; probe < kMaxProbes; ++probe) {
    const size_t index = (h + probe) & mask_;
    Slot& s = slots_[index];
    uint64_t seen = s.hash.load(std::memory_order_acquire);
    if (seen == 0) {
      // Claim the empty slot, then publish the frames with a release store
      // that ForEach()/Add() read with acquire before trusting them.
      if (s.hash.compare_exchange_strong(seen, h, std::memory_order_acq_rel)) {
        memcpy(s.pcs, pcs, depth * sizeof(uint64_t));
        s.depth = depth;
        s.bytes.fetch_add(bytes, std::memory_order_relaxed);
        s.count.fetch_add(count, std::memory_order_relaxed);
        s.ready.store(1, std::memory_order_release);
        // At most one claim per slot, so the list never outgrows capacity.
        const uint32_t nth = claimed_count_.fetch_add(1, std::memory_order_relaxed);
        claimed_[nth].store(static_cast<uint32_t>(index) + 1, std::memory_order_release);
        return static_cast<int32_t>(index);
      }
      // Lost the race: `seen` now holds the winner's hash; fall through.
    }
    if (seen != h) continue;
    // Being filled by another thread: never wait, use another slot.
    if (s.ready.load(std::memory_order_acquire) == 0) continue;
    if (s.depth != depth || memcmp(s.pcs, pcs, depth * sizeof(uint64_t)) != 0) continue;
    s.bytes.fetch_add(bytes, std::memory_order_relaxed);
    s.count.fetch_add(count, std::memory_order_relaxed);
    return static_cast<int32_t>(index);
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return -1;
}

inline uint32_t StackTable::Stack(int32_t slot, const uint64_t** pcs) const {
  if (slots_ == nullptr || slot < 0 || static_cast<size_t>(slot) > mask_) return 0;
  const Slot& s = slots_[slot];
  if (s.ready.load(std::memory_order_acquire) == 0) return 0;
  *pcs = s.pcs;
  return s.depth;
}

template <typename Fn>
void StackTable::ForEach(Fn&& fn) const {
  if (slots_ == nullptr) return;
  const uint32_t claimed = claimed_count_.load(std::memory_order_acquire);
  for (uint32_t k = 0; k < claimed && k <= mask_; ++k) {
    const uint32_t entry = claimed_[k].load(std::memory_order_acquire);
    if (entry == 0) continue;  // being claimed: not published yet
    const size_t i = entry - 1;
    const Slot& s = slots_[i];
    if (s.ready.load(std::memory_order_acquire) == 0) continue;
    const uint64_t count = s.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    fn(static_cast<const uint64_t*>(s.pcs), s.depth, s.bytes.load(std::memory_order_relaxed),
       count, static_cast<int32_t>(i));
  }
}

inline void StackTable::Clear() {
  if (slots_ == nullptr) return;
  // Give the pages back (they read as zeros again: every slot empty).
  madvise(slots_, capacity() * (sizeof(Slot) + 4), MADV_DONTNEED);
  claimed_count_.store(0, std::memory_order_relaxed);
  dropped_.store(0, std::memory_order_relaxed);
}

}  // namespace flamekit

#endif  // FLAMEKIT_HOOKS_STACK_TABLE_H_
