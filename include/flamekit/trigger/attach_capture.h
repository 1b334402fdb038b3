// SPDX-License-Identifier: Apache-2.0
// File: attach_capture.h
//
// The attach engine behind `flamekit watch PID`: a LookbackSampler that
// keeps a low-rate attach session (FLAMEKIT_LOOKBACK_HZ) on the target and
// feeds a LookbackRing while the watch waits, and the capture that, on a
// trigger, profiles the target at full rate for the requested duration and
// writes the look-back plus the capture as one profile (HTML, SVG, pprof or
// collapsed text by the path's extension, atomically via WriteProfile()).
// MakeAttachWatchCapture() is the WatchCaptureFactory the CLI passes to
// RunWatchCommand().
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
// In the written profile the look-back stacks sit under one synthetic root
// frame, kLookbackRootName, and the full-rate capture under
// kCaptureRootName; a look-back sample is weighted as the CPU time it stands
// for in units of the capture's period (19 Hz vs 100 Hz: ~5.3), so widths
// compare. The title and ProfileMetadata::engine_note say how many
// look-back samples there are and which seconds they cover.
//
// Thread-safety: LookbackSampler owns one background thread (plus the
// engine's symbol thread during a batch); Pause(), Resume(), Stop() and the
// accessors may be called from any one other thread (the watcher's) and
// are synchronized with it by a std::mutex. The symbolizer the sampler and
// the capture share is behind its own mutex. The CaptureFn runs on the
// watcher's thread. Nothing here is async-signal-safe.
//
// Example:
//
//   int code = RunWatchCommand(args, std::cout, std::cerr, MakeAttachWatchCapture);

#ifndef FLAMEKIT_TRIGGER_ATTACH_CAPTURE_H_
#define FLAMEKIT_TRIGGER_ATTACH_CAPTURE_H_

#include <sys/resource.h>
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
#include "flamekit/render/render_options.h"
#include "flamekit/render/write_profile.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/trigger/lookback_ring.h"
#include "flamekit/trigger/metric_watch.h"
#include "flamekit/trigger/watch_capture.h"

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

// AttachCaptureOptions
struct AttachCaptureOptions {
  pid_t pid = 0;
  PerfEventSpec event;
  PerfPeriod period;  // the event's default when unset
  std::string id;     // for the title
  std::string event_name = "cpu";
};

// WriteWatchCapture()
//
// Profiles options.pid at full rate for request.duration, puts
// request.lookback (plus `extra_lookback`, the batch Pause() returned) under
// kLookbackRootName with frames from `names`, the capture under
// kCaptureRootName, and writes request.path by its extension. When the
// target is already gone but there are look-back samples, writes those
// alone and says so in the note. `names` may be null when there are no
// look-back samples.
absl::Status WriteWatchCapture(const AttachCaptureOptions& options,
                               const CaptureRequest& request,
                               std::vector<LookbackSample> extra_lookback,
                               const FrameNames* names, SharedAttachSymbols& symbols);

// MakeAttachWatchCapture()
//
// The WatchCaptureFactory of `flamekit watch`: checks that the event can be
// opened on the PID (the first look-back batch, or a probe when --lookback
// is 0), starts the LookbackSampler and returns the capture. A --metric
// watch without a PID fails here with what to do: there is no process to
// profile.
absl::StatusOr<WatchCapture> MakeAttachWatchCapture(const WatchCommandOptions& options);

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

namespace trigger_internal {

// How many capture samples one look-back sample stands for: the ratio of
// the periods for clock events (both in CPU time); 1 otherwise.
inline double LookbackWeight(const PerfEventSpec& event, const PerfPeriod& capture_period,
                             double lookback_hz) {
  if (!event.time_based || lookback_hz <= 0) return 1.0;
  absl::StatusOr<ResolvedPerfPeriod> p = ResolvePeriod(event, capture_period);
  if (!p.ok() || p->is_frequency || p->value == 0) return 1.0;
  return (1e9 / lookback_hz) / static_cast<double>(p->value);
}

}  // namespace trigger_internal

inline absl::Status WriteWatchCapture(const AttachCaptureOptions& options,
                                      const CaptureRequest& request,
                                      std::vector<LookbackSample> extra_lookback,
                                      const FrameNames* names, SharedAttachSymbols& symbols) {
  std::vector<LookbackSample> lookback = request.lookback;
  for (LookbackSample& s : extra_lookback) lookback.push_back(std::move(s));
  if (names == nullptr) lookback.clear();
  // Samples without a stack have nothing to draw: leave them out of the
  // page and of its count alike.
  lookback.erase(std::remove_if(lookback.begin(), lookback.end(),
                                [](const LookbackSample& s) { return s.frames.empty(); }),
                 lookback.end());

  // 1. The full-rate capture.
  AttachOptions ao;
  ao.pid = options.pid;
  ao.event = options.event;
  ao.period = options.period;
  ao.duration = request.duration;
  Profile captured;
  bool target_gone = false;
  std::string capture_error;
  absl::StatusOr<std::unique_ptr<AttachSession>> session =
      AttachSession::Create(ao, symbols.Borrow());
  if (session.ok()) {
    absl::Status ran = (*session)->Run();
    if (!ran.ok()) return ran;
    captured = (*session)->TakeProfile();
    target_gone = (*session)->stats().stop_reason == AttachStopReason::kTargetExited;
  } else if (session.status().code() == absl::StatusCode::kNotFound && !lookback.empty()) {
    target_gone = true;
    capture_error = std::string(session.status().message());
  } else {
    return session.status();
  }

  // 2. One profile: look-back under its root, then the capture under its.
  Profile out;
  out.metadata() = captured.metadata();
  if (!session.ok()) {
    out.metadata().pid = options.pid;
    out.metadata().event = options.event.name;
  }
  const double weight = trigger_internal::LookbackWeight(options.event, options.period,
                                                         FLAMEKIT_LOOKBACK_HZ);
  // Counted once, for this page and for watch.jsonl (request.summary).
  const LookbackSummary summary = SummarizeLookback(lookback, request.fired_at,
                                                    request.lookback_window, kLookbackBatch);
  if (request.summary != nullptr) *request.summary = summary;
  const uint64_t lookback_samples = summary.samples;
  absl::Time earliest = absl::InfiniteFuture();
  std::vector<FrameId> stack;
  if (!lookback.empty()) {
    FrameId root = out.InternFrame(kLookbackRootName, FrameKind::kMarker);
    absl::flat_hash_map<uint64_t, FrameId> ids;
    for (const LookbackSample& s : lookback) {
      if (s.frames.empty() || s.weight == 0) continue;
      earliest = std::min(earliest, s.time);
      stack.clear();
      stack.push_back(root);
      for (auto it = s.frames.rbegin(); it != s.frames.rend(); ++it) {
        auto found = ids.find(*it);
        if (found == ids.end()) {
          Frame f = names->Get(*it);
          found = ids.emplace(*it, out.InternFrame(f.name, f.kind)).first;
        }
        stack.push_back(found->second);
      }
      uint64_t count = std::max<uint64_t>(
          1, static_cast<uint64_t>(std::llround(static_cast<double>(s.weight) * weight)));
      out.AddStack(stack, count);
    }
  }
  if (captured.total_samples() > 0) {
    FrameId root = out.InternFrame(kCaptureRootName, FrameKind::kMarker);
    captured.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
      stack.clear();
      stack.push_back(root);
      for (FrameId f : frames) {
        const Frame& frame = captured.frame(f);
        stack.push_back(out.InternFrame(frame.name, frame.kind));
      }
      out.AddStack(stack, count);
    });
  }

  // 3. Say what is in it.
  ProfileMetadata& m = out.metadata();
  const double covered = summary.seconds;
  std::string when = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", request.fired_at,
                                      absl::UTCTimeZone());
  m.title = absl::StrCat(options.id.empty() ? absl::StrCat(options.pid) : options.id, " ",
                         options.event_name, ": ", request.reason, " (value ",
                         absl::StrFormat("%.6g", request.value), ") at ", when, "; includes ",
                         lookback_samples, " look-back samples");
  std::string note = absl::StrCat(
      "includes ", lookback_samples, " look-back samples from the ",
      absl::StrFormat("%.1f", covered), " seconds before the trigger at ", when, " (",
      FLAMEKIT_LOOKBACK_HZ, " Hz, under ", kLookbackRootName);
  if (weight != 1.0) {
    absl::StrAppend(&note, ", each weighted as ", absl::StrFormat("%.2f", weight),
                    " capture samples");
  }
  absl::StrAppend(&note, "), then ", captured.total_samples(), " samples of the ",
                  absl::FormatDuration(request.duration), " capture under ", kCaptureRootName);
  if (target_gone) {
    absl::StrAppend(&note, capture_error.empty()
                               ? "; the target exited during the capture"
                               : absl::StrCat("; no capture: ", capture_error));
  }
  if (!m.engine_note.empty()) absl::StrAppend(&note, "; ", m.engine_note);
  m.engine_note = std::move(note);
  if (earliest != absl::InfiniteFuture()) m.start_time = earliest - kLookbackBatch;
  return WriteProfile(out, request.path);
}

inline absl::StatusOr<WatchCapture> MakeAttachWatchCapture(const WatchCommandOptions& o) {
  if (o.pid <= 0) {
    return absl::InvalidArgumentError(
        "--metric without a PID has no process to profile: give the PID of the process "
        "behind the endpoint (flamekit watch PID --metric URL NAME --above X)");
  }
  absl::StatusOr<PerfEventSpec> event = ParsePerfEvent(o.watch.event);
  if (!event.ok()) return event.status();
  // One perf event (one descriptor) per thread, per session: allow as many
  // descriptors as the hard limit does, as `flamekit record` does.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  absl::StatusOr<std::shared_ptr<SharedAttachSymbols>> symbols =
      SharedAttachSymbols::ForProcess(o.pid);
  if (!symbols.ok()) return symbols.status();

  AttachCaptureOptions capture_options;
  capture_options.pid = o.pid;
  capture_options.event = *event;
  capture_options.id = o.watch.id;
  capture_options.event_name = o.watch.event;

  WatchCapture out;
  std::shared_ptr<LookbackSampler> sampler;
  if (o.watch.lookback > absl::ZeroDuration()) {
    int threads = static_cast<int>(ListProcessThreads(o.pid).size());
    threads = std::min(std::max(threads, 1), 64);
    // Entries are per stack per batch, at most one per sample.
    out.lookback = std::make_shared<LookbackRing>(
        o.watch.lookback + kLookbackBatch,
        LookbackRing::CapacityFor(o.watch.lookback + kLookbackBatch, FLAMEKIT_LOOKBACK_HZ,
                                  threads));
    LookbackSamplerOptions so;
    so.pid = o.pid;
    so.event = *event;
    absl::StatusOr<std::unique_ptr<LookbackSampler>> started =
        LookbackSampler::Start(so, out.lookback, *symbols);
    if (!started.ok()) return started.status();
    sampler = std::move(*started);
    out.keepalive = sampler;
  } else {
    // No look-back: still check now that the event opens on the target.
    AttachOptions probe;
    probe.pid = o.pid;
    probe.event = *event;
    absl::StatusOr<std::unique_ptr<AttachSession>> s = AttachSession::Create(probe, nullptr);
    if (!s.ok()) return s.status();
  }
  std::shared_ptr<SharedAttachSymbols> shared = *symbols;
  out.capture = [capture_options, sampler, shared](const CaptureRequest& request) {
    std::vector<LookbackSample> tail;
    if (sampler != nullptr) tail = sampler->Pause();
    std::shared_ptr<const FrameNames> names =
        sampler != nullptr ? sampler->shared_names() : nullptr;
    absl::Status written =
        WriteWatchCapture(capture_options, request, std::move(tail), names.get(), *shared);
    if (sampler != nullptr) sampler->Resume();
    return written;
  };
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_ATTACH_CAPTURE_H_
