// SPDX-License-Identifier: Apache-2.0
// File: itimer_sampler.h
//
// The `itimer` engine: setitimer(ITIMER_PROF) makes the kernel send SIGPROF
// to the process every `interval` of its CPU time (user + system, all
// threads); the thread that was running receives it. Needs no perf events,
// so it works in containers that forbid them. The kernel checks the timer on
// its tick: on this kind of machine (HZ=250) at most ~250 samples per second
// of CPU, whatever smaller interval is asked.
//
// Thread safety: Start/AddThread/RemoveThread/Stop from one control thread.
// Only one ITIMER_PROF exists per process: an application that uses it
// itself cannot be profiled with this engine (use ctimer).
//
// Example:
//
//   flamekit::ItimerSampler sampler(absl::Milliseconds(10));
//   FLAMEKIT_RETURN_IF_ERROR(sampler.Start());
//   ...
//   sampler.Stop();

#ifndef FLAMEKIT_SAMPLE_ITIMER_SAMPLER_H_
#define FLAMEKIT_SAMPLE_ITIMER_SAMPLER_H_

#include <errno.h>
#include <signal.h>
#include <sys/time.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"

namespace flamekit {

class ItimerSampler : public Sampler {
 public:
  explicit ItimerSampler(absl::Duration interval) : interval_(interval) {}
  ~ItimerSampler() override { Stop(); }

  std::string name() const override { return "itimer"; }
  SampleSource source() const override { return SampleSource::kItimer; }
  bool per_thread() const override { return false; }

  // Start()
  //
  // Installs the SIGPROF handler and arms ITIMER_PROF. FailedPrecondition
  // when the application already has an ITIMER_PROF running.
  absl::Status Start() override;
  absl::Status AddThread(pid_t) override { return absl::OkStatus(); }
  void RemoveThread(pid_t) override {}
  void Stop() override;

 private:
  absl::Duration interval_;
  bool started_ = false;
};

// Implementation details follow.

inline absl::Status ItimerSampler::Start() {
  if (started_) return absl::FailedPreconditionError("itimer engine already started");
  if (interval_ <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("itimer interval must be positive, e.g. 10ms");
  }
  struct itimerval current = {};
  if (getitimer(ITIMER_PROF, &current) == 0 &&
      (current.it_value.tv_sec != 0 || current.it_value.tv_usec != 0)) {
    return absl::FailedPreconditionError(
        "ITIMER_PROF is already armed by the application; use the ctimer engine");
  }
  absl::Status installed = InstallSignalHandler(SIGPROF, &SampleSignalCallback);
  if (!installed.ok()) return installed;
  struct itimerval value = {};
  value.it_interval = absl::ToTimeval(interval_);
  if (value.it_interval.tv_sec == 0 && value.it_interval.tv_usec == 0) {
    value.it_interval.tv_usec = 1;
  }
  value.it_value = value.it_interval;
  if (setitimer(ITIMER_PROF, &value, nullptr) != 0) {
    int error = errno;
    RestoreSignalHandler(SIGPROF);
    return absl::ErrnoToStatus(error, "setitimer(ITIMER_PROF)");
  }
  started_ = true;
  return absl::OkStatus();
}

inline void ItimerSampler::Stop() {
  if (!started_) return;
  struct itimerval zero = {};
  setitimer(ITIMER_PROF, &zero, nullptr);
  RestoreSignalHandler(SIGPROF);
  started_ = false;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_ITIMER_SAMPLER_H_
