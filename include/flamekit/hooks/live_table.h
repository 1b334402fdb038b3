// SPDX-License-Identifier: Apache-2.0
// File: live_table.h
//
// LiveTable: the sampled allocations not freed yet (the `live` event), keyed
// by address: each entry keeps the estimated bytes it stands for, its stack
// (a StackTable slot) and when it was made. Bounded: one anonymous mapping
// of capacity entries (default 65536 x 32 bytes = 2 MiB of address space,
// touched as used); a full table (or a probe run past kMaxProbes) drops the
// sample and counts it, so memory held by `live` never grows past that.
//
// Thread and signal safety: Insert(), Remove() and ForEach() are lock-free
// and allocation-free and may run concurrently from any threads. Remove()
// is the hook on every free(): while the table is empty it is one relaxed
// load; otherwise a hash and a few loads. A removed entry becomes a
// tombstone that a later Insert() reuses.
//
// Example:
//
//   LiveTable live;
//   live.Insert(ptr, /*bytes=*/524288, /*slot=*/7, /*time_ns=*/now);
//   live.Remove(ptr);                      // in free()

#ifndef FLAMEKIT_HOOKS_LIVE_TABLE_H_
#define FLAMEKIT_HOOKS_LIVE_TABLE_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace flamekit {

class LiveTable {
 public:
  static constexpr size_t kDefaultEntries = 65536;
  static constexpr size_t kMaxProbes = 32;

  explicit LiveTable(size_t entries = kDefaultEntries);
  ~LiveTable();
  LiveTable(const LiveTable&) = delete;
  LiveTable& operator=(const LiveTable&) = delete;

  bool ok() const { return entries_ != nullptr; }

  // Insert() records a sampled allocation; false (counted) when dropped.
  // `count` is the allocations the sample stands for (EstimateWeight()'s
  // count, saturated at UINT32_MAX), so `live` can report objects as well
  // as bytes; it fits in what was padding, so an entry is no larger.
  bool Insert(uintptr_t address, uint64_t bytes, int32_t slot, uint64_t time_ns,
              uint32_t count = 1);

  // Remove() forgets `address` if it is sampled; false when it was not.
  bool Remove(uintptr_t address);

  // ForEach() calls fn(address, bytes, slot, time_ns) for every entry.
  template <typename Fn>
  void ForEach(Fn&& fn) const;
  // ForEachWithCount() calls fn(address, bytes, slot, time_ns, count).
  template <typename Fn>
  void ForEachWithCount(Fn&& fn) const;

  // Clear() empties the table. Only while no hook runs.
  void Clear();

  uint64_t size() const { return size_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  size_t capacity() const { return mask_ + 1; }
  size_t bytes_reserved() const { return capacity() * sizeof(Entry); }

 private:
  static constexpr uintptr_t kEmpty = 0;
  static constexpr uintptr_t kTombstone = 1;  // no allocation starts at 1
  // Set while an inserter writes the entry's fields.
  static constexpr uintptr_t kBusyBit = uintptr_t{1} << 63;

  struct Entry {
    std::atomic<uintptr_t> address;
    std::atomic<uint64_t> bytes;
    std::atomic<uint64_t> time_ns;
    std::atomic<int32_t> slot;
    std::atomic<uint32_t> count;
  };

  size_t Index(uintptr_t address) const {
    uint64_t h = static_cast<uint64_t>(address) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h >> 20) & mask_;
  }

  Entry* entries_ = nullptr;
  size_t mask_ = 0;
  std::atomic<uint64_t> size_{0};
  std::atomic<uint64_t> dropped_{0};
};

// Implementation details follow.

inline LiveTable::LiveTable(size_t entries) {
  size_t n = 1;
  while (n < entries) n <<= 1;
  // A raw system call: mmap() itself is hooked.
  void* p = reinterpret_cast<void*>(syscall(SYS_mmap, nullptr, n * sizeof(Entry),
                                            PROT_READ | PROT_WRITE,
                                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (p == MAP_FAILED) return;
  entries_ = static_cast<Entry*>(p);
  mask_ = n - 1;
}

inline LiveTable::~LiveTable() {
  if (entries_ != nullptr) syscall(SYS_munmap, entries_, capacity() * sizeof(Entry));
}

inline bool LiveTable::Insert(uintptr_t address, uint64_t bytes, int32_t slot,
                              uint64_t time_ns, uint32_t count) {
  if (entries_ == nullptr || address <= kTombstone || (address & kBusyBit) != 0) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const size_t start = Index(address);
  for (size_t probe = 0; probe < kMaxProbes; ++probe) {
    Entry& e = entries_[(start + probe) & mask_];
    uintptr_t seen = e.address.load(std::memory_order_relaxed);
    if (seen != kEmpty && seen != kTombstone) continue;
    // Claim with the busy bit, fill, then publish the address (release):
    // Remove() and ForEach() match only the published address.
    if (!e.address.compare_exchange_strong(seen, address | kBusyBit,
                                           std::memory_order_acquire)) {
      continue;
    }
    e.bytes.store(bytes, std::memory_order_relaxed);
    e.time_ns.store(time_ns, std::memory_order_relaxed);
    e.slot.store(slot, std::memory_order_relaxed);
    e.count.store(count, std::memory_order_relaxed);
    e.address.store(address, std::memory_order_release);
    size_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

inline bool LiveTable::Remove(uintptr_t address) {
  // The common case on every free(): nothing sampled is live.
  if (size_.load(std::memory_order_relaxed) == 0 || entries_ == nullptr) return false;
  const size_t start = Index(address);
  for (size_t probe = 0; probe < kMaxProbes; ++probe) {
    Entry& e = entries_[(start + probe) & mask_];
    uintptr_t seen = e.address.load(std::memory_order_acquire);
    if (seen == kEmpty) return false;  // never probed further than here
    if (seen != address) continue;
    // Only the free() of this block gets here (the allocator cannot hand the
    // same address out again before that free() returns), so one CAS.
    if (e.address.compare_exchange_strong(seen, kTombstone, std::memory_order_acq_rel)) {
      size_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }
  return false;
}

template <typename Fn>
void LiveTable::ForEach(Fn&& fn) const {
  ForEachWithCount([&fn](uintptr_t address, uint64_t bytes, int32_t slot, uint64_t time_ns,
                         uint32_t) { fn(address, bytes, slot, time_ns); });
}

template <typename Fn>
void LiveTable::ForEachWithCount(Fn&& fn) const {
  if (entries_ == nullptr) return;
  for (size_t i = 0; i <= mask_; ++i) {
    const Entry& e = entries_[i];
    const uintptr_t address = e.address.load(std::memory_order_acquire);
    if (address == kEmpty || address == kTombstone || (address & kBusyBit) != 0) continue;
    fn(address, e.bytes.load(std::memory_order_relaxed), e.slot.load(std::memory_order_relaxed),
       e.time_ns.load(std::memory_order_relaxed), e.count.load(std::memory_order_relaxed));
  }
}

inline void LiveTable::Clear() {
  if (entries_ == nullptr) return;
  madvise(entries_, capacity() * sizeof(Entry), MADV_DONTNEED);
  size_.store(0, std::memory_order_relaxed);
  dropped_.store(0, std::memory_order_relaxed);
}

}  // namespace flamekit

#endif  // FLAMEKIT_HOOKS_LIVE_TABLE_H_
