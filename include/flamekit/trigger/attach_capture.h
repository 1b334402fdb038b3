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
//
// In the written profile the look-back stacks sit under one synthetic root
// frame, kLookbackRootName, and the full-rate capture under
// kCaptureRootName; a look-back sample is weighted as the CPU time it stands
// for in units of the capture's period (19 Hz vs 100 Hz: ~5.3), so widths
// compare. The title and ProfileMetadata::engine_note say how many
// look-back samples there are and which seconds they cover.
//
// Thread-safety: the LookbackSampler (lookback_sampler.h) owns one background thread (plus the
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
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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
#include "flamekit/trigger/lookback_sampler.h"
#include "flamekit/trigger/metric_watch.h"
#include "flamekit/trigger/watch_capture.h"

namespace flamekit {

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