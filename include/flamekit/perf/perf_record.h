// SPDX-License-Identifier: Apache-2.0
// File: perf_record.h
//
// The records of a perf event's ring buffer, decoded: PERF_RECORD_SAMPLE
// (IP|TID|TIME|CALLCHAIN and the other fixed-size fields before READ, plus
// REGS_USER and STACK_USER), MMAP/MMAP2, COMM, FORK/EXIT, SWITCH,
// LOST/LOST_SAMPLES and THROTTLE, handed to a PerfRecordSink. PerfRing
// (perf_ring.h) feeds it from the kernel; tests and fuzzers feed it bytes.
//
// Thread and signal safety: DecodePerfRecord() allocates nothing and keeps
// no state of its own, so it is as thread- and signal-safe as the sink and
// counts it is given (flamekit's sinks allocate, on reader threads).
// CheckSampleType() allocates its error message. A malformed record is
// counted and skipped; no record is read past its end.
//
// Example:
//
//   struct Sink : PerfRecordSink {
//     void OnSample(const PerfSample& s) override { ... s.callchain ... }
//   } sink;
//   PerfRecordCounts counts;
//   DecodePerfRecord(record_bytes, sample_type, sink, counts);

#ifndef FLAMEKIT_PERF_PERF_RECORD_H_
#define FLAMEKIT_PERF_PERF_RECORD_H_

#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace flamekit {

// PerfSample
//
// One PERF_RECORD_SAMPLE. Fields the event's sample_type lacks are zero.
// `callchain` is the kernel's raw chain, leaf first, with PERF_CONTEXT_*
// markers (see ForEachCallchainFrame()); valid only during the sink call.
struct PerfSample {
  uint64_t ip = 0;
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t time = 0;
  uint64_t addr = 0;
  uint64_t id = 0;
  uint32_t cpu = 0;
  uint64_t period = 0;
  absl::Span<const uint64_t> callchain;
  // PERF_SAMPLE_STACK_USER: the bytes of the user stack from the user stack
  // pointer up, as many as the kernel could copy (its dyn_size); valid only
  // during the sink call.
  absl::Span<const uint8_t> user_stack;
  // PERF_SAMPLE_REGS_USER: the ABI of the user registers (0: none, e.g. a
  // kernel thread) and their values, in bit order of the regs_user_mask
  // the ring was mapped with; valid only during the sink call.
  uint64_t regs_user_abi = 0;
  absl::Span<const uint64_t> regs_user;
};

// PerfMmapRecord
//
// PERF_RECORD_MMAP or MMAP2: an executable mapping appeared (a dlopen, an
// exec). build-id and device fields are only in MMAP2.
struct PerfMmapRecord {
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t addr = 0;
  uint64_t len = 0;
  uint64_t pgoff = 0;
  uint32_t prot = 0;
  uint32_t flags = 0;
  // The file's device and inode (MMAP2 without a build id only).
  uint32_t maj = 0;
  uint32_t min = 0;
  uint64_t ino = 0;
  bool is_mmap2 = false;
  absl::string_view filename;  // valid only during the sink call
};

// PerfCommRecord
//
// PERF_RECORD_COMM: a thread got a name, or the process exec'd (`exec`).
struct PerfCommRecord {
  uint32_t pid = 0;
  uint32_t tid = 0;
  bool exec = false;
  absl::string_view comm;  // valid only during the sink call
};

// PerfTaskRecord
//
// PERF_RECORD_FORK (a thread or process was created) or PERF_RECORD_EXIT.
struct PerfTaskRecord {
  bool is_exit = false;
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t tid = 0;
  uint32_t ptid = 0;
  uint64_t time = 0;
};

// PerfSwitchRecord
//
// PERF_RECORD_SWITCH (attr.context_switch): the thread went off a CPU
// (`out`; `preempt`: it was still runnable) or came back on. pid/tid/time
// come from the sample_id trailer (zero when sample_type lacks TID/TIME).
struct PerfSwitchRecord {
  bool out = false;
  bool preempt = false;
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t time = 0;
};

// PerfRecordSink
//
// Receives decoded records. Override what you need; the rest are ignored.
class PerfRecordSink {
 public:
  virtual ~PerfRecordSink() = default;
  virtual void OnSample(const PerfSample& sample) { (void)sample; }
  virtual void OnMmap(const PerfMmapRecord& mmap) { (void)mmap; }
  virtual void OnComm(const PerfCommRecord& comm) { (void)comm; }
  virtual void OnTask(const PerfTaskRecord& task) { (void)task; }
  virtual void OnSwitch(const PerfSwitchRecord& record) { (void)record; }
  // `lost` samples the kernel dropped (ring full or, for LOST_SAMPLES, an
  // internal drop).
  virtual void OnLost(uint64_t lost) { (void)lost; }
};

// PerfRecordCounts
//
// What one Read() (or all of them, from PerfRing::totals()) decoded.
struct PerfRecordCounts {
  uint64_t samples = 0;
  uint64_t mmaps = 0;
  uint64_t comms = 0;
  uint64_t tasks = 0;
  uint64_t lost_records = 0;   // PERF_RECORD_LOST / LOST_SAMPLES records
  uint64_t lost_samples = 0;   // the samples they say were lost
  uint64_t throttles = 0;      // PERF_RECORD_THROTTLE: the kernel slowed us
  uint64_t malformed = 0;      // records too short for their type (skipped)
  uint64_t other = 0;          // types flamekit does not decode
  uint64_t bytes = 0;

  PerfRecordCounts& operator+=(const PerfRecordCounts& o);
};

// CheckSampleType()
//
// OK when DecodePerfRecord() can decode samples of this sample_type:
// IDENTIFIER, IP, TID, TIME, ADDR, ID, STREAM_ID, CPU, PERIOD, CALLCHAIN,
// REGS_USER, STACK_USER. InvalidArgument for READ, RAW, BRANCH_STACK and
// the rest.
absl::Status CheckSampleType(uint64_t sample_type);

// DecodePerfRecord()
//
// Decodes one complete record (header included, `record.size()` ==
// header.size), calls the sink and adds to `counts`. Malformed records are
// counted and skipped, never read past their end. `regs_user_mask`: the
// event's sample_regs_user (how many registers a REGS_USER block holds).
void DecodePerfRecord(absl::Span<const uint8_t> record, uint64_t sample_type,
                      PerfRecordSink& sink, PerfRecordCounts& counts,
                      uint64_t regs_user_mask = 0);

// ForEachCallchainFrame()
//
// Calls fn(uint64_t address, bool is_kernel) for each real frame of a raw
// callchain, leaf first, skipping the PERF_CONTEXT_* markers.
template <typename Fn>
void ForEachCallchainFrame(absl::Span<const uint64_t> callchain, Fn&& fn);

// Implementation details follow.

namespace perf_internal {

// A bounds-checked little reader over one record's bytes.
class RecordReader {
 public:
  explicit RecordReader(absl::Span<const uint8_t> bytes) : bytes_(bytes) {}
  template <typename T>
  bool Read(T* out) {
    if (pos_ + sizeof(T) > bytes_.size()) return false;
    memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool Skip(size_t n) {
    if (pos_ + n > bytes_.size()) return false;
    pos_ += n;
    return true;
  }
  // A pointer to `n` u64s in place, or nullptr; the record buffer is 8-byte
  // aligned (the kernel aligns records to 8, and we copy into a vector).
  const uint64_t* U64Array(size_t n) {
    if (n > (bytes_.size() - pos_) / sizeof(uint64_t)) return nullptr;
    const uint64_t* p = reinterpret_cast<const uint64_t*>(bytes_.data() + pos_);
    pos_ += n * sizeof(uint64_t);
    return p;
  }
  // A NUL-terminated string in the rest of the record.
  absl::string_view CString() {
    size_t start = pos_;
    size_t end = start;
    while (end < bytes_.size() && bytes_[end] != 0) ++end;
    pos_ = end;
    return absl::string_view(reinterpret_cast<const char*>(bytes_.data() + start), end - start);
  }

 private:
  absl::Span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

inline constexpr uint64_t kSupportedSampleType =
    PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
    PERF_SAMPLE_ADDR | PERF_SAMPLE_ID | PERF_SAMPLE_STREAM_ID | PERF_SAMPLE_CPU |
    PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_STACK_USER |
    PERF_SAMPLE_REGS_USER;

inline bool DecodeSample(absl::Span<const uint8_t> record, uint64_t sample_type,
                         PerfSample* s, uint64_t regs_user_mask = 0) {
  RecordReader r(record);
  if (!r.Skip(sizeof(perf_event_header))) return false;
  uint64_t u64 = 0;
  if ((sample_type & PERF_SAMPLE_IDENTIFIER) && !r.Read(&s->id)) return false;
  if ((sample_type & PERF_SAMPLE_IP) && !r.Read(&s->ip)) return false;
  if (sample_type & PERF_SAMPLE_TID) {
    if (!r.Read(&s->pid) || !r.Read(&s->tid)) return false;
  }
  if ((sample_type & PERF_SAMPLE_TIME) && !r.Read(&s->time)) return false;
  if ((sample_type & PERF_SAMPLE_ADDR) && !r.Read(&s->addr)) return false;
  if ((sample_type & PERF_SAMPLE_ID) && !r.Read(&s->id)) return false;
  if ((sample_type & PERF_SAMPLE_STREAM_ID) && !r.Read(&u64)) return false;
  if (sample_type & PERF_SAMPLE_CPU) {
    uint32_t res = 0;
    if (!r.Read(&s->cpu) || !r.Read(&res)) return false;
  }
  if ((sample_type & PERF_SAMPLE_PERIOD) && !r.Read(&s->period)) return false;
  if (sample_type & PERF_SAMPLE_CALLCHAIN) {
    uint64_t nr = 0;
    if (!r.Read(&nr)) return false;
    const uint64_t* ips = r.U64Array(nr);
    if (ips == nullptr) return false;
    s->callchain = absl::MakeConstSpan(ips, nr);
  }
  // (RAW and BRANCH_STACK would come here; CheckSampleType() refuses
  // them.)
  if (sample_type & PERF_SAMPLE_REGS_USER) {
    // { u64 abi; u64 regs[popcount(mask)]; }, regs only when abi is not 0.
    if (!r.Read(&s->regs_user_abi)) return false;
    if (s->regs_user_abi != 0) {
      const size_t n = static_cast<size_t>(__builtin_popcountll(regs_user_mask));
      const uint64_t* regs = r.U64Array(n);
      if (regs == nullptr) return false;
      s->regs_user = absl::MakeConstSpan(regs, n);
    }
  }
  if (sample_type & PERF_SAMPLE_STACK_USER) {
    // { u64 size; char data[size]; u64 dyn_size; }, dyn_size only when
    // size is not 0: how much of data the kernel could fill.
    uint64_t size = 0;
    if (!r.Read(&size)) return false;
    if (size != 0) {
      const uint64_t* data = r.U64Array(size / 8);
      uint64_t dyn_size = 0;
      if (data == nullptr || size % 8 != 0 || !r.Read(&dyn_size)) return false;
      s->user_stack = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data),
                                          static_cast<size_t>(std::min(dyn_size, size)));
    }
  }
  return true;
}

}  // namespace perf_internal

inline PerfRecordCounts& PerfRecordCounts::operator+=(const PerfRecordCounts& o) {
  samples += o.samples;
  mmaps += o.mmaps;
  comms += o.comms;
  tasks += o.tasks;
  lost_records += o.lost_records;
  lost_samples += o.lost_samples;
  throttles += o.throttles;
  malformed += o.malformed;
  other += o.other;
  bytes += o.bytes;
  return *this;
}

inline absl::Status CheckSampleType(uint64_t sample_type) {
  uint64_t unsupported = sample_type & ~perf_internal::kSupportedSampleType;
  if (unsupported != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "perf sample_type 0x", absl::Hex(sample_type), " has fields PerfRing cannot decode (0x",
        absl::Hex(unsupported),
        "); use IP, TID, TIME, ADDR, ID, STREAM_ID, CPU, PERIOD, CALLCHAIN, REGS_USER, "
        "STACK_USER, IDENTIFIER"));
  }
  return absl::OkStatus();
}

inline void DecodePerfRecord(absl::Span<const uint8_t> record, uint64_t sample_type,
                             PerfRecordSink& sink, PerfRecordCounts& counts,
                             uint64_t regs_user_mask) {
  using perf_internal::RecordReader;
  counts.bytes += record.size();
  perf_event_header header;
  if (record.size() < sizeof(header)) {
    ++counts.malformed;
    return;
  }
  memcpy(&header, record.data(), sizeof(header));
  RecordReader r(record);
  r.Skip(sizeof(header));
  switch (header.type) {
    case PERF_RECORD_SAMPLE: {
      PerfSample sample;
      if (!perf_internal::DecodeSample(record, sample_type, &sample, regs_user_mask)) {
        ++counts.malformed;
        return;
      }
      ++counts.samples;
      sink.OnSample(sample);
      return;
    }
    case PERF_RECORD_MMAP:
    case PERF_RECORD_MMAP2: {
      PerfMmapRecord m;
      m.is_mmap2 = header.type == PERF_RECORD_MMAP2;
      bool ok = r.Read(&m.pid) && r.Read(&m.tid) && r.Read(&m.addr) && r.Read(&m.len) &&
                r.Read(&m.pgoff);
      if (ok && m.is_mmap2) {
        // maj, min, ino, ino_generation (or, with
        // PERF_RECORD_MISC_MMAP_BUILD_ID, a build id of the same size),
        // then prot, flags.
        if (header.misc & PERF_RECORD_MISC_MMAP_BUILD_ID) {
          ok = r.Skip(4 + 4 + 8 + 8);
        } else {
          uint64_t ino_generation = 0;
          ok = r.Read(&m.maj) && r.Read(&m.min) && r.Read(&m.ino) && r.Read(&ino_generation);
        }
        ok = ok && r.Read(&m.prot) && r.Read(&m.flags);
      }
      if (!ok) {
        ++counts.malformed;
        return;
      }
      m.filename = r.CString();
      ++counts.mmaps;
      sink.OnMmap(m);
      return;
    }
    case PERF_RECORD_COMM: {
      PerfCommRecord c;
      if (!r.Read(&c.pid) || !r.Read(&c.tid)) {
        ++counts.malformed;
        return;
      }
      c.exec = (header.misc & PERF_RECORD_MISC_COMM_EXEC) != 0;
      c.comm = r.CString();
      ++counts.comms;
      sink.OnComm(c);
      return;
    }
    case PERF_RECORD_FORK:
    case PERF_RECORD_EXIT: {
      PerfTaskRecord t;
      t.is_exit = header.type == PERF_RECORD_EXIT;
      if (!r.Read(&t.pid) || !r.Read(&t.ppid) || !r.Read(&t.tid) || !r.Read(&t.ptid) ||
          !r.Read(&t.time)) {
        ++counts.malformed;
        return;
      }
      ++counts.tasks;
      sink.OnTask(t);
      return;
    }
    case PERF_RECORD_LOST:
    case PERF_RECORD_LOST_SAMPLES: {
      // LOST names the event first; LOST_SAMPLES holds only the count.
      uint64_t id = 0, lost = 0;
      if ((header.type == PERF_RECORD_LOST && !r.Read(&id)) || !r.Read(&lost)) {
        ++counts.malformed;
        return;
      }
      ++counts.lost_records;
      counts.lost_samples += lost;
      sink.OnLost(lost);
      return;
    }
    case PERF_RECORD_SWITCH: {
      // No body: only the sample_id trailer (TID, then TIME, come first).
      PerfSwitchRecord sw;
      sw.out = (header.misc & PERF_RECORD_MISC_SWITCH_OUT) != 0;
#ifdef PERF_RECORD_MISC_SWITCH_OUT_PREEMPT
      sw.preempt = (header.misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) != 0;
#endif
      if (((sample_type & PERF_SAMPLE_TID) && (!r.Read(&sw.pid) || !r.Read(&sw.tid))) ||
          ((sample_type & PERF_SAMPLE_TIME) && !r.Read(&sw.time))) {
        ++counts.malformed;
        return;
      }
      ++counts.other;
      sink.OnSwitch(sw);
      return;
    }
    case PERF_RECORD_THROTTLE:
      ++counts.throttles;
      return;
    default:
      ++counts.other;
      return;
  }
}

template <typename Fn>
void ForEachCallchainFrame(absl::Span<const uint64_t> callchain, Fn&& fn) {
  bool kernel = false;
  for (uint64_t address : callchain) {
    if (address >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      // A context marker: what follows is kernel, user, or guest code.
      kernel = address == static_cast<uint64_t>(PERF_CONTEXT_KERNEL) ||
               address == static_cast<uint64_t>(PERF_CONTEXT_GUEST_KERNEL) ||
               address == static_cast<uint64_t>(PERF_CONTEXT_HV);
      continue;
    }
    fn(address, kernel);
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_PERF_PERF_RECORD_H_
