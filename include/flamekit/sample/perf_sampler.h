// SPDX-License-Identifier: Apache-2.0
// File: perf_sampler.h
//
// The `cpu` engine and the counter events (page-faults, context-switches,
// cycles, instructions, cache-misses, branch-misses): one perf event per
// thread (perf_event_open(2) through OpenPerfEvent() of perf_event.h), whose
// overflow the kernel turns into a signal delivered to that very thread
// (O_ASYNC + F_SETSIG + F_SETOWN_EX/F_OWNER_TID). The handler then unwinds
// the thread's user stack from its ucontext like the timer engines; there is
// no perf ring buffer to read, so there is no system call in the handler.
// Software cpu-clock runs at the full asked rate (unlike the tick-bound timer
// engines); a sample costs the kernel ~33-50 us here (VM timer interrupts).
//
// Kernel frames are not collected by this engine (they would need the perf
// ring's PERF_SAMPLE_CALLCHAIN; left for later).
//
// Thread safety: all methods from one control thread (the collector).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(PerfEventSpec cpu, ParsePerfEvent("cpu"));
//   flamekit::PerfSampler sampler(cpu, PerfPeriod::Interval(absl::Milliseconds(1)));
//   FLAMEKIT_RETURN_IF_ERROR(sampler.Start());
//   FLAMEKIT_RETURN_IF_ERROR(sampler.AddThread(tid));  // PermissionDenied, no PMU, ...

#ifndef FLAMEKIT_SAMPLE_PERF_SAMPLER_H_
#define FLAMEKIT_SAMPLE_PERF_SAMPLER_H_

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/sample/perf_event.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"

#ifndef F_SETSIG
#define F_SETSIG 10
#endif
#ifndef F_SETOWN_EX
#define F_SETOWN_EX 15
#define F_OWNER_TID 0
struct f_owner_ex {
  int type;
  pid_t pid;
};
#endif

namespace flamekit {

class PerfSampler : public Sampler {
 public:
  PerfSampler(PerfEventSpec event, PerfPeriod period, int signo = SIGPROF)
      : event_(std::move(event)), period_(period), signo_(signo) {}
  ~PerfSampler() override { Stop(); }

  // "perf cpu-clock" for `cpu`, "perf page-faults", ...
  std::string name() const override {
    return absl::StrCat("perf ", event_.name == "cpu" ? "cpu-clock" : event_.name);
  }
  SampleSource source() const override { return SampleSource::kPerf; }

  absl::Status Start() override;
  // AddThread()
  //
  // Opens and enables the event of thread `tid`. The errors of
  // OpenPerfEvent() (PermissionDenied with perf_event_paranoid advice,
  // FailedPrecondition "not available on this machine: no PMU", ...), and
  // ResourceExhausted when fds run out.
  absl::Status AddThread(pid_t tid) override;
  void RemoveThread(pid_t tid) override;
  void Stop() override;

  size_t thread_count() const { return fds_.size(); }

 private:
  PerfEventSpec event_;
  PerfPeriod period_;
  int signo_;
  bool started_ = false;
  absl::flat_hash_map<pid_t, ScopedFd> fds_;
};

// Implementation details follow.

inline absl::Status PerfSampler::Start() {
  if (started_) return absl::FailedPreconditionError("perf engine already started");
  absl::StatusOr<ResolvedPerfPeriod> period = ResolvePeriod(event_, period_);
  if (!period.ok()) return period.status();
  absl::Status installed = InstallSignalHandler(signo_, &SampleSignalCallback);
  if (!installed.ok()) return installed;
  started_ = true;
  return absl::OkStatus();
}

inline absl::Status PerfSampler::AddThread(pid_t tid) {
  if (!started_) return absl::FailedPreconditionError("perf engine not started");
  if (fds_.contains(tid)) return absl::OkStatus();
  PerfEventOptions options;
  options.event = event_;
  options.period = period_;
  options.tid = tid;
  options.sample_type = PERF_SAMPLE_IP;
  options.exclude_kernel = true;  // user stacks only; no ring buffer to read
  options.disabled = true;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok()) return fd.status();
  const int raw = fd->get();
  if (raw >= sample_internal::kMaxPerfFd) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "perf event fd ", raw, " is above ", sample_internal::kMaxPerfFd,
        "; too many open files for the profiler to track"));
  }
  struct f_owner_ex owner;
  owner.type = F_OWNER_TID;
  owner.pid = tid;
  int flags = fcntl(raw, F_GETFL);
  if (flags < 0 || fcntl(raw, F_SETFL, flags | O_ASYNC) != 0 ||
      fcntl(raw, F_SETSIG, signo_) != 0 || fcntl(raw, F_SETOWN_EX, &owner) != 0) {
    int error = errno;
    if (error == ESRCH) return absl::NotFoundError(absl::StrCat("thread ", tid, " exited"));
    return absl::ErrnoToStatus(error, absl::StrCat("fcntl(perf fd of thread ", tid,
                                                   ", O_ASYNC/F_SETSIG/F_SETOWN_EX)"));
  }
  // Mark the fd as ours before the first overflow can be signalled.
  sample_internal::SetPerfFd(raw, true);
  if (ioctl(raw, PERF_EVENT_IOC_ENABLE, 0) != 0) {
    int error = errno;
    sample_internal::SetPerfFd(raw, false);
    return absl::ErrnoToStatus(error, absl::StrCat("PERF_EVENT_IOC_ENABLE(thread ", tid, ")"));
  }
  fds_.emplace(tid, std::move(*fd));
  return absl::OkStatus();
}

inline void PerfSampler::RemoveThread(pid_t tid) {
  auto it = fds_.find(tid);
  if (it == fds_.end()) return;
  const int raw = it->second.get();
  ioctl(raw, PERF_EVENT_IOC_DISABLE, 0);
  fds_.erase(it);  // closes the fd
  sample_internal::SetPerfFd(raw, false);
}

inline void PerfSampler::Stop() {
  if (!started_) return;
  for (auto& [tid, fd] : fds_) ioctl(fd.get(), PERF_EVENT_IOC_DISABLE, 0);
  std::vector<int> raws;
  for (auto& [tid, fd] : fds_) raws.push_back(fd.get());
  fds_.clear();
  for (int raw : raws) sample_internal::SetPerfFd(raw, false);
  RestoreSignalHandler(signo_);
  started_ = false;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_PERF_SAMPLER_H_
