// SPDX-License-Identifier: Apache-2.0
// File: profiler_engine_choice.h
//
// Which sampling engine a Profiler::Session runs: the one the event names
// (perf events, ctimer, itimer, wall), and for `cpu` the fallback chain
// perf -> ctimer -> itimer when perf events are refused or missing, with a
// note that says why each step was taken. An implementation header of
// profiler_session.h (included at its end), compiled in the one translation
// unit that compiles the profiler.
//
// Thread safety: called from Session::Begin() under the Profiler's
// control_mu_, before the collector thread exists; nothing here runs in a
// signal handler.

#ifndef FLAMEKIT_PROFILER_ENGINE_CHOICE_H_
#define FLAMEKIT_PROFILER_ENGINE_CHOICE_H_

#include <stdio.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/profiler_session.h"
#include "flamekit/sample/ctimer_sampler.h"
#include "flamekit/sample/itimer_sampler.h"
#include "flamekit/sample/perf_sampler.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/sample/wall_clock_sampler.h"

namespace flamekit {

namespace profiler_internal {

// Whether a perf failure is one the fallback covers (perf events refused or
// missing) rather than a bug in the request.
inline bool PerfUnavailable(const absl::Status& status) {
  return absl::IsPermissionDenied(status) || absl::IsFailedPrecondition(status) ||
         absl::IsUnimplemented(status) || absl::IsNotFound(status) ||
         absl::IsUnavailable(status);
}

// "; ..." naming the seccomp filter when `perf` is a refusal and this
// process runs under one (Seccomp: 2): in a container with Docker's default
// profile perf_event_open fails with EPERM whatever perf_event_paranoid
// says, so perf's own advice (lower the paranoid level) would mislead.
inline std::string SeccompPerfNote(const absl::Status& perf) {
  if (!absl::IsPermissionDenied(perf)) return "";
  absl::StatusOr<std::string> status = ReadSmallFile("/proc/self/status", 64 * 1024);
  if (!status.ok() || status->find("\nSeccomp:\t2") == std::string::npos) return "";
  return "; a seccomp filter is active (Seccomp: 2), most likely the cause: a container's "
         "default profile refuses the perf_event_open syscall; least privilege that allows "
         "it: a seccomp profile that allows perf_event_open (flamekit's "
         "examples/container/seccomp-perf.json), or CAP_PERFMON (Docker 23+) / CAP_SYS_ADMIN";
}

}  // namespace profiler_internal

inline absl::Status Profiler::Session::TryEngine(std::unique_ptr<Sampler> sampler,
                                                 pid_t self) {
  SamplingTarget target{ring_.get(), stacks_.get(), options_.max_depth, cfi_table_.get()};
  ActivateSampling(target, sampler->source());
  absl::Status started = sampler->Start();
  if (started.ok() && sampler->per_thread()) {
    started = sampler->AddThread(self);
    if (!started.ok()) sampler->Stop();
  }
  if (!started.ok()) {
    DeactivateSampling();
    return started;
  }
  if (sampler->per_thread()) threads_[self].armed = true;
  engine_ = sampler->name();
  sampler_ = std::move(sampler);
  return absl::OkStatus();
}

inline absl::Status Profiler::Session::ChooseEngine() {
  const pid_t self = CurrentTid();
  const std::string& event = options_.event;
  if (event == "ctimer") {
    return TryEngine(std::make_unique<CtimerSampler>(options_.interval, options_.signal), self);
  }
  if (event == "itimer") {
    return TryEngine(std::make_unique<ItimerSampler>(options_.interval), self);
  }
  if (event == "wall") {
    return TryEngine(std::make_unique<WallClockSampler>(options_.interval, options_.signal),
                     self);
  }
  absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(event);
  if (!spec.ok()) return spec.status();
  PerfPeriod period;
  if (spec->time_based) {
    period = PerfPeriod::Interval(options_.interval);
  } else if (options_.interval_events > 0) {
    period = PerfPeriod::Count(options_.interval_events);
  }
  absl::Status perf;
  if (options_.simulate_perf_errno != 0) {
    PerfEventOptions what;
    what.event = *spec;
    what.tid = self;
    perf = PerfEventOpenError(options_.simulate_perf_errno, what);
  } else {
    perf = TryEngine(std::make_unique<PerfSampler>(*spec, period, options_.signal), self);
  }
  if (perf.ok()) {
    // Whether kernel frames were allowed is known once the first thread's
    // event is open.
    if (auto* sampler = dynamic_cast<PerfSampler*>(sampler_.get())) {
      engine_note_ = sampler->kernel_note();
    }
    return perf;
  }
  const bool is_cpu = spec->name == "cpu" || spec->name == "cpu-clock";
  if (!is_cpu || !options_.fallback || !profiler_internal::PerfUnavailable(perf)) {
    return perf;
  }
  // Fallback: ctimer, then itimer.
  absl::Status ctimer =
      TryEngine(std::make_unique<CtimerSampler>(options_.interval, options_.signal), self);
  if (ctimer.ok()) {
    engine_note_ = absl::StrCat("perf events unavailable: ", perf.message(),
                                profiler_internal::SeccompPerfNote(perf),
                                "; fell back to ctimer");
    fprintf(stderr, "flamekit: %s\n", engine_note_.c_str());
    return ctimer;
  }
  absl::Status itimer = TryEngine(std::make_unique<ItimerSampler>(options_.interval), self);
  if (itimer.ok()) {
    engine_note_ = absl::StrCat("perf events unavailable: ", perf.message(),
                                profiler_internal::SeccompPerfNote(perf),
                                "; ctimer failed: ", ctimer.message(),
                                "; fell back to itimer");
    fprintf(stderr, "flamekit: %s\n", engine_note_.c_str());
    return itimer;
  }
  return absl::Status(perf.code(),
                      absl::StrCat(perf.message(), "; fallback to ctimer failed: ",
                                   ctimer.message(), "; fallback to itimer failed: ",
                                   itimer.message()));
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_ENGINE_CHOICE_H_
