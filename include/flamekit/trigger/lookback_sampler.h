// SPDX-License-Identifier: Apache-2.0
// File: lookback_sampler.h
//
// The look-back half of `flamekit watch PID`: a LookbackSampler keeps a
// low-rate attach session (FLAMEKIT_LOOKBACK_HZ) on the target and feeds a
// LookbackRing while the watch waits; SharedAttachSymbols lets its batches
// and the captures share one symbolizer; FrameNames holds the (already
// symbolized) frames its samples refer to. The capture that uses them is
// attach_capture.h.
//
// Thread-safety: LookbackSampler owns one background thread (plus the
// engine's symbol thread during a batch); Pause(), Resume(), Stop() and the
// accessors may be called from any one other thread (the watcher's) and
// are synchronized with it by a std::mutex. SharedAttachSymbols and
// FrameNames are thread-safe (each behind its own mutex). Nothing here is
// async-signal-safe.
//
// How the look-back is sampled: the sampler runs AttachSessions of
// kLookbackBatch (2 s) one after another, each on every thread of the
// target at FLAMEKIT_LOOKBACK_HZ per thread of CPU time (for clock events;
// other events at that frequency), so threads are followed, lost records
// counted and frames named (while the code is still mapped) by the engine
// itself. Each batch's stacks go into the ring as LookbackSamples stamped
// with the batch's end time and weighted by their count, so the look-back's
// time resolution is one batch. Frames in those samples are ids into the
// sampler's FrameNames table (already symbolized), not addresses.
//
// Known bias of batching: each batch opens fresh events, whose first sample
// comes after one full period (1/19 s) of the thread's CPU time within the
// batch, so a thread loses up to one sample per batch: a thread using under
// ~2.6 % of a core (52 ms per 2 s) may get no look-back samples at all.
// A busy thread is sampled at the full rate. The cure is one long-lived
// session that hands out its samples as it goes, which AttachSession does
// not offer yet (it folds everything at the end); see the report of
// issue 8.
//
// Example:
//
//   auto ring = std::make_shared<LookbackRing>(absl::Seconds(12), 4096);
//   FLAMEKIT_ASSIGN_OR_RETURN(auto symbols, SharedAttachSymbols::ForProcess(pid));
//   LookbackSamplerOptions o;
//   o.pid = pid;
//   FLAMEKIT_ASSIGN_OR_RETURN(auto sampler, LookbackSampler::Start(o, ring, symbols));
//   std::vector<LookbackSample> tail = sampler->Pause();  // before a capture
//   sampler->Resume();

#ifndef FLAMEKIT_TRIGGER_LOOKBACK_SAMPLER_H_
#define FLAMEKIT_TRIGGER_LOOKBACK_SAMPLER_H_

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/attach/attach.h"
#include "flamekit/attach/target_symbols.h"
#include "flamekit/profile/profile.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/trigger/lookback_ring.h"

namespace flamekit {

// Root frames of the two parts of a watch capture.
inline constexpr absl::string_view kLookbackRootName = "[look-back before trigger]";
inline constexpr absl::string_view kCaptureRootName = "[capture after trigger]";

// One look-back batch (the look-back's time resolution). Longer batches
// lose fewer samples of lightly loaded threads (see the file comment) and
// cost the watcher fewer event opens; the batch running at a trigger is
// cut short and included, so the look-back still reaches the trigger.
inline constexpr absl::Duration kLookbackBatch = absl::Seconds(2);

// SharedAttachSymbols
//
// One SymbolizerAttachSymbols for the target, shared by the look-back
// batches and the captures (ELF files are parsed once), each call under a
// mutex. Borrow() gives an AttachSymbols for one AttachSession.
class SharedAttachSymbols {
 public:
  static absl::StatusOr<std::shared_ptr<SharedAttachSymbols>> ForProcess(pid_t pid);
  std::unique_ptr<AttachSymbols> Borrow();

 private:
  class Borrowed;
  explicit SharedAttachSymbols(std::unique_ptr<SymbolizerAttachSymbols> inner)
      : inner_(std::move(inner)) {}
  std::mutex mu_;
  std::unique_ptr<SymbolizerAttachSymbols> inner_;  // guarded by mu_
  bool warmed_kernel_ = false;                      // guarded by mu_
};

// FrameNames
//
// The frames look-back samples refer to (LookbackSample::frames holds ids
// from Intern()). Thread-safe; grows with the distinct functions seen.
class FrameNames {
 public:
  uint64_t Intern(absl::string_view name, FrameKind kind);
  Frame Get(uint64_t id) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<Frame> frames_;                                        // guarded by mu_
  absl::flat_hash_map<std::pair<std::string, int>, uint64_t> index_;  // guarded by mu_
};

// LookbackSamplerOptions
struct LookbackSamplerOptions {
  pid_t pid = 0;
  PerfEventSpec event;  // cpu-clock by default
  double rate_hz = FLAMEKIT_LOOKBACK_HZ;
  absl::Duration batch = kLookbackBatch;
  // Data pages per thread ring: a few samples a second need little.
  size_t ring_pages = 2;
};

// LookbackSampler
//
// See the file comment. Start() opens the first batch on the calling thread
// (so a permission or PMU problem is reported there) and starts the thread.
class LookbackSampler {
 public:
  static absl::StatusOr<std::unique_ptr<LookbackSampler>> Start(
      const LookbackSamplerOptions& options, std::shared_ptr<LookbackRing> ring,
      std::shared_ptr<SharedAttachSymbols> symbols);
  ~LookbackSampler() { Stop(); }
  LookbackSampler(const LookbackSampler&) = delete;
  LookbackSampler& operator=(const LookbackSampler&) = delete;

  // Pause()
  //
  // Ends the running batch now and waits for the thread to go idle;
  // returns that batch's samples (not added to the ring), so a capture gets
  // the moments just before it too. Idempotent while paused.
  std::vector<LookbackSample> Pause();

  // Resume()
  //
  // Forgets the ring's samples (a capture consumed them) and samples again.
  void Resume();

  // Stop()
  //
  // Ends the thread (within about 200 ms) and joins it. Idempotent.
  void Stop();

  const FrameNames& names() const { return *names_; }
  std::shared_ptr<const FrameNames> shared_names() const { return names_; }

  struct Stats {
    uint64_t batches = 0;
    uint64_t samples = 0;
    uint64_t lost_samples = 0;
    bool target_gone = false;
    std::string last_error;
  };
  Stats stats() const;

 private:
  LookbackSampler(const LookbackSamplerOptions& options, std::shared_ptr<LookbackRing> ring,
                  std::shared_ptr<SharedAttachSymbols> symbols)
      : options_(options), ring_(std::move(ring)), symbols_(std::move(symbols)),
        names_(std::make_shared<FrameNames>()) {}
  AttachOptions BatchOptions() const;
  void Loop(std::unique_ptr<AttachSession> first);
  std::vector<LookbackSample> ToSamples(const Profile& profile, absl::Time when);

  const LookbackSamplerOptions options_;
  std::shared_ptr<LookbackRing> ring_;
  std::shared_ptr<SharedAttachSymbols> symbols_;
  std::shared_ptr<FrameNames> names_;
  // Read by the running AttachSession (relaxed); set by Pause()/Stop().
  std::atomic<bool> batch_stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  bool stopping_ = false;
  bool pause_requested_ = false;
  bool paused_ = false;  // the thread is idle and will not sample until Resume()
  std::vector<LookbackSample> paused_batch_;
  Stats stats_;
  std::thread thread_;
};

// Implementation details follow.

class SharedAttachSymbols::Borrowed : public AttachSymbols {
 public:
  explicit Borrowed(SharedAttachSymbols* owner) : owner_(owner) {}
  Name Lookup(uint64_t address, bool kernel) override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    return owner_->inner_->Lookup(address, kernel);
  }
  void OnMmap(const PerfMmapRecord& record) override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    owner_->inner_->OnMmap(record);
  }
  void OnExec() override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    owner_->inner_->OnExec();
  }
  void Warm(bool kernel_frames) override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    if (kernel_frames && !owner_->warmed_kernel_) {
      owner_->inner_->Warm(true);
      owner_->warmed_kernel_ = true;
    }
  }
  std::optional<uint32_t> FramelessReturnSlot(uint64_t pc) override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    return owner_->inner_->FramelessReturnSlot(pc);
  }
  bool IsCode(uint64_t address) override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    return owner_->inner_->IsCode(address);
  }
  void ForgetFrameRules() override {
    std::lock_guard<std::mutex> lock(owner_->mu_);
    owner_->inner_->ForgetFrameRules();
  }

 private:
  SharedAttachSymbols* owner_;
};

inline absl::StatusOr<std::shared_ptr<SharedAttachSymbols>> SharedAttachSymbols::ForProcess(
    pid_t pid) {
  absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> s =
      SymbolizerAttachSymbols::ForProcess(pid);
  if (!s.ok()) return s.status();
  return std::shared_ptr<SharedAttachSymbols>(new SharedAttachSymbols(std::move(*s)));
}

inline std::unique_ptr<AttachSymbols> SharedAttachSymbols::Borrow() {
  return std::make_unique<Borrowed>(this);
}

inline uint64_t FrameNames::Intern(absl::string_view name, FrameKind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(std::string(name), static_cast<int>(kind));
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  uint64_t id = frames_.size();
  frames_.push_back(Frame{std::string(name), kind});
  index_.emplace(std::move(key), id);
  return id;
}

inline Frame FrameNames::Get(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (id >= frames_.size()) return Frame{absl::StrCat("[bad look-back frame ", id, "]"),
                                         FrameKind::kUnknown};
  return frames_[id];
}

inline size_t FrameNames::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return frames_.size();
}

inline AttachOptions LookbackSampler::BatchOptions() const {
  AttachOptions o;
  o.pid = options_.pid;
  o.event = options_.event;
  double hz = options_.rate_hz > 0 ? options_.rate_hz : 1;
  if (options_.event.time_based) {
    // Per thread, every 1/hz s of its CPU time: an idle thread costs nothing.
    o.period = PerfPeriod::Interval(absl::Seconds(1.0 / hz));
  } else {
    o.period = PerfPeriod::Frequency(static_cast<uint64_t>(std::max(1.0, std::round(hz))));
  }
  o.duration = options_.batch;
  o.ring_pages = options_.ring_pages;
  // Few wake-ups: the watcher's own cost matters too (4-5 a second).
  o.thread_scan_interval = absl::Milliseconds(200);
  o.progress_interval = absl::Milliseconds(200);
  o.stop = &batch_stop_;
  return o;
}

inline absl::StatusOr<std::unique_ptr<LookbackSampler>> LookbackSampler::Start(
    const LookbackSamplerOptions& options, std::shared_ptr<LookbackRing> ring,
    std::shared_ptr<SharedAttachSymbols> symbols) {
  if (ring == nullptr || symbols == nullptr) {
    return absl::InvalidArgumentError("LookbackSampler needs a ring and symbols");
  }
  std::unique_ptr<LookbackSampler> s(new LookbackSampler(options, std::move(ring),
                                                         std::move(symbols)));
  absl::StatusOr<std::unique_ptr<AttachSession>> first =
      AttachSession::Create(s->BatchOptions(), s->symbols_->Borrow());
  if (!first.ok()) return first.status();
  LookbackSampler* raw = s.get();
  s->thread_ = std::thread([raw, session = std::move(*first)]() mutable {
    raw->Loop(std::move(session));
  });
  return s;
}

inline std::vector<LookbackSample> LookbackSampler::ToSamples(const Profile& profile,
                                                              absl::Time when) {
  std::vector<LookbackSample> out;
  out.reserve(profile.stack_count());
  std::vector<uint64_t> ids;
  profile.ForEachStack([&](absl::Span<const FrameId> root_to_leaf, uint64_t count) {
    LookbackSample s;
    s.time = when;
    s.weight = count;
    s.frames.reserve(root_to_leaf.size());
    for (auto it = root_to_leaf.rbegin(); it != root_to_leaf.rend(); ++it) {
      const Frame& f = profile.frame(*it);
      s.frames.push_back(names_->Intern(f.name, f.kind));
    }
    out.push_back(std::move(s));
  });
  return out;
}

inline void LookbackSampler::Loop(std::unique_ptr<AttachSession> session) {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (session == nullptr) {
        // Between batches: honour pause/stop before opening the next.
        if (pause_requested_ && !paused_) {
          paused_ = true;
          cv_.notify_all();
        }
        cv_.wait(lock, [this] { return stopping_ || !paused_; });
        if (stopping_) return;
      }
    }
    if (session == nullptr) {
      absl::StatusOr<std::unique_ptr<AttachSession>> next =
          AttachSession::Create(BatchOptions(), symbols_->Borrow());
      if (!next.ok()) {
        std::unique_lock<std::mutex> lock(mu_);
        stats_.last_error = std::string(next.status().message());
        if (next.status().code() == absl::StatusCode::kNotFound) {
          // The target is gone: nothing more to sample.
          stats_.target_gone = true;
          paused_ = true;
          cv_.notify_all();
          cv_.wait(lock, [this] { return stopping_; });
          return;
        }
        // Something passing (fd limits): try again after a batch.
        cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.batch),
                     [this] { return stopping_ || pause_requested_; });
        continue;
      }
      session = std::move(*next);
    }
    absl::Status ran = session->Run();
    AttachProgress progress = session->stats();
    Profile profile = session->TakeProfile();
    session.reset();
    std::vector<LookbackSample> samples = ToSamples(profile, absl::Now());
    std::unique_lock<std::mutex> lock(mu_);
    ++stats_.batches;
    stats_.samples += progress.samples;
    stats_.lost_samples += progress.lost_samples;
    if (!ran.ok()) stats_.last_error = std::string(ran.message());
    if (pause_requested_) {
      paused_batch_ = std::move(samples);
      paused_ = true;
      cv_.notify_all();
    } else {
      lock.unlock();
      for (LookbackSample& s : samples) ring_->Add(std::move(s));
      lock.lock();
    }
    if (progress.stop_reason == AttachStopReason::kTargetExited) {
      stats_.target_gone = true;
      paused_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return stopping_; });
      return;
    }
  }
}

inline std::vector<LookbackSample> LookbackSampler::Pause() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_.joinable()) return {};
  pause_requested_ = true;
  batch_stop_.store(true, std::memory_order_relaxed);
  cv_.notify_all();
  cv_.wait(lock, [this] { return paused_ || stopping_; });
  return std::move(paused_batch_);
}

inline void LookbackSampler::Resume() {
  ring_->Clear();
  std::lock_guard<std::mutex> lock(mu_);
  if (stats_.target_gone) return;
  paused_batch_.clear();
  pause_requested_ = false;
  paused_ = false;
  batch_stop_.store(false, std::memory_order_relaxed);
  cv_.notify_all();
}

inline void LookbackSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    batch_stop_.store(true, std::memory_order_relaxed);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

inline LookbackSampler::Stats LookbackSampler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_LOOKBACK_SAMPLER_H_
