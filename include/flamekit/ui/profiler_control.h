// SPDX-License-Identifier: Apache-2.0
// File: profiler_control.h
//
// ProfilerControl: what the HTTP UI needs from a profiler (start with
// options, stop and take the Profile, report progress, default options),
// and ProbeSampleableEvents(), which finds the events this machine can
// sample by trying to open each perf event once.
//
// Thread-safety: implementations must allow every method to be called from
// any ordinary thread (the UI calls them from its HTTP worker threads and
// its auto-stop thread); none is called from a signal handler.
//
// Example:
//
//   UiStartOptions options;
//   options.event = "cpu";
//   options.interval = absl::Milliseconds(10);
//   FLAMEKIT_RETURN_IF_ERROR(control.Start(options));
//   ...
//   FLAMEKIT_ASSIGN_OR_RETURN(Profile profile, control.Stop());

#ifndef FLAMEKIT_UI_PROFILER_CONTROL_H_
#define FLAMEKIT_UI_PROFILER_CONTROL_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {

// What a profile started from the UI asks for. Zero values mean "the
// profiler's default".
struct UiStartOptions {
  std::string event = "cpu";
  absl::Duration interval = absl::ZeroDuration();
  uint64_t interval_events = 0;
  // Stop automatically after this long (zero: until Stop).
  absl::Duration duration = absl::ZeroDuration();
  bool per_thread = false;
  // The transform list (transform.h JSON) applied to every profile; empty
  // for none.
  std::string transforms_json;
};

// A snapshot of the profiler's progress.
struct UiProfilerStatus {
  bool running = false;
  std::string event;
  std::string engine;
  absl::Duration elapsed = absl::ZeroDuration();
  uint64_t samples = 0;
  uint64_t dropped_samples = 0;
  // Time spent inside the sampling handler since the profiler was created
  // (the profiler's own overhead).
  absl::Duration handler_time = absl::ZeroDuration();
};

class ProfilerControl {
 public:
  virtual ~ProfilerControl() = default;

  // Start()
  //
  // Starts a capture. FailedPrecondition when one is already running;
  // InvalidArgument for an event or interval the profiler cannot use.
  virtual absl::Status Start(const UiStartOptions& options) = 0;

  // Stop()
  //
  // Stops the capture and returns its profile. FailedPrecondition when
  // nothing is running.
  virtual absl::StatusOr<Profile> Stop() = 0;

  virtual UiProfilerStatus Status() = 0;

  // DefaultOptions()
  //
  // The options the UI pre-fills its controls with (from the profiler's
  // SetDefaultOptions()).
  virtual UiStartOptions DefaultOptions() = 0;

  // Events()
  //
  // The events this machine can sample, in the order the UI lists them.
  virtual std::vector<std::string> Events() = 0;
};

// ProbeSampleableEvents()
//
// `timer_events` (always usable: "cpu", "ctimer", "itimer", "wall", ...)
// followed by every perf event from KnownPerfEvents() that opens on the
// calling thread right now (hardware events disappear on a machine without
// a PMU). "cpu" is listed once even when perf's cpu-clock is unavailable
// (the profiler then falls back to a timer).
std::vector<std::string> ProbeSampleableEvents(const std::vector<std::string>& timer_events);

// Implementation details follow.

inline std::vector<std::string> ProbeSampleableEvents(
    const std::vector<std::string>& timer_events) {
  std::vector<std::string> events = timer_events;
  auto listed = [&](const std::string& name) {
    for (const std::string& e : events) {
      if (e == name) return true;
    }
    return false;
  };
  for (const PerfEventSpec& spec : KnownPerfEvents()) {
    if (listed(spec.name)) continue;
    PerfEventOptions options;
    options.event = spec;
    options.tid = 0;
    options.disabled = true;
    options.exclude_kernel = true;
    if (OpenPerfEvent(options).ok()) events.push_back(spec.name);
  }
  return events;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_PROFILER_CONTROL_H_
