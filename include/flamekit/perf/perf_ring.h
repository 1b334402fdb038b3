// SPDX-License-Identifier: Apache-2.0
// File: perf_ring.h
//
// PerfRing reads the ring buffer the kernel fills for one perf event fd
// (mmap'd: one metadata page + 2^n data pages). Read() walks the records
// between data_tail and data_head, copies out those that wrap around the end
// of the buffer, decodes PERF_RECORD_SAMPLE (IP|TID|TIME|CALLCHAIN and the
// other fixed-size fields before READ), MMAP/MMAP2, COMM, FORK/EXIT,
// SWITCH, LOST/LOST_SAMPLES and THROTTLE, hands them to a PerfRecordSink, and gives
// the space back to the kernel.
//
// Thread-safety: a PerfRing has one reader: Read() must not run on two
// threads at once (the kernel is the only writer). Not async-signal-safe
// (Map() allocates; Read() calls the sink). Records the kernel could not
// write because the ring was full arrive as PERF_RECORD_LOST and are
// counted, never waited for.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(ScopedFd fd, OpenPerfEvent(options));
//   FLAMEKIT_ASSIGN_OR_RETURN(PerfRing ring,
//                             PerfRing::Map(fd.get(), /*data_pages=*/16,
//                                           options.sample_type));
//   struct Sink : PerfRecordSink {
//     void OnSample(const PerfSample& s) override { ... s.callchain ... }
//   } sink;
//   // after poll() says fd is readable:
//   ring.Read(sink);
//   ring.lost_records();   // PERF_RECORD_LOST totals so far

#ifndef FLAMEKIT_PERF_PERF_RING_H_
#define FLAMEKIT_PERF_PERF_RING_H_

#include <errno.h>
#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "flamekit/perf/perf_record.h"

namespace flamekit {

class PerfRing {
 public:
  // Map()
  //
  // mmaps 1 + `data_pages` pages of `fd` (data_pages a power of two; the fd
  // stays owned by the caller and must outlive the ring). Errors:
  // EPERM/ENOMEM from the locked-memory limit give ResourceExhausted naming
  // perf_event_mlock_kb and `ulimit -l`. `regs_user_mask`: the event's
  // sample_regs_user, with PERF_SAMPLE_REGS_USER in sample_type.
  static absl::StatusOr<PerfRing> Map(int fd, size_t data_pages, uint64_t sample_type,
                                      uint64_t regs_user_mask = 0);

  PerfRing(PerfRing&& other) noexcept;
  PerfRing& operator=(PerfRing&& other) noexcept;
  PerfRing(const PerfRing&) = delete;
  PerfRing& operator=(const PerfRing&) = delete;
  ~PerfRing();

  // Read()
  //
  // Decodes every record the kernel has published, calls the sink for each,
  // frees their space, and returns what it decoded. Never blocks.
  PerfRecordCounts Read(PerfRecordSink& sink);

  // Bytes published but not yet read.
  size_t pending_bytes() const;

  int fd() const { return fd_; }
  size_t data_size() const { return data_size_; }
  const PerfRecordCounts& totals() const { return totals_; }
  uint64_t lost_samples() const { return totals_.lost_samples; }

 private:
  PerfRing() = default;
  void Unmap();

  int fd_ = -1;
  void* base_ = nullptr;      // metadata page, then the data pages
  size_t mapped_size_ = 0;
  size_t data_size_ = 0;      // power of two
  uint64_t sample_type_ = 0;
  uint64_t regs_user_mask_ = 0;
  PerfRecordCounts totals_;
  std::vector<uint8_t> scratch_;  // a record that wraps around is copied here
};

// Implementation details follow.

inline absl::StatusOr<PerfRing> PerfRing::Map(int fd, size_t data_pages, uint64_t sample_type,
                                              uint64_t regs_user_mask) {
  if (data_pages == 0 || (data_pages & (data_pages - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("perf ring of ", data_pages, " data pages: use a power of two, e.g. 16"));
  }
  absl::Status type_ok = CheckSampleType(sample_type);
  if (!type_ok.ok()) return type_ok;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = (data_pages + 1) * page;
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    if (err == EPERM || err == ENOMEM) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "mmap of a ", size / 1024, " KiB perf ring: ", strerror(err),
          ": the locked-memory budget for perf rings is used up; raise "
          "/proc/sys/kernel/perf_event_mlock_kb or `ulimit -l`, profile fewer threads, "
          "or use smaller rings"));
    }
    return absl::ErrnoToStatus(err, "mmap of the perf ring");
  }
  PerfRing ring;
  ring.fd_ = fd;
  ring.base_ = base;
  ring.mapped_size_ = size;
  ring.data_size_ = data_pages * page;
  ring.sample_type_ = sample_type;
  ring.regs_user_mask_ = regs_user_mask;
  auto* meta = static_cast<perf_event_mmap_page*>(base);
  // Kernels since 4.1 say where the data area is; older ones put it one
  // page in.
  if (meta->data_size != 0 && meta->data_size != ring.data_size_) {
    ring.data_size_ = meta->data_size;
  }
  return ring;
}

inline PerfRing::PerfRing(PerfRing&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      base_(std::exchange(other.base_, nullptr)),
      mapped_size_(std::exchange(other.mapped_size_, 0)),
      data_size_(std::exchange(other.data_size_, 0)),
      sample_type_(other.sample_type_),
      regs_user_mask_(other.regs_user_mask_),
      totals_(other.totals_),
      scratch_(std::move(other.scratch_)) {}

inline PerfRing& PerfRing::operator=(PerfRing&& other) noexcept {
  if (this != &other) {
    Unmap();
    fd_ = std::exchange(other.fd_, -1);
    base_ = std::exchange(other.base_, nullptr);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
    data_size_ = std::exchange(other.data_size_, 0);
    sample_type_ = other.sample_type_;
    regs_user_mask_ = other.regs_user_mask_;
    totals_ = other.totals_;
    scratch_ = std::move(other.scratch_);
  }
  return *this;
}

inline PerfRing::~PerfRing() { Unmap(); }

inline void PerfRing::Unmap() {
  if (base_ != nullptr) munmap(base_, mapped_size_);
  base_ = nullptr;
}

inline size_t PerfRing::pending_bytes() const {
  if (base_ == nullptr) return 0;
  auto* meta = static_cast<perf_event_mmap_page*>(base_);
  uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;  // only we write it
  return static_cast<size_t>(head - tail);
}

inline PerfRecordCounts PerfRing::Read(PerfRecordSink& sink) {
  PerfRecordCounts counts;
  if (base_ == nullptr) return counts;
  auto* meta = static_cast<perf_event_mmap_page*>(base_);
  size_t data_offset = meta->data_offset != 0 ? static_cast<size_t>(meta->data_offset)
                                               : static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uint8_t* data = static_cast<const uint8_t*>(base_) + data_offset;
  // Acquire pairs with the kernel's smp_store_release of data_head: the
  // record bytes before head are visible once we see head.
  const uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  // Only this reader writes data_tail; a relaxed read of our own store.
  uint64_t tail = __atomic_load_n(&meta->data_tail, __ATOMIC_RELAXED);
  const uint64_t mask = data_size_ - 1;
  while (tail < head) {
    const uint64_t offset = tail & mask;
    perf_event_header header;
    // The 8-byte header itself never wraps (records are 8-aligned), but
    // copy it to stay within the strict-aliasing rules.
    if (offset + sizeof(header) <= data_size_) {
      memcpy(&header, data + offset, sizeof(header));
    } else {
      size_t first = data_size_ - offset;
      memcpy(&header, data + offset, first);
      memcpy(reinterpret_cast<uint8_t*>(&header) + first, data, sizeof(header) - first);
    }
    if (header.size < sizeof(header) || header.size > head - tail) {
      // Corrupt or half-published: give up on what is left rather than
      // loop or read garbage.
      ++counts.malformed;
      tail = head;
      break;
    }
    // Copy every record out (8-aligned, and the kernel may overwrite the
    // space as soon as data_tail moves past it). Records are small.
    scratch_.resize((header.size + 7) / 8 * 8);
    if (offset + header.size <= data_size_) {
      memcpy(scratch_.data(), data + offset, header.size);
    } else {
      size_t first = data_size_ - offset;
      memcpy(scratch_.data(), data + offset, first);
      memcpy(scratch_.data() + first, data, header.size - first);
    }
    DecodePerfRecord(absl::MakeConstSpan(scratch_.data(), header.size), sample_type_, sink,
                     counts, regs_user_mask_);
    tail += header.size;
  }
  // Release: our reads of the records happen before the kernel may reuse
  // their space (pairs with the kernel's read of data_tail).
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
  totals_ += counts;
  return counts;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PERF_PERF_RING_H_
