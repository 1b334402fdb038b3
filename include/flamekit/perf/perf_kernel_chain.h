// SPDX-License-Identifier: Apache-2.0
// File: perf_kernel_chain.h
//
// Kernel frames for the `cpu` engine. Each thread's perf event also writes
// its kernel callchain (PERF_SAMPLE_CALLCHAIN with exclude_callchain_user)
// into a small ring of its own; the same overflow then signals the thread,
// and the handler, running on that thread, takes the newest chain out of the
// ring and puts it in front of the user frames it unwinds itself.
//
// Signal safety: TakeNewestKernelChain() and FindKernelChainRing() are
// async-signal-safe (plain loads and stores on the mapped ring, no system
// call, no allocation). A ring has one reader, the handler of the thread
// that owns it; the kernel is the only writer. MapKernelChainRing() and
// UnmapKernelChainRing() are for the control thread; a ring must be
// unpublished (PublishKernelChainRing(fd, nullptr)) and the handlers that
// might hold it waited for before it is unmapped.
//
// Example (control thread):
//
//   void* ring = MapKernelChainRing(fd);            // nullptr: no ring
//   PublishKernelChainRing(fd, ring);
//   ...
//   PublishKernelChainRing(fd, nullptr);
//   WaitForSampleHandlers();                         // sampler.h
//   UnmapKernelChainRing(ring);
//
// In the handler:
//
//   size_t n = TakeNewestKernelChain(FindKernelChainRing(info->si_fd), frames, max);

#ifndef FLAMEKIT_PERF_PERF_KERNEL_CHAIN_H_
#define FLAMEKIT_PERF_PERF_KERNEL_CHAIN_H_

#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

namespace flamekit {

// Deepest kernel chain asked of the kernel (perf_event_attr.sample_max_stack).
inline constexpr uint16_t kMaxKernelChain = 64;

// Data pages of a kernel chain ring (plus one metadata page). A sample is at
// most 8 + 8 + 8 * (64 + 2 context markers) = 544 bytes.
inline constexpr size_t kKernelChainDataPages = 2;

// MapKernelChainRing()
//
// Maps the ring of perf event `fd`, or nullptr when it cannot be mapped.
void* MapKernelChainRing(int fd);
void UnmapKernelChainRing(void* ring);

// PublishKernelChainRing() / FindKernelChainRing()
//
// The ring the handler uses for signals of perf fd `fd` (< 65536).
void PublishKernelChainRing(int fd, void* ring);
void* FindKernelChainRing(int fd);

// TakeNewestKernelChain()
//
// Consumes every record in `ring` and copies the kernel addresses of the
// newest sample, leaf first, into out[0..max) (context markers left out).
// Returns how many; 0 when the ring is null or empty, when the newest record
// is not a sample, or when the ring was so full that the newest overflow's
// sample may have been lost (its chain would belong to an older one).
size_t TakeNewestKernelChain(void* ring, uint64_t* out, size_t max);

// Implementation details follow.

namespace perf_internal {

inline constexpr int kMaxKernelChainFd = 65536;
// Constant-initialized (zero pages until touched): safe in signal context.
inline std::atomic<void*> g_kernel_chain_rings[kMaxKernelChainFd] = {};

inline size_t KernelChainPageSize() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }

// Copies `n` bytes at ring offset `at` (mod `size`) out of the data area.
inline void CopyOutOfRing(const volatile uint8_t* data, uint64_t size, uint64_t at, void* out,
                          size_t n) {
  uint8_t* dst = static_cast<uint8_t*>(out);
  for (size_t i = 0; i < n; ++i) dst[i] = data[(at + i) & (size - 1)];
}

}  // namespace perf_internal

inline void* MapKernelChainRing(int fd) {
  const size_t page = perf_internal::KernelChainPageSize();
  void* ring = mmap(nullptr, (1 + kKernelChainDataPages) * page, PROT_READ | PROT_WRITE,
                    MAP_SHARED, fd, 0);
  return ring == MAP_FAILED ? nullptr : ring;
}

inline void UnmapKernelChainRing(void* ring) {
  if (ring == nullptr) return;
  munmap(ring, (1 + kKernelChainDataPages) * perf_internal::KernelChainPageSize());
}

inline void PublishKernelChainRing(int fd, void* ring) {
  if (fd < 0 || fd >= perf_internal::kMaxKernelChainFd) return;
  // Seq_cst: pairs with the handler's active_handlers protocol (sampler.h):
  // after unpublishing and waiting, no handler holds the old ring.
  perf_internal::g_kernel_chain_rings[fd].store(ring, std::memory_order_seq_cst);
}

inline void* FindKernelChainRing(int fd) {
  if (fd < 0 || fd >= perf_internal::kMaxKernelChainFd) return nullptr;
  return perf_internal::g_kernel_chain_rings[fd].load(std::memory_order_seq_cst);
}

inline size_t TakeNewestKernelChain(void* ring, uint64_t* out, size_t max) {
  using perf_internal::CopyOutOfRing;
  if (ring == nullptr) return 0;
  auto* meta = static_cast<perf_event_mmap_page*>(ring);
  const uint64_t size = kKernelChainDataPages * perf_internal::KernelChainPageSize();
  const volatile uint8_t* data =
      static_cast<const uint8_t*>(ring) + perf_internal::KernelChainPageSize();
  // Acquire: the records up to head are written before head is published.
  const uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = __atomic_load_n(&meta->data_tail, __ATOMIC_RELAXED);
  if (head == tail) return 0;
  // Space is given back only here, so if the free space is now at least one
  // whole sample every overflow since the last read found room: the newest
  // sample is this signal's. Otherwise it may be an older one.
  constexpr uint64_t kMaxSampleBytes = 8 + 8 + 8 * (kMaxKernelChain + 8);
  const bool may_have_lost = head - tail > size || size - (head - tail) < kMaxSampleBytes;
  uint64_t newest = UINT64_MAX;
  while (!may_have_lost && tail < head) {
    perf_event_header header;
    CopyOutOfRing(data, size, tail, &header, sizeof(header));
    if (header.size < sizeof(header) || header.size > head - tail) break;  // torn: give up
    if (header.type == PERF_RECORD_SAMPLE) {
      newest = tail;
    } else if (header.type == PERF_RECORD_LOST) {
      newest = UINT64_MAX;
    }
    tail += header.size;
  }
  size_t count = 0;
  if (newest != UINT64_MAX && !may_have_lost) {
    uint64_t nr = 0;
    CopyOutOfRing(data, size, newest + sizeof(perf_event_header), &nr, sizeof(nr));
    if (nr > kMaxKernelChain + 8) nr = 0;
    for (uint64_t i = 0; i < nr && count < max; ++i) {
      uint64_t ip = 0;
      CopyOutOfRing(data, size, newest + sizeof(perf_event_header) + 8 + 8 * i, &ip, 8);
      if (ip >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) continue;  // PERF_CONTEXT_KERNEL...
      out[count++] = ip;
    }
  }
  // Release: our reads of the records happen before the kernel reuses them.
  __atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
  return count;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PERF_PERF_KERNEL_CHAIN_H_
