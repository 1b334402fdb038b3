// SPDX-License-Identifier: Apache-2.0
// File: metric_watch.h
//
// The logic of `flamekit watch`: poll a MetricSource every interval, fire
// when the value stays above (or below) a threshold for K consecutive polls,
// then capture through a caller-supplied CaptureFn (the attach engine's
// profile of the target, in the CLI) with the look-back samples that lead up
// to the trigger; respect a cooldown, a cap on captures and a cap on disk
// use; name each capture `<id>-<event>-flamegraph-<timestamp>-<reason>.html`
// and append one JSON line per event to a log (`watch.jsonl` in the output
// directory) so captures can be lined up with a dashboard.
//
// The trigger state machine is trigger_state.h, the log watch_log.h.
//
// Thread-safety: Trigger and Watcher are thread-compatible: one thread runs
// them (Run() blocks, calling the capture on that thread). The LookbackRing
// a Watcher snapshots is thread-safe and is fed by another thread. The only
// cross-thread input to Run() is its stop predicate. Not async-signal-safe:
// a SIGINT handler should set an atomic flag the predicate reads.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(auto cpu, ProcessCpuSource::Create(pid));
//   WatchOptions o;
//   o.id = absl::StrCat(pid);
//   o.dir = "/tmp/captures";
//   o.trigger = {TriggerDirection::kAbove, 80.0, /*consecutive=*/3};
//   FLAMEKIT_ASSIGN_OR_RETURN(auto w, Watcher::Create(o, std::move(cpu), capture));
//   FLAMEKIT_RETURN_IF_ERROR(w->Run([&] { return stop.load(); }));

#ifndef FLAMEKIT_TRIGGER_METRIC_WATCH_H_
#define FLAMEKIT_TRIGGER_METRIC_WATCH_H_

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <filesystem>  // create_directories for --dir

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "flamekit/trigger/lookback_ring.h"
#include "flamekit/trigger/metric_source.h"
#include "flamekit/trigger/trigger_state.h"
#include "flamekit/trigger/watch_log.h"

namespace flamekit {

// CaptureRequest
//
// What the CaptureFn gets: where to write (a path that does not exist yet;
// write it completely or not at all, e.g. with AtomicFileWriter), for how
// long to capture at full rate, and the look-back samples covering the
// seconds before `fired_at` (empty when there is no look-back sampler).
// LookbackSummary
//
// What a capture's look-back holds, computed once by SummarizeLookback()
// and written both into the capture (its title and note) and into
// watch.jsonl, so the two never disagree.
struct LookbackSummary {
  uint64_t samples = 0;  // sum of the samples' weights
  double seconds = 0;    // span before the trigger they cover, <= the window
};

// SummarizeLookback()
//
// `samples` (each counted by its weight) as a LookbackSummary for a trigger
// at `fired_at`: the span runs from the earliest sample's time minus
// `resolution` (samples stamped at the end of a batch cover the batch) to
// `fired_at`, and never exceeds `window` (what --lookback asked for).
LookbackSummary SummarizeLookback(const std::vector<LookbackSample>& samples,
                                  absl::Time fired_at, absl::Duration window,
                                  absl::Duration resolution = absl::ZeroDuration());

struct CaptureRequest {
  std::string path;
  std::string reason;
  double value = 0;
  absl::Time fired_at;
  absl::Duration duration;
  absl::Duration lookback_window;
  std::vector<LookbackSample> lookback;
  // Where the capture reports the look-back it wrote (it may add samples
  // of its own, e.g. the sampler's unfinished batch); the Watcher fills it
  // with SummarizeLookback(lookback, ...) first and logs what it holds
  // after the capture. May be null.
  LookbackSummary* summary = nullptr;
};

// CaptureFn: writes the capture to request.path; returns why not otherwise.
using CaptureFn = std::function<absl::Status(const CaptureRequest& request)>;

// WatchOptions
struct WatchOptions {
  std::string id;              // target id in file names: the PID or a service name
  std::string event = "cpu";   // the profiling event, in file names
  std::string dir = ".";       // where captures and the log go
  std::string log_path;        // default: <dir>/watch.jsonl
  absl::Duration every = absl::Seconds(1);
  absl::Duration duration = absl::Seconds(10);
  absl::Duration lookback = absl::Seconds(10);
  TriggerOptions trigger;
};

// ValidateWatchOptions()
//
// InvalidArgument naming the flag for: no id, every <= 0, duration <= 0,
// lookback < 0, consecutive < 1, cooldown < 0, negative caps, a NaN or
// infinite threshold.
absl::Status ValidateWatchOptions(const WatchOptions& options);

// Watcher
//
// Poll → Trigger → capture → log, on the calling thread.
class Watcher {
 public:
  // Create()
  //
  // Validates the options, creates `dir` if needed, opens the log.
  // `lookback` may be null (no look-back sampler); it must outlive the
  // Watcher.
  static absl::StatusOr<std::unique_ptr<Watcher>> Create(
      WatchOptions options, std::unique_ptr<MetricSource> source, CaptureFn capture,
      const LookbackRing* lookback = nullptr);

  // PollOutcome: what one PollOnce() did.
  struct PollOutcome {
    absl::Status status;              // the poll's error, or the capture's
    std::optional<double> value;
    TriggerDecision decision = TriggerDecision::kIdle;
    std::string file;                 // set when a capture was written
    bool repeated_error = false;      // the same poll error as the last poll
  };

  // PollOnce()
  //
  // Polls the source once; on kFire runs the capture (blocking for its
  // duration) and logs it. Source errors are returned, never fatal here,
  // and logged when the message changes (a repeat at most once a minute,
  // with a "repeats" count).
  PollOutcome PollOnce();

  // Run()
  //
  // PollOnce() every `every` until `should_stop()` returns true (checked at
  // least every 100 ms), a cap is reached (OK), or the target is gone
  // (MetricSource::IsTargetGone(), e.g. the pid exited): that ends the
  // watch with the poll's status. Other source errors (an endpoint down, a malformed page, an
  // unknown metric) are logged, reported through `on_error` when given, and
  // the watch keeps polling.
  absl::Status Run(const std::function<bool()>& should_stop,
                   const std::function<void(const PollOutcome&)>& on_poll = nullptr);

  const Trigger& trigger() const { return trigger_; }
  const MetricSource& source() const { return *source_; }
  const std::string& log_path() const { return log_->path(); }

 private:
  Watcher(WatchOptions options, std::unique_ptr<MetricSource> source, CaptureFn capture,
          const LookbackRing* lookback, std::unique_ptr<WatchLog> log)
      : options_(std::move(options)),
        source_(std::move(source)),
        capture_(std::move(capture)),
        lookback_(lookback),
        log_(std::move(log)),
        trigger_(options_.trigger),
        reason_(TriggerReason(source_->Name(), options_.trigger)) {}

  std::string UniquePath(absl::Time now) const;

  WatchOptions options_;
  std::unique_ptr<MetricSource> source_;
  CaptureFn capture_;
  const LookbackRing* lookback_;
  std::unique_ptr<WatchLog> log_;
  Trigger trigger_;
  std::string reason_;
  std::string last_error_;  // the previous poll's error ("" after a good poll)
  absl::Time last_error_logged_ = absl::InfinitePast();
  int64_t error_repeats_ = 0;
};

// Implementation details follow.

namespace trigger_internal {
// Sleep until `deadline` in small steps so a stop request is seen quickly.
inline bool SleepUntil(absl::Time deadline, const std::function<bool()>& should_stop) {
  while (true) {
    if (should_stop && should_stop()) return false;
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(100)));
  }
}

}  // namespace trigger_internal

inline LookbackSummary SummarizeLookback(const std::vector<LookbackSample>& samples,
                                         absl::Time fired_at, absl::Duration window,
                                         absl::Duration resolution) {
  LookbackSummary out;
  absl::Time earliest = absl::InfiniteFuture();
  for (const LookbackSample& s : samples) {
    if (s.weight == 0) continue;
    out.samples += s.weight;
    earliest = std::min(earliest, s.time);
  }
  if (earliest != absl::InfiniteFuture()) {
    absl::Duration span = fired_at - (earliest - resolution);
    out.seconds = absl::ToDoubleSeconds(
        std::max(absl::ZeroDuration(), std::min(span, window)));
  }
  return out;
}

inline absl::Status ValidateWatchOptions(const WatchOptions& o) {
  auto bad = [](absl::string_view what) { return absl::InvalidArgumentError(what); };
  if (o.id.empty()) return bad("watch needs a target id (a PID or a service name)");
  if (o.every <= absl::ZeroDuration()) return bad("--every must be positive, e.g. --every 1s");
  if (o.duration <= absl::ZeroDuration()) {
    return bad("--duration must be positive, e.g. --duration 10s");
  }
  if (o.lookback < absl::ZeroDuration()) return bad("--lookback must be 0 or positive");
  if (o.trigger.consecutive < 1) return bad("--for must be at least 1 poll");
  if (o.trigger.cooldown < absl::ZeroDuration()) return bad("--cooldown must be 0 or positive");
  if (o.trigger.max_captures < 0) return bad("--max-captures must be 0 (no cap) or positive");
  if (o.trigger.max_disk_bytes < 0) return bad("--max-disk must be 0 (no cap) or positive");
  if (!std::isfinite(o.trigger.threshold)) return bad("the threshold must be a finite number");
  return absl::OkStatus();
}

inline absl::StatusOr<std::unique_ptr<Watcher>> Watcher::Create(
    WatchOptions options, std::unique_ptr<MetricSource> source, CaptureFn capture,
    const LookbackRing* lookback) {
  absl::Status valid = ValidateWatchOptions(options);
  if (!valid.ok()) return valid;
  if (source == nullptr) return absl::InvalidArgumentError("watch needs a metric source");
  if (!capture) return absl::InvalidArgumentError("watch needs a capture function");
  if (options.dir.empty()) options.dir = ".";
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the output directory ", options.dir, ": ", ec.message(),
        "; choose a writable --dir"));
  }
  if (options.log_path.empty()) options.log_path = options.dir + "/watch.jsonl";
  absl::StatusOr<std::unique_ptr<WatchLog>> log = WatchLog::Open(options.log_path);
  if (!log.ok()) return log.status();
  return std::unique_ptr<Watcher>(new Watcher(std::move(options), std::move(source),
                                              std::move(capture), lookback,
                                              std::move(*log)));
}

inline std::string Watcher::UniquePath(absl::Time now) const {
  std::string base = CaptureFileName(options_.id, options_.event, now, reason_);
  std::string path = options_.dir + "/" + base;
  struct stat st;
  for (int n = 2; ::stat(path.c_str(), &st) == 0; ++n) {
    path = absl::StrCat(options_.dir, "/", base.substr(0, base.size() - 5), "-", n, ".html");
  }
  return path;
}

inline Watcher::PollOutcome Watcher::PollOnce() {
  PollOutcome out;
  absl::StatusOr<std::optional<double>> polled = source_->Poll();
  absl::Time now = absl::Now();
  if (!polled.ok()) {
    out.status = polled.status();
    out.decision = trigger_.Observe(std::nullopt, now);
    // An endpoint that stays down must not grow the log by a line per
    // poll: a message is logged when it changes, and a repeat at most once
    // a minute with the count of repeats since.
    std::string message = polled.status().ToString();
    out.repeated_error = message == last_error_;
    if (!out.repeated_error || now - last_error_logged_ >= absl::Minutes(1)) {
      nlohmann::json fields = {{"event", "poll_error"},
                               {"metric", source_->Describe()},
                               {"message", message}};
      if (out.repeated_error) fields["repeats"] = error_repeats_;
      log_->Write(now, std::move(fields)).IgnoreError();
      last_error_logged_ = now;
      error_repeats_ = 0;
    } else {
      ++error_repeats_;
    }
    last_error_ = std::move(message);
    return out;
  }
  last_error_.clear();
  out.value = *polled;
  out.decision = trigger_.Observe(out.value, now);
  if (out.decision != TriggerDecision::kFire) return out;

  CaptureRequest request;
  request.path = UniquePath(now);
  request.reason = reason_;
  request.value = *out.value;
  request.fired_at = now;
  request.duration = options_.duration;
  request.lookback_window = options_.lookback;
  if (lookback_ != nullptr && options_.lookback > absl::ZeroDuration()) {
    request.lookback = lookback_->Snapshot(now);
    // The ring's window may be longer than asked for: keep only --lookback.
    absl::Time from = now - options_.lookback;
    std::vector<LookbackSample> kept;
    kept.reserve(request.lookback.size());
    for (LookbackSample& s : request.lookback) {
      if (s.time >= from) kept.push_back(std::move(s));
    }
    request.lookback = std::move(kept);
  }
  LookbackSummary summary =
      SummarizeLookback(request.lookback, now, options_.lookback);
  request.summary = &summary;
  absl::Status captured = capture_(request);
  absl::Time end = absl::Now();
  int64_t bytes = 0;
  struct stat st;
  if (::stat(request.path.c_str(), &st) == 0) bytes = static_cast<int64_t>(st.st_size);
  trigger_.RecordCapture(end, bytes);
  nlohmann::json fields = {{"event", captured.ok() ? "capture" : "capture_failed"},
                           {"metric", source_->Describe()},
                           {"reason", reason_},
                           {"value", *out.value},
                           {"threshold", options_.trigger.threshold},
                           {"fired_at", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now,
                                                         absl::UTCTimeZone())},
                           {"lookback_samples", summary.samples},
                           {"lookback_seconds", std::round(summary.seconds * 10) / 10},
                           {"bytes", bytes},
                           {"captures", trigger_.captures()},
                           {"disk_used", trigger_.disk_used()}};
  if (captured.ok()) {
    fields["file"] = request.path;
    out.file = request.path;
  } else {
    fields["message"] = captured.ToString();
    out.status = captured;
  }
  log_->Write(end, std::move(fields)).IgnoreError();
  return out;
}

inline absl::Status Watcher::Run(const std::function<bool()>& should_stop,
                                 const std::function<void(const PollOutcome&)>& on_poll) {
  log_->Write(absl::Now(), {{"event", "start"},
                            {"metric", source_->Describe()},
                            {"reason", reason_},
                            {"every_ms", absl::ToInt64Milliseconds(options_.every)}})
      .IgnoreError();
  absl::Time next = absl::Now();
  absl::Status result = absl::OkStatus();
  std::string why = "stopped";
  while (true) {
    if (!trigger_internal::SleepUntil(next, should_stop)) break;
    PollOutcome outcome = PollOnce();
    if (on_poll) on_poll(outcome);
    // A poll error that means the target is gone for good (a process that
    // exited) ends the watch; a failed capture does not.
    if (!outcome.status.ok() && !outcome.value.has_value() &&
        source_->IsTargetGone(outcome.status)) {
      result = outcome.status;
      why = "target gone";
      break;
    }
    if (trigger_.Exhausted()) {
      why = trigger_.options().max_captures > 0 &&
                    trigger_.captures() >= trigger_.options().max_captures
                ? "max captures reached"
                : "max disk reached";
      break;
    }
    next += options_.every;
    absl::Time now = absl::Now();
    if (next < now) next = now;  // a capture took longer than the interval
  }
  log_->Write(absl::Now(), {{"event", "stop"},
                            {"why", why},
                            {"captures", trigger_.captures()},
                            {"disk_used", trigger_.disk_used()}})
      .IgnoreError();
  return result;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_METRIC_WATCH_H_