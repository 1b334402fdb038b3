// SPDX-License-Identifier: Apache-2.0
// File: ctimer_sampler.h
//
// The `ctimer` engine: one POSIX timer per thread (timer_create on the
// thread's CPU-time clock, SIGEV_THREAD_ID), so each thread is signalled
// after every `interval` of its own CPU time and the samples land on the
// thread that spent it. Needs no perf events. Like itimer it is checked on
// the kernel tick (~250 Hz per CPU here).
//
// Thread safety: all methods from one control thread (the profiler's
// collector). The signal carries kCtimerCookie in si_value so the handler
// can tell it from the application's own timers.
//
// Example:
//
//   flamekit::CtimerSampler sampler(absl::Milliseconds(10));
//   FLAMEKIT_RETURN_IF_ERROR(sampler.Start());
//   FLAMEKIT_RETURN_IF_ERROR(sampler.AddThread(tid));
//   ...
//   sampler.Stop();

#ifndef FLAMEKIT_SAMPLE_CTIMER_SAMPLER_H_
#define FLAMEKIT_SAMPLE_CTIMER_SAMPLER_H_

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

namespace flamekit {

class CtimerSampler : public Sampler {
 public:
  explicit CtimerSampler(absl::Duration interval, int signo = SIGPROF)
      : interval_(interval), signo_(signo) {}
  ~CtimerSampler() override { Stop(); }

  std::string name() const override { return "ctimer"; }
  SampleSource source() const override { return SampleSource::kCtimer; }

  absl::Status Start() override;
  // AddThread()
  //
  // Creates and arms the timer of thread `tid`. NotFound if it exited;
  // ResourceExhausted when the process hit its timer limit (RLIMIT_SIGPENDING).
  absl::Status AddThread(pid_t tid) override;
  void RemoveThread(pid_t tid) override;
  void Stop() override;

  size_t thread_count() const { return timers_.size(); }

  // The clockid of thread `tid`'s CPU time; see flamekit::ThreadCpuClock().
  static clockid_t ThreadCpuClock(pid_t tid) { return flamekit::ThreadCpuClock(tid); }

 private:
  absl::Duration interval_;
  int signo_;
  bool started_ = false;
  absl::flat_hash_map<pid_t, timer_t> timers_;
};

// Implementation details follow.

inline absl::Status CtimerSampler::Start() {
  if (started_) return absl::FailedPreconditionError("ctimer engine already started");
  if (interval_ <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ctimer interval must be positive, e.g. 10ms");
  }
  absl::Status installed = InstallSignalHandler(signo_, &SampleSignalCallback);
  if (!installed.ok()) return installed;
  started_ = true;
  return absl::OkStatus();
}

inline absl::Status CtimerSampler::AddThread(pid_t tid) {
  if (!started_) return absl::FailedPreconditionError("ctimer engine not started");
  if (timers_.contains(tid)) return absl::OkStatus();
  struct sigevent event;
  memset(&event, 0, sizeof(event));
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = signo_;
  event.sigev_value.sival_ptr = reinterpret_cast<void*>(kCtimerCookie);
  event._sigev_un._tid = tid;
  timer_t timer;
  // timer_create(2) directly: glibc's wrapper handles SIGEV_THREAD_ID the
  // same, but this keeps the kernel's clockid encoding explicit.
  if (timer_create(ThreadCpuClock(tid), &event, &timer) != 0) {
    int error = errno;
    if (error == EINVAL || error == ESRCH) {
      return absl::NotFoundError(absl::StrCat("thread ", tid, " exited"));
    }
    if (error == EAGAIN) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "timer_create(thread ", tid,
          "): EAGAIN: too many timers; raise RLIMIT_SIGPENDING (ulimit -i)"));
    }
    return absl::ErrnoToStatus(error, absl::StrCat("timer_create(thread ", tid, ")"));
  }
  struct itimerspec spec;
  memset(&spec, 0, sizeof(spec));
  spec.it_interval = absl::ToTimespec(interval_);
  if (spec.it_interval.tv_sec == 0 && spec.it_interval.tv_nsec == 0) {
    spec.it_interval.tv_nsec = 1;
  }
  spec.it_value = spec.it_interval;
  if (timer_settime(timer, 0, &spec, nullptr) != 0) {
    int error = errno;
    timer_delete(timer);
    return absl::ErrnoToStatus(error, absl::StrCat("timer_settime(thread ", tid, ")"));
  }
  timers_[tid] = timer;
  return absl::OkStatus();
}

inline void CtimerSampler::RemoveThread(pid_t tid) {
  auto it = timers_.find(tid);
  if (it == timers_.end()) return;
  timer_delete(it->second);
  timers_.erase(it);
}

inline void CtimerSampler::Stop() {
  if (!started_) return;
  for (auto& [tid, timer] : timers_) timer_delete(timer);
  timers_.clear();
  RestoreSignalHandler(signo_);
  started_ = false;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_CTIMER_SAMPLER_H_
