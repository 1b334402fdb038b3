// SPDX-License-Identifier: Apache-2.0
// File: trigger_state.h
//
// The trigger of `flamekit watch` as a pure state machine: fire when a
// value stays above (or below) a threshold for K consecutive polls, with a
// cooldown, a cap on captures and a cap on disk use; plus the names a
// capture gets from it (reason, file name). No clock, no I/O: the Watcher
// (metric_watch.h) and the Alertmanager receiver feed it.
//
// Thread-safety: Trigger is thread-compatible (one thread drives it); the
// free functions are pure. Not async-signal-safe (allocation).
//
// Example:
//
//   Trigger t({TriggerDirection::kAbove, 80.0, /*consecutive=*/3});
//   if (t.Observe(cpu_percent, absl::Now()) == TriggerDecision::kFire) { ... }

#ifndef FLAMEKIT_TRIGGER_TRIGGER_STATE_H_
#define FLAMEKIT_TRIGGER_TRIGGER_STATE_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flamekit {

// TriggerDirection: fire while the value is above or below the threshold
// (strictly; NaN never satisfies either).
enum class TriggerDirection { kAbove, kBelow };

// TriggerOptions
struct TriggerOptions {
  TriggerDirection direction = TriggerDirection::kAbove;
  double threshold = 0;
  int consecutive = 1;                         // K polls in a row (--for)
  absl::Duration cooldown = absl::Seconds(60);  // from the end of one capture
  int max_captures = 0;                        // 0 = no cap
  int64_t max_disk_bytes = 0;                  // 0 = no cap
};

// TriggerDecision: what Trigger::Observe() concluded from one poll.
enum class TriggerDecision {
  kIdle,         // condition not met (streak reset)
  kArming,       // condition met, fewer than K polls so far
  kFire,         // capture now
  kCoolingDown,  // condition held for K polls, but the cooldown runs
  kExhausted,    // max captures or max disk reached: stop
};

absl::string_view TriggerDecisionName(TriggerDecision d);

// Trigger
//
// The state machine, separate from time sources and I/O so it can be driven
// directly. A poll without a value (a source error, or the first poll of a
// rate) breaks the streak: K means K consecutive polls that had a value.
class Trigger {
 public:
  explicit Trigger(TriggerOptions options) : options_(options) {}

  // Observe()
  //
  // Feeds one poll's value taken at `now`.
  TriggerDecision Observe(std::optional<double> value, absl::Time now);

  // RecordCapture()
  //
  // Call after a capture ended at `now`, successful or not: starts the
  // cooldown and counts the capture and its `bytes` on disk.
  void RecordCapture(absl::Time now, int64_t bytes);

  // Exhausted()
  //
  // Whether a cap is reached (no further capture will fire).
  bool Exhausted() const;

  int streak() const { return streak_; }
  int captures() const { return captures_; }
  int64_t disk_used() const { return disk_used_; }
  const TriggerOptions& options() const { return options_; }

 private:
  TriggerOptions options_;
  int streak_ = 0;
  int captures_ = 0;
  int64_t disk_used_ = 0;
  std::optional<absl::Time> cooldown_until_;
};

// FormatThreshold()
//
// A number as it appears in reasons and file names: integers without a
// fraction or exponent ("1073741824"), others with up to 6 significant
// digits ("0.25").
std::string FormatThreshold(double value);

// TriggerReason()
//
// "cpu-above-80", "http_requests_total-below-0.5": metric, direction,
// threshold, made file-name-safe.
std::string TriggerReason(absl::string_view metric, const TriggerOptions& options);

// CaptureFileName()
//
// `<id>-<event>-flamegraph-<timestamp>-<reason>.html`, the timestamp in UTC
// as 20261121T104506Z; characters outside [A-Za-z0-9._-] in any part become
// '_' (ids like "svc/api" stay one path component).
std::string CaptureFileName(absl::string_view id, absl::string_view event, absl::Time time,
                            absl::string_view reason);

// Implementation details follow.

namespace trigger_internal {

inline std::string FileSafe(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
              c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty()) out = "_";
  return out;
}

inline bool Satisfies(TriggerDirection d, double value, double threshold) {
  if (std::isnan(value)) return false;
  return d == TriggerDirection::kAbove ? value > threshold : value < threshold;
}


}  // namespace trigger_internal

inline absl::string_view TriggerDecisionName(TriggerDecision d) {
  switch (d) {
    case TriggerDecision::kIdle: return "idle";
    case TriggerDecision::kArming: return "arming";
    case TriggerDecision::kFire: return "fire";
    case TriggerDecision::kCoolingDown: return "cooldown";
    case TriggerDecision::kExhausted: return "exhausted";
  }
  return "?";
}

inline bool Trigger::Exhausted() const {
  if (options_.max_captures > 0 && captures_ >= options_.max_captures) return true;
  if (options_.max_disk_bytes > 0 && disk_used_ >= options_.max_disk_bytes) return true;
  return false;
}

inline TriggerDecision Trigger::Observe(std::optional<double> value, absl::Time now) {
  if (Exhausted()) return TriggerDecision::kExhausted;
  if (!value.has_value() ||
      !trigger_internal::Satisfies(options_.direction, *value, options_.threshold)) {
    streak_ = 0;
    return TriggerDecision::kIdle;
  }
  ++streak_;
  if (streak_ < options_.consecutive) return TriggerDecision::kArming;
  if (cooldown_until_.has_value() && now < *cooldown_until_) {
    return TriggerDecision::kCoolingDown;
  }
  streak_ = 0;  // the next capture needs K fresh polls
  return TriggerDecision::kFire;
}

inline void Trigger::RecordCapture(absl::Time now, int64_t bytes) {
  ++captures_;
  disk_used_ += bytes > 0 ? bytes : 0;
  cooldown_until_ = now + options_.cooldown;
}

inline std::string FormatThreshold(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  return absl::StrFormat("%.6g", value);
}

inline std::string TriggerReason(absl::string_view metric, const TriggerOptions& options) {
  return trigger_internal::FileSafe(absl::StrCat(
      metric, options.direction == TriggerDirection::kAbove ? "-above-" : "-below-",
      FormatThreshold(options.threshold)));
}

inline std::string CaptureFileName(absl::string_view id, absl::string_view event,
                                   absl::Time time, absl::string_view reason) {
  using trigger_internal::FileSafe;
  return absl::StrCat(FileSafe(id), "-", FileSafe(event), "-flamegraph-",
                      absl::FormatTime("%Y%m%dT%H%M%SZ", time, absl::UTCTimeZone()), "-",
                      FileSafe(reason), ".html");
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_TRIGGER_STATE_H_
