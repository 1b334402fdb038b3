// SPDX-License-Identifier: Apache-2.0
// File: ui_test_hooks.h
//
// The profiler the UI tests drive. Test-only; thread-safe.
// INTERIM: stands in until profiler.h lands; replaced by the real facade.

#ifndef FLAMEKIT_UI_UI_TEST_HOOKS_H_
#define FLAMEKIT_UI_UI_TEST_HOOKS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "flamekit/ui/profiler_control.h"

namespace flamekit {

class InterimControl : public ProfilerControl {
 public:
  absl::Status Start(const UiStartOptions& options) override {
    absl::MutexLock lock(&mu_);
    if (running_) return absl::FailedPreconditionError("already running");
    if (options.interval_events == 0 && options.interval != absl::ZeroDuration() &&
        options.interval < absl::Microseconds(10)) {
      return absl::InvalidArgumentError("interval too small");
    }
    running_ = true;
    options_ = options;
    start_ = absl::Now();
    return absl::OkStatus();
  }
  absl::StatusOr<Profile> Stop() override {
    absl::MutexLock lock(&mu_);
    if (!running_) return absl::FailedPreconditionError("not running");
    running_ = false;
    Profile p;
    FrameId a = p.InternFrame("main");
    FrameId b = p.InternFrame("Work()");
    FrameId s[] = {a, b};
    p.AddStack(s, static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Now() - start_)) + 1);
    p.metadata().event = options_.event;
    p.metadata().start_time = start_;
    p.metadata().end_time = absl::Now();
    return p;
  }
  UiProfilerStatus Status() override {
    absl::MutexLock lock(&mu_);
    UiProfilerStatus s;
    s.running = running_;
    s.event = options_.event;
    if (running_) {
      s.elapsed = absl::Now() - start_;
      s.samples = absl::ToInt64Milliseconds(s.elapsed);
    }
    return s;
  }
  UiStartOptions DefaultOptions() override {
    absl::MutexLock lock(&mu_);
    return defaults_;
  }
  std::vector<std::string> Events() override {
    return ProbeSampleableEvents({"cpu", "ctimer", "itimer", "wall"});
  }
  void SetDefaults(const UiStartOptions& d) {
    absl::MutexLock lock(&mu_);
    defaults_ = d;
  }

 private:
  absl::Mutex mu_;
  bool running_ = false;
  UiStartOptions options_;
  UiStartOptions defaults_;
  absl::Time start_;
};

inline std::shared_ptr<InterimControl> InterimInstance() {
  static auto* control = new std::shared_ptr<InterimControl>(new InterimControl());
  return *control;
}
inline std::shared_ptr<ProfilerControl> ProfilerForTest() { return InterimInstance(); }
inline void StopProfilerForTest() { (void)InterimInstance()->Stop(); }
inline void SetProfilerDefaultsForTest(const UiStartOptions& d) { InterimInstance()->SetDefaults(d); }

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_TEST_HOOKS_H_
