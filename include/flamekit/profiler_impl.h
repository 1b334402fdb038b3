// SPDX-License-Identifier: Apache-2.0
// File: profiler_impl.h
//
// The embedded profiler's implementation (flamekit/profiler.h declares it),
// compiled once per binary. Bazel: the target //include/flamekit:profiler
// compiles it (profiler.cc). Other builds: define FLAMEKIT_IMPLEMENTATION
// before the flamekit includes of exactly one translation unit, which then
// compiles this and Profile's definitions (profile/profile_impl.h).
// Including this file without the macro compiles the profiler alone, as
// profiler.cc wants: Bazel links Profile's from its own target. A second implementation in one binary is a link error
// (duplicate definitions of Profiler's members), never a silent ODR break.
//
// Thread and signal safety: as profiler.h says; the Session it drives is
// in profiler_session.h.

#ifndef FLAMEKIT_PROFILER_IMPL_H_
#define FLAMEKIT_PROFILER_IMPL_H_

#include <pthread.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profiler.h"
#include "flamekit/profiler_hooks.h"
#include "flamekit/profiler_push.h"
#include "flamekit/profiler_session.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/symbol/symbolizer.h"

namespace flamekit {

static_assert(StackRing::kDefaultCapacity == 4096,
              "ProfilerOptions::ring_capacity's default must follow StackRing's");
static_assert(FLAMEKIT_MAX_FRAMES == kMaxStackFrames, "max_depth's default");

Profiler& Profiler::Global() {
  static Profiler* const profiler = new Profiler();
  return *profiler;
}

Profiler::Profiler() {
  static std::once_flag atexit_once;
  std::call_once(atexit_once, [] {
    // exit() while a capture runs: stop the engine and the collector before
    // static destructors run under them. Skipped if another thread holds
    // the profiler's lock (it may be the one exiting mid-Start/Stop): then
    // only the signal path is turned off.
    std::atexit([] {
      // The last window goes out first (bounded by push.stop_wait), and
      // without control_mu_: the push loop takes it for its last Dump().
      profiler_internal::StopPush();
      Profiler* active = profiler_internal::g_active_profiler.load();
      if (active == nullptr) return;
      std::unique_lock<std::mutex> lock(active->control_mu_, std::try_to_lock);
      if (!lock.owns_lock()) {
        RefuseSamples();
        return;
      }
      active->AbandonIfForked();
      if (active->session_ != nullptr) active->session_->Shutdown();
    });
  });
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] {
    // A child gets copies of mutexes in whatever state other threads held
    // them, and those threads do not exist there: a lock held by the
    // collector (symbolizing) or by a Status() call from the UI at fork()
    // time would deadlock the child's first Profiler call. So fork() takes
    // both locks first (in the order Start/Stop take them; the collector
    // never takes control_mu_), waiting out at most one Stop() or one
    // symbolization pass.
    pthread_atfork(
        [] {
          Profiler* active = profiler_internal::g_active_profiler.load();
          if (active == nullptr) return;
          active->control_mu_.lock();
          active->symbol_mu_.lock();
          profiler_internal::t_forking_profiler = active;
        },
        [] { ReleaseForkLocks(); },
        [] {
          ReleaseForkLocks();
          // No engine thread exists in the child: stop accepting samples
          // at once; the Profiler notices the new pid on its next call and
          // drops the session.
          RefuseSamples();
          ForgetThreadAfterFork();
          profiler_internal::AbandonPushAfterFork();
          profiler_internal::g_active_profiler.store(nullptr);
        });
  });
}

void Profiler::ReleaseForkLocks() {
  Profiler* locked = profiler_internal::t_forking_profiler;
  if (locked == nullptr) return;
  profiler_internal::t_forking_profiler = nullptr;
  locked->symbol_mu_.unlock();
  locked->control_mu_.unlock();
}

Profiler::~Profiler() {
  // The push loop calls this Profiler's Dump(): stop it before it can.
  if (profiler_internal::g_active_profiler.load() == this) profiler_internal::StopPush();
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  session_.reset();
  Profiler* self = this;
  profiler_internal::g_active_profiler.compare_exchange_strong(self, nullptr);
}

void Profiler::AbandonIfForked() {
  if (session_ != nullptr && session_pid_ != getpid()) {
    // The collector and engine threads live in the parent only: destroying
    // their std::thread objects here would terminate. Leak the session.
    session_->Abandon();
    session_.release();  // NOLINT: intentional leak in a forked child
    std::lock_guard<std::mutex> lock(symbol_mu_);
    symbolizer_.reset();
  }
}

Symbolizer* Profiler::SymbolizerLocked() {
  if (symbolizer_ == nullptr || symbolizer_->pid() != getpid()) {
    absl::StatusOr<std::unique_ptr<Symbolizer>> created = Symbolizer::ForSelf();
    if (created.ok()) symbolizer_ = std::move(*created);
  }
  return symbolizer_.get();
}

absl::Status Profiler::ValidateOptions(const ProfilerOptions& options) {
  if (options.event.empty()) {
    return absl::InvalidArgumentError(
        "profiler event is empty; use cpu, ctimer, itimer, wall, alloc, live, lock or a perf event name");
  }
  if (profiler_internal::IsHookEvent(options.event)) {
    if (options.lock_threshold < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("lock_threshold must not be negative; e.g. 10us");
    }
    return absl::OkStatus();
  }
  bool time_based = true;
  if (!profiler_internal::IsTimerEngine(options.event)) {
    absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(options.event);
    if (!spec.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown profiler event '", options.event,
          "'; use cpu, ctimer, itimer, wall, alloc, live, lock or a perf event: ",
          KnownPerfEventNames()));
    }
    time_based = spec->time_based;
  }
  if (time_based) {
    if (options.interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("profiler interval must be positive (got ",
                       absl::FormatDuration(options.interval), "); e.g. 10ms"));
    }
    if (options.interval < absl::Microseconds(100)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "profiler interval ", absl::FormatDuration(options.interval),
          " is below 100us; the process would spend its time in the handler"));
    }
  }
  if (options.unwind != "fp" && options.unwind != "dwarf") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown unwind mode '", options.unwind,
        "'; use fp (frame pointers) or dwarf (.eh_frame rules)"));
  }
  if (options.max_depth < 1 || options.max_depth > kMaxStackFrames) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_depth ", options.max_depth, " is outside [1, ", kMaxStackFrames,
        "]; rebuild with -DFLAMEKIT_MAX_FRAMES=N for deeper stacks"));
  }
  if (options.ring_capacity < 2 || options.ring_capacity > StackRing::kMaxCapacity ||
      (options.ring_capacity & (options.ring_capacity - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring_capacity ", options.ring_capacity,
        " is not a power of two in [2, 1048576]; e.g. 4096"));
  }
  if (options.duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must not be negative");
  }
  if (options.thread_poll_interval < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("thread_poll_interval must be at least 1ms");
  }
  if (!IsSampleSignalUsable(options.signal)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal ", options.signal, " cannot carry samples; use SIGPROF (", SIGPROF, ")"));
  }
  if (options.event == "itimer" && options.signal != SIGPROF) {
    return absl::InvalidArgumentError("the itimer engine always uses SIGPROF");
  }
  return profiler_internal::ValidatePushOptions(options.push);
}

std::vector<std::string> Profiler::HookEvents() {
  if (FindHookRuntime() == nullptr) return {};
  return {"alloc", "live", "lock"};
}

absl::Status Profiler::SetDefaultOptions(const ProfilerOptions& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(control_mu_);
  defaults_ = options;
  return absl::OkStatus();
}

ProfilerOptions Profiler::DefaultOptions() {
  std::lock_guard<std::mutex> lock(control_mu_);
  return defaults_;
}

absl::Status Profiler::Start() {
  ProfilerOptions options = DefaultOptions();
  return Start(options);
}

absl::Status Profiler::Start(const ProfilerOptions& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (profiler_internal::ActiveHookCapture() != nullptr) {
    return absl::FailedPreconditionError("the profiler is already running; call Stop() first");
  }
  if (session_ != nullptr) {
    if (session_->sampling()) {
      return absl::FailedPreconditionError(
          "the profiler is already running; call Stop() first");
    }
    return absl::FailedPreconditionError(
        "the previous capture stopped after its duration; call Stop() to take "
        "its profile before starting another");
  }
  if (!options.push.url.empty()) {
    absl::Status can_push = profiler_internal::PushAvailable();
    if (!can_push.ok()) return can_push;
    std::lock_guard<std::mutex> push_lock(profiler_internal::PushMutex());
    if (profiler_internal::ActivePushLoop() != nullptr) {
      return absl::FailedPreconditionError(
          "the previous capture's push is still stopping; call Stop() first");
    }
  }
  Profiler* expected = nullptr;
  if (!profiler_internal::g_active_profiler.compare_exchange_strong(expected, this)) {
    return absl::FailedPreconditionError(
        "another Profiler is sampling this process; use Profiler::Global()");
  }
  if (profiler_internal::IsHookEvent(options.event)) {
    absl::StatusOr<std::unique_ptr<profiler_internal::HookCapture>> capture =
        profiler_internal::HookCapture::Begin(options);
    if (!capture.ok()) {
      profiler_internal::g_active_profiler.store(nullptr);
      return capture.status();
    }
    profiler_internal::ActiveHookCapture() = std::move(*capture);
    session_pid_ = getpid();
    absl::Status pushing = profiler_internal::StartPush(this, options);
    if (!pushing.ok()) {
      profiler_internal::ActiveHookCapture()->Shutdown();
      profiler_internal::ActiveHookCapture().reset();
      profiler_internal::g_active_profiler.store(nullptr);
    }
    return pushing;
  }
  auto session = std::make_unique<Session>(this, options);
  absl::Status begun = session->Begin();
  if (!begun.ok()) {
    session.reset();
    profiler_internal::g_active_profiler.store(nullptr);
    return begun;
  }
  // The push loop's thread starts now and first calls Dump() one window
  // later (it waits for control_mu_ like any caller).
  absl::Status pushing = profiler_internal::StartPush(this, options);
  if (!pushing.ok()) {
    session.reset();
    profiler_internal::g_active_profiler.store(nullptr);
    return pushing;
  }
  session_ = std::move(session);
  session_pid_ = getpid();
  return absl::OkStatus();
}

absl::StatusOr<Profile> Profiler::Stop() {
  // Pushing: sampling stops first, so the last window (taken by the push
  // loop's Dump(), which needs control_mu_: not held meanwhile) holds every
  // sample left and the windows add up to the profile returned here. Its
  // summary goes into the profile's engine note.
  std::string push_summary;
  if (profiler_internal::g_active_profiler.load() == this) {
    {
      std::lock_guard<std::mutex> lock(control_mu_);
      AbandonIfForked();
      if (auto& hooks = profiler_internal::ActiveHookCapture(); hooks != nullptr) {
        hooks->Shutdown();
      } else if (session_ != nullptr) {
        session_->Shutdown();
      }
    }
    push_summary = profiler_internal::StopPush();
  }
  auto with_push = [&push_summary](Profile& profile) {
    if (push_summary.empty()) return;
    std::string& note = profile.metadata().engine_note;
    note = absl::StrCat(note, note.empty() ? "" : "; ", push_summary);
  };
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (auto& hooks = profiler_internal::ActiveHookCapture(); hooks != nullptr) {
    hooks->Shutdown();
    Profile profile;
    {
      std::lock_guard<std::mutex> symbols(symbol_mu_);
      profile = hooks->Build(SymbolizerLocked());
    }
    hooks.reset();
    profiler_internal::g_active_profiler.store(nullptr);
    with_push(profile);
    return profile;
  }
  if (session_ == nullptr) {
    return absl::FailedPreconditionError("the profiler is not running; call Start() first");
  }
  session_->Shutdown();
  absl::StatusOr<Profile> profile = session_->BuildProfile();
  session_.reset();
  profiler_internal::g_active_profiler.store(nullptr);
  if (profile.ok()) with_push(*profile);
  return profile;
}

absl::StatusOr<Profile> Profiler::Dump() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (auto& hooks = profiler_internal::ActiveHookCapture(); hooks != nullptr) {
    std::lock_guard<std::mutex> symbols(symbol_mu_);
    return hooks->Build(SymbolizerLocked());
  }
  if (session_ == nullptr) {
    return absl::FailedPreconditionError("the profiler is not running; call Start() first");
  }
  return session_->BuildProfile();
}

bool Profiler::IsRunning() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (profiler_internal::ActiveHookCapture() != nullptr) {
    return profiler_internal::ActiveHookCapture()->sampling();
  }
  return session_ != nullptr && session_->sampling();
}

ProfilerStatus Profiler::Status() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (profiler_internal::ActiveHookCapture() != nullptr) {
    return profiler_internal::ActiveHookCapture()->Status();
  }
  if (session_ == nullptr) {
    ProfilerStatus status;
    status.event = defaults_.event;
    return status;
  }
  return session_->Status();
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_IMPL_H_
