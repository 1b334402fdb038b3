// SPDX-License-Identifier: Apache-2.0
// File: ui_capture.h
//
// UiCapture: the captures the UI starts. Start() starts the profiler,
// Stop() stops it and saves the profile in the ProfileStore, and a watcher
// thread stops and saves a capture when its duration is reached or when the
// profiler ended it by itself. The last error of a capture is kept for the
// page to show.
//
// Thread-safety: Start(), Stop() and the accessors may be called from many
// threads at once (HTTP workers, the watcher); one internal absl::Mutex
// serialises start/stop/save. Shutdown() once, from the owner. Nothing
// here runs in a signal handler.
//
// Example:
//
//   UiCapture capture(profiler, &store);
//   capture.StartWatcher();
//   FLAMEKIT_RETURN_IF_ERROR(capture.Start(options));
//   ...
//   capture.Shutdown();  // joins the watcher; saves a running capture

#ifndef FLAMEKIT_UI_UI_CAPTURE_H_
#define FLAMEKIT_UI_UI_CAPTURE_H_

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/ui/profile_store.h"
#include "flamekit/ui/profiler_control.h"

namespace flamekit {

// What the page and /api/status report about captures started from the UI.
struct UiCaptureState {
  bool started_from_ui = false;
  // Until the auto-stop; InfiniteDuration() without one.
  absl::Duration auto_stop_in = absl::InfiniteDuration();
  std::string last_error;
  // The profile the last capture saved (while idle: what the page shows
  // instead of the idle profiler's zeros).
  std::optional<StoredProfile> last_saved;
};

class UiCapture {
 public:
  // How often the watcher looks for a capture the profiler ended by itself.
  static constexpr absl::Duration kWatchPeriod = absl::Milliseconds(200);

  UiCapture(std::shared_ptr<ProfilerControl> profiler, ProfileStore* store)
      : profiler_(std::move(profiler)), store_(store) {}
  UiCapture(const UiCapture&) = delete;
  UiCapture& operator=(const UiCapture&) = delete;
  ~UiCapture() { Shutdown(); }

  // StartWatcher()
  //
  // Starts the auto-stop thread. Once.
  void StartWatcher();

  // BeginShutdown() / Shutdown()
  //
  // BeginShutdown() tells the watcher to end (it returns at once);
  // Shutdown() also joins it and stops and saves a capture started from the
  // UI that is still running. Idempotent.
  void BeginShutdown();
  void Shutdown();

  // Start()
  //
  // Starts a capture (FailedPrecondition when one is running); its
  // duration, if any, is enforced by the watcher, which saves it.
  absl::Status Start(const UiStartOptions& options);

  // Stop()
  //
  // Stops the capture and saves it; the saved entry.
  absl::StatusOr<StoredProfile> Stop();

  UiCaptureState State() const;
  std::string last_error() const;

 private:
  void Watch();

  const std::shared_ptr<ProfilerControl> profiler_;
  ProfileStore* const store_;
  std::thread watcher_;
  mutable absl::Mutex mu_;
  bool ui_capture_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::optional<StoredProfile> last_saved_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Implementation details follow.

inline void UiCapture::StartWatcher() {
  watcher_ = std::thread([this] { Watch(); });
}

inline void UiCapture::BeginShutdown() {
  absl::MutexLock lock(&mu_);
  shutting_down_ = true;
}

inline void UiCapture::Shutdown() {
  BeginShutdown();
  if (watcher_.joinable()) watcher_.join();
  bool capturing;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    capturing = ui_capture_;
  }
  // A capture started from the UI is not lost with the UI: stop and save it.
  if (capturing) (void)Stop();
}

inline void UiCapture::Watch() {
  absl::MutexLock lock(&mu_);
  while (!shutting_down_) {
    // Wake at shut-down, or every kWatchPeriod to notice a due deadline or
    // a capture the profiler ended by itself.
    mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), kWatchPeriod);
    if (shutting_down_ || !ui_capture_) continue;
    bool due = absl::Now() >= deadline_;
    mu_.Unlock();
    bool running = profiler_->Status().running;
    mu_.Lock();
    if (!ui_capture_ || (!due && running)) continue;
    mu_.Unlock();
    absl::StatusOr<StoredProfile> saved = Stop();
    mu_.Lock();
    if (!saved.ok() && saved.status().code() != absl::StatusCode::kFailedPrecondition) {
      last_error_ = saved.status().ToString();
    }
  }
}

inline absl::Status UiCapture::Start(const UiStartOptions& options) {
  absl::MutexLock lock(&mu_);
  if (profiler_->Status().running) {
    return absl::FailedPreconditionError(
        "the profiler is already running; stop it first (POST /api/stop)");
  }
  UiStartOptions start = options;
  start.duration = absl::ZeroDuration();  // the watcher stops it, and saves
  FLAMEKIT_RETURN_IF_ERROR(profiler_->Start(start));
  ui_capture_ = true;
  last_error_.clear();
  deadline_ = options.duration > absl::ZeroDuration() ? absl::Now() + options.duration
                                                      : absl::InfiniteFuture();
  return absl::OkStatus();
}

inline absl::StatusOr<StoredProfile> UiCapture::Stop() {
  absl::MutexLock lock(&mu_);
  ui_capture_ = false;
  deadline_ = absl::InfiniteFuture();
  absl::StatusOr<Profile> profile = profiler_->Stop();
  if (!profile.ok()) return profile.status();
  absl::StatusOr<StoredProfile> saved = store_->Save(*profile);
  if (saved.ok()) {
    last_saved_ = *saved;
  } else {
    last_error_ = saved.status().ToString();
  }
  return saved;
}

inline UiCaptureState UiCapture::State() const {
  absl::MutexLock lock(&mu_);
  UiCaptureState state;
  state.started_from_ui = ui_capture_;
  if (ui_capture_ && deadline_ != absl::InfiniteFuture()) {
    state.auto_stop_in = std::max(absl::ZeroDuration(), deadline_ - absl::Now());
  }
  state.last_error = last_error_;
  state.last_saved = last_saved_;
  return state;
}

inline std::string UiCapture::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_CAPTURE_H_
