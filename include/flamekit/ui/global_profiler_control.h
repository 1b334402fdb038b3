// SPDX-License-Identifier: Apache-2.0
// File: global_profiler_control.h
//
// GlobalProfilerControl: the ProfilerControl that drives the process's own
// Profiler::Global() (profiler.h). Profiles it returns have the default
// transforms (ProfilerOptions::transforms_json, set with
// SetDefaultOptions()) applied. Thread-safe: every method may be called from
// any ordinary thread (Profiler serialises them); never from a signal
// handler.
//
// Example:
//
//   flamekit::UiOptions options;
//   options.profiler = std::make_shared<flamekit::GlobalProfilerControl>();
//   // (ServeUi() does this itself when options.profiler is unset.)

#ifndef FLAMEKIT_UI_GLOBAL_PROFILER_CONTROL_H_
#define FLAMEKIT_UI_GLOBAL_PROFILER_CONTROL_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profile/transform.h"
#include "flamekit/profiler.h"
#include "flamekit/ui/profiler_control.h"

namespace flamekit {

class GlobalProfilerControl : public ProfilerControl {
 public:
  GlobalProfilerControl() = default;

  absl::Status Start(const UiStartOptions& options) override;
  absl::StatusOr<Profile> Stop() override;
  UiProfilerStatus Status() override;
  UiStartOptions DefaultOptions() override;
  // Probed once, on first use: cpu, ctimer, itimer, wall, then every perf
  // event that opens here.
  std::vector<std::string> Events() override;

  // ToUiStartOptions() / ToProfilerOptions()
  //
  // Conversions between the UI's options and the Profiler's (fields the UI
  // does not show are taken from `base`).
  static UiStartOptions ToUiStartOptions(const ProfilerOptions& options);
  static ProfilerOptions ToProfilerOptions(const UiStartOptions& options,
                                           ProfilerOptions base);

 private:
  std::once_flag events_once_;
  std::vector<std::string> events_;
};

// Implementation details follow.

inline UiStartOptions GlobalProfilerControl::ToUiStartOptions(const ProfilerOptions& options) {
  UiStartOptions ui;
  ui.event = options.event;
  ui.interval = options.interval;
  ui.interval_events = options.interval_events;
  ui.duration = options.duration;
  ui.per_thread = options.per_thread;
  ui.transforms_json = options.transforms_json;
  return ui;
}

inline ProfilerOptions GlobalProfilerControl::ToProfilerOptions(const UiStartOptions& options,
                                                                ProfilerOptions base) {
  base.event = options.event;
  if (options.interval > absl::ZeroDuration()) base.interval = options.interval;
  const bool hook_event =
      base.event == "alloc" || base.event == "live" || base.event == "lock";
  if (hook_event) {
    // alloc, live: a bare number is the mean bytes between samples; lock:
    // the interval is the shortest wait recorded.
    if (options.interval_events > 0) base.alloc_interval_bytes = options.interval_events;
    if (options.interval > absl::ZeroDuration()) base.lock_threshold = options.interval;
  } else if (options.interval_events > 0) {
    // A bare number: a count for counting events; for the clocks, as
    // ParsePerfInterval documents, nanoseconds.
    bool clock = base.event == "cpu" || base.event == "ctimer" || base.event == "itimer" ||
                 base.event == "wall" || base.event == "cpu-clock" || base.event == "task-clock";
    if (clock) {
      base.interval = absl::Nanoseconds(static_cast<int64_t>(options.interval_events));
    } else {
      base.interval_events = options.interval_events;
    }
  }
  base.duration = options.duration;
  base.per_thread = options.per_thread;
  base.transforms_json = options.transforms_json;
  return base;
}

inline absl::Status GlobalProfilerControl::Start(const UiStartOptions& options) {
  ProfilerOptions profiler_options =
      ToProfilerOptions(options, Profiler::Global().DefaultOptions());
  if (!options.transforms_json.empty()) {
    // Refuse a bad list now rather than after the capture.
    FLAMEKIT_RETURN_IF_ERROR(
        TransformList::FromJson(options.transforms_json, "default transforms").status());
  }
  return Profiler::Global().Start(profiler_options);
}

inline absl::StatusOr<Profile> GlobalProfilerControl::Stop() {
  FLAMEKIT_ASSIGN_OR_RETURN(Profile profile, Profiler::Global().Stop());
  std::string json = profile.metadata().transforms_json;
  if (json.empty() || json == "[]") return profile;
  FLAMEKIT_ASSIGN_OR_RETURN(TransformList list,
                            TransformList::FromJson(json, "default transforms"));
  // ApplyTransforms records the list itself.
  profile.metadata().transforms_json.clear();
  return ApplyTransforms(profile, list);
}

inline UiProfilerStatus GlobalProfilerControl::Status() {
  ProfilerStatus status = Profiler::Global().Status();
  UiProfilerStatus ui;
  ui.running = status.running;
  ui.event = status.event;
  ui.engine = status.engine;
  ui.elapsed = status.elapsed;
  ui.samples = status.samples;
  ui.dropped_samples = status.dropped_samples;
  ui.handler_time = status.handler_time;
  return ui;
}

inline UiStartOptions GlobalProfilerControl::DefaultOptions() {
  return ToUiStartOptions(Profiler::Global().DefaultOptions());
}

inline std::vector<std::string> GlobalProfilerControl::Events() {
  std::call_once(events_once_, [this] {
    events_ = ProbeSampleableEvents({"cpu", "ctimer", "itimer", "wall"});
    // The allocation and lock events, where the program has the hooks.
    for (std::string& event : Profiler::HookEvents()) events_.push_back(std::move(event));
  });
  return events_;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_GLOBAL_PROFILER_CONTROL_H_
