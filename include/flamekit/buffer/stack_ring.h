// SPDX-License-Identifier: Apache-2.0
// File: stack_ring.h
//
// StackRing is a bounded, lock-free, multi-writer single-reader queue of
// StackRecords: signal handlers on any number of threads push samples, one
// ordinary thread (the profiler's collector) drains them.
//
// Thread and signal safety:
//   - TryPush() is async-signal-safe and lock-free: no allocation, no lock,
//     no system call, never waits. When the ring is full the sample is
//     dropped and counted (dropped()). It may be called concurrently from
//     any number of threads and signal handlers, including a handler that
//     interrupted a TryPush() on the same thread.
//   - Drain() must be called by one thread at a time (single reader).
//   - dropped(), pushed(), capacity() may be called from anywhere.
//   - Storage is mmap'ed once, in Create(); nothing is allocated afterwards.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<flamekit::StackRing>> ring =
//       flamekit::StackRing::Create(4096);
//   // In a signal handler:
//   (*ring)->TryPush(tid, now_ns, /*weight=*/1, frames, n, /*flags=*/0);
//   // On the collector thread:
//   (*ring)->Drain([&](const flamekit::StackRecord& r) { Fold(r); });

#ifndef FLAMEKIT_BUFFER_STACK_RING_H_
#define FLAMEKIT_BUFFER_STACK_RING_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <atomic>
#include <memory>
#include <new>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "flamekit/buffer/stack_record.h"

namespace flamekit {

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "StackRing needs lock-free 64-bit atomics to be signal-safe");

class StackRing {
 public:
  // Default capacity (records). At FLAMEKIT_MAX_FRAMES=128 a record is about
  // 1.1 KB, so 4096 records reserve ~4.5 MB of address space; pages are
  // only resident once written.
  static constexpr size_t kDefaultCapacity = 4096;
  static_assert((kDefaultCapacity & (kDefaultCapacity - 1)) == 0,
                "StackRing capacity must be a power of two");
  static constexpr size_t kMaxCapacity = size_t{1} << 20;

  // Create()
  //
  // Reserves a ring of `capacity` records (a power of two in [2, 2^20]).
  // InvalidArgument for another capacity, ResourceExhausted if mmap fails.
  static absl::StatusOr<std::unique_ptr<StackRing>> Create(
      size_t capacity = kDefaultCapacity);

  ~StackRing();
  StackRing(const StackRing&) = delete;
  StackRing& operator=(const StackRing&) = delete;
  StackRing(StackRing&&) = delete;
  StackRing& operator=(StackRing&&) = delete;

  // TryPush()
  //
  // Appends a record holding frames[0..frame_count) (leaf first; at most
  // kMaxStackFrames are kept, more sets kStackRecordTruncated), followed by
  // `leaf_stack_words` stack words from frames[frame_count..] where they
  // fit (StackRecord::leaf_stack_words). Returns false, counting a drop,
  // when the ring is full.
  // Async-signal-safe, lock-free, wait-free when not contended.
  bool TryPush(uint32_t tid, uint64_t timestamp_ns, uint64_t weight,
               const uint64_t* frames, size_t frame_count, uint8_t flags,
               ThreadState state = ThreadState::kUnknown,
               int32_t syscall_number = -1, uint64_t sp = 0,
               size_t leaf_stack_words = 0);

  // TryPush()
  //
  // Appends a copy of `record` (only its first frame_count frames are
  // copied). Same contract as above.
  bool TryPush(const StackRecord& record);

  // Drain()
  //
  // Calls fn(const StackRecord&) for each record published so far, in push
  // order per writer, at most `max_records` of them, and frees their slots.
  // Stops early at a slot a writer claimed but has not finished (it is
  // picked up by the next Drain). Returns the number of records passed to fn.
  // Single reader: never call concurrently with another Drain().
  template <typename Fn>
  size_t Drain(Fn&& fn, size_t max_records = SIZE_MAX);

  size_t capacity() const { return mask_ + 1; }
  // Samples dropped because the ring was full. Async-signal-safe.
  uint64_t dropped() const {
    // Relaxed: a statistic; no other memory is published through it.
    return dropped_.load(std::memory_order_relaxed);
  }
  // Samples accepted so far. Async-signal-safe.
  uint64_t pushed() const {
    // Relaxed: a statistic.
    return pushed_.load(std::memory_order_relaxed);
  }
  // Counts a sample lost before it reached the ring (e.g. the handler could
  // not unwind), so that it is reported with the drops. Async-signal-safe.
  void CountDrop() { dropped_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // One slot per record. `sequence` is Vyukov's per-slot turn counter:
  //   sequence == pos            free, writers may claim it for position pos
  //   sequence == pos + 1        published, the reader may take it
  //   sequence == pos + capacity freed by the reader for the next lap
  struct alignas(64) Slot {
    std::atomic<uint64_t> sequence;
    StackRecord record;
  };

  StackRing(Slot* slots, size_t capacity, size_t mapped_bytes)
      : slots_(slots), mask_(capacity - 1), mapped_bytes_(mapped_bytes) {}

  Slot* const slots_;
  const uint64_t mask_;
  const size_t mapped_bytes_;
  // Writers' next position; a different cache line from the reader's.
  alignas(64) std::atomic<uint64_t> enqueue_pos_{0};
  alignas(64) uint64_t dequeue_pos_ = 0;  // touched by the reader only
  alignas(64) std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> pushed_{0};
};

// Implementation details follow.

namespace buffer_internal {

// Copies n words by hand: the handler path avoids relying on libc's memcpy
// being signal-safe on every libc (async-profiler does the same).
inline void CopyFrames(uint64_t* dst, const uint64_t* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

}  // namespace buffer_internal

inline absl::StatusOr<std::unique_ptr<StackRing>> StackRing::Create(
    size_t capacity) {
  if (capacity < 2 || capacity > kMaxCapacity ||
      (capacity & (capacity - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "StackRing capacity ", capacity,
        " is not a power of two in [2, 1048576]; pick e.g. 4096"));
  }
  const size_t page = 4096;
  size_t bytes = capacity * sizeof(Slot);
  bytes = (bytes + page - 1) / page * page;
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "StackRing: mmap of ", bytes,
        " bytes failed; lower the ring capacity or raise the memory limit"));
  }
  Slot* slots = static_cast<Slot*>(memory);
  for (size_t i = 0; i < capacity; ++i) {
    // Constructs the slot's turn counter; this touches every page, so the
    // whole ring is resident from the start (no page faults in handlers).
    new (&slots[i].sequence) std::atomic<uint64_t>(i);
  }
  return std::unique_ptr<StackRing>(new StackRing(slots, capacity, bytes));
}

inline StackRing::~StackRing() { munmap(slots_, mapped_bytes_); }

inline bool StackRing::TryPush(const StackRecord& record) {
  return TryPush(record.tid, record.timestamp_ns, record.weight, record.frames,
                 record.frame_count, record.flags, record.state,
                 record.syscall_number, record.sp, record.leaf_stack_words);
}

inline bool StackRing::TryPush(uint32_t tid, uint64_t timestamp_ns,
                               uint64_t weight, const uint64_t* frames,
                               size_t frame_count, uint8_t flags,
                               ThreadState state, int32_t syscall_number,
                               uint64_t sp, size_t leaf_stack_words) {
  // Relaxed: the position is only a hint; the slot's sequence (acquire
  // below) is what proves the slot is free.
  uint64_t pos = enqueue_pos_.load(std::memory_order_relaxed);
  Slot* slot;
  for (;;) {
    slot = &slots_[pos & mask_];
    // Acquire: pairs with the reader's release in Drain(), so the reader's
    // last read of this slot's record happens before we overwrite it.
    uint64_t seq = slot->sequence.load(std::memory_order_acquire);
    int64_t diff = static_cast<int64_t>(seq) - static_cast<int64_t>(pos);
    if (diff == 0) {
      // Relaxed CAS: claiming a position orders nothing by itself; the
      // record is published by the release store on `sequence` below. A
      // failed CAS reloads `pos` and retries (another writer won: lock-free).
      if (enqueue_pos_.compare_exchange_weak(pos, pos + 1,
                                             std::memory_order_relaxed,
                                             std::memory_order_relaxed)) {
        break;
      }
    } else if (diff < 0) {
      // The slot still holds a record from the previous lap: full. Drop.
      // Relaxed: a statistic.
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    } else {
      // Another writer claimed `pos` already; catch up.
      pos = enqueue_pos_.load(std::memory_order_relaxed);
    }
  }
  StackRecord& r = slot->record;
  if (frame_count > kMaxStackFrames) {
    frame_count = kMaxStackFrames;
    flags |= kStackRecordTruncated;
  }
  r.tid = tid;
  r.frame_count = static_cast<uint32_t>(frame_count);
  r.timestamp_ns = timestamp_ns;
  r.weight = weight;
  r.sp = sp;
  r.syscall_number = syscall_number;
  r.state = state;
  r.flags = flags;
  if (leaf_stack_words > kMaxStackFrames - frame_count) {
    leaf_stack_words = kMaxStackFrames - frame_count;
  }
  r.leaf_stack_words = static_cast<uint16_t>(leaf_stack_words);
  buffer_internal::CopyFrames(r.frames, frames, frame_count + leaf_stack_words);
  // Release: makes the record written above visible to the reader that
  // acquires sequence == pos + 1.
  slot->sequence.store(pos + 1, std::memory_order_release);
  // Relaxed: a statistic.
  pushed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

template <typename Fn>
size_t StackRing::Drain(Fn&& fn, size_t max_records) {
  size_t drained = 0;
  while (drained < max_records) {
    Slot& slot = slots_[dequeue_pos_ & mask_];
    // Acquire: pairs with the writer's release; the record is complete.
    uint64_t seq = slot.sequence.load(std::memory_order_acquire);
    if (seq != dequeue_pos_ + 1) break;  // empty, or claimed but unfinished
    fn(static_cast<const StackRecord&>(slot.record));
    // Release: our reads of the record happen before a writer of the next
    // lap (which acquires this value) overwrites it.
    slot.sequence.store(dequeue_pos_ + mask_ + 1, std::memory_order_release);
    ++dequeue_pos_;
    ++drained;
  }
  return drained;
}

}  // namespace flamekit

#endif  // FLAMEKIT_BUFFER_STACK_RING_H_
