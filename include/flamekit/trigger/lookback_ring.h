// SPDX-License-Identifier: Apache-2.0
// File: lookback_ring.h
//
// LookbackRing: the last N seconds of low-rate samples that `flamekit
// watch` keeps while it waits for a trigger, so a capture that starts after
// the metric crossed its line still covers the onset. A sampler thread
// (the attach engine at FLAMEKIT_LOOKBACK_HZ) Add()s samples; when the
// trigger fires the watcher takes a Snapshot() and hands it to the capture,
// which writes it together with the full-rate part.
//
// Policy: memory is bounded by a capacity fixed at construction (no growth
// ever). A sample older than the window is dropped when the next one is
// added; if samples arrive faster than capacity/window, the oldest sample is
// overwritten and counted in overwritten(): the look-back then covers less
// than the window, never more memory.
//
// Thread-safety: thread-safe (one std::mutex); Add() from one or more
// sampler threads and Snapshot() from the watcher may race. Not
// async-signal-safe: feed it from an ordinary thread (the attach engine's
// ring reader), never from a signal handler.
//
// Example:
//
//   LookbackRing ring(absl::Seconds(10),
//                     LookbackRing::CapacityFor(absl::Seconds(10), FLAMEKIT_LOOKBACK_HZ));
//   ring.Add(LookbackSample{absl::Now(), tid, {pc0, pc1}, 1});   // sampler thread
//   std::vector<LookbackSample> onset = ring.Snapshot(absl::Now());  // at fire time

#ifndef FLAMEKIT_TRIGGER_LOOKBACK_RING_H_
#define FLAMEKIT_TRIGGER_LOOKBACK_RING_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <mutex>

#include "absl/time/time.h"

// FLAMEKIT_LOOKBACK_HZ: samples per second (per thread) of the look-back
// sampling while watch waits. Low on purpose (the idle cost on the target
// is this rate times the ~40 us cost of one perf sample here, ~0.08 % at
// 19 Hz); odd so it does not beat with 10 ms timers.
#ifndef FLAMEKIT_LOOKBACK_HZ
#define FLAMEKIT_LOOKBACK_HZ 19
#endif

namespace flamekit {

// LookbackSample
//
// One sample: when, which thread, the stack (leaf first, as profile.h's
// frames are addresses before symbolizing) and its weight (1 sample, or
// CPU ticks/ns for sources that measure).
struct LookbackSample {
  absl::Time time;
  int32_t tid = 0;
  std::vector<uint64_t> frames;
  uint64_t weight = 1;
};

// LookbackRing
//
// See the file comment. Copy and move are deleted (the mutex).
class LookbackRing {
 public:
  // `window`: how far back Snapshot() reaches; `capacity`: the most samples
  // kept (at least 1).
  LookbackRing(absl::Duration window, size_t capacity)
      : window_(window), slots_(capacity == 0 ? 1 : capacity) {}
  LookbackRing(const LookbackRing&) = delete;
  LookbackRing& operator=(const LookbackRing&) = delete;

  // CapacityFor()
  //
  // Slots needed for `window` at `rate_hz` samples/s over `threads`
  // threads, with 25 % slack for jitter.
  static size_t CapacityFor(absl::Duration window, double rate_hz, int threads = 1) {
    double n = absl::ToDoubleSeconds(window) * rate_hz * (threads > 0 ? threads : 1) * 1.25;
    return static_cast<size_t>(std::ceil(n)) + 1;
  }

  // Add()
  //
  // Stores a sample (times should not go backwards by more than a few ms;
  // older-than-window samples are dropped lazily). Overwrites the oldest
  // sample when full.
  void Add(LookbackSample sample);

  // Snapshot()
  //
  // Copies the samples with time in [now - window, now], oldest first.
  std::vector<LookbackSample> Snapshot(absl::Time now) const;

  // Clear()
  //
  // Forgets every sample (after a capture consumed them).
  void Clear();

  size_t capacity() const { return slots_.size(); }
  absl::Duration window() const { return window_; }
  size_t size() const;
  // Samples lost because the ring was full (not those aged out).
  uint64_t overwritten() const;

 private:
  const absl::Duration window_;
  // std::mutex rather than absl::Mutex: Debian's libabsl_synchronization is
  // not built with ThreadSanitizer annotations, so --config=tsan would see
  // races through it that are not there; pthread mutexes are intercepted.
  mutable std::mutex mu_;
  // All guarded by mu_.
  std::vector<LookbackSample> slots_;
  size_t head_ = 0;  // index of the oldest sample
  size_t count_ = 0;
  uint64_t overwritten_ = 0;
};

// Implementation details follow.

inline void LookbackRing::Add(LookbackSample sample) {
  std::lock_guard<std::mutex> lock(mu_);
  // Age out from the front first, so a quiet period frees slots.
  absl::Time horizon = sample.time - window_;
  while (count_ > 0 && slots_[head_].time < horizon) {
    slots_[head_].frames.clear();
    head_ = (head_ + 1) % slots_.size();
    --count_;
  }
  if (count_ == slots_.size()) {
    head_ = (head_ + 1) % slots_.size();
    --count_;
    ++overwritten_;
  }
  size_t tail = (head_ + count_) % slots_.size();
  // Move-assign reuses the slot's vector when the new one is moved in; the
  // look-back runs at tens of Hz, so this is not a hot path.
  slots_[tail] = std::move(sample);
  ++count_;
}

inline std::vector<LookbackSample> LookbackRing::Snapshot(absl::Time now) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LookbackSample> out;
  out.reserve(count_);
  absl::Time horizon = now - window_;
  for (size_t i = 0; i < count_; ++i) {
    const LookbackSample& s = slots_[(head_ + i) % slots_.size()];
    if (s.time < horizon || s.time > now) continue;
    out.push_back(s);
  }
  return out;
}

inline void LookbackRing::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  head_ = 0;
  count_ = 0;
}

inline size_t LookbackRing::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

inline uint64_t LookbackRing::overwritten() const {
  std::lock_guard<std::mutex> lock(mu_);
  return overwritten_;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_LOOKBACK_RING_H_
