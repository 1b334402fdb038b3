// SPDX-License-Identifier: Apache-2.0
// File: perf_sampler.h
//
// The `cpu` engine and the counter events (page-faults, context-switches,
// cycles, instructions, cache-misses, branch-misses): one perf event per
// thread (perf_event_open(2) through OpenPerfEvent() of perf_event.h), whose
// overflow the kernel turns into a signal delivered to that very thread
// (O_ASYNC + F_SETSIG + F_SETOWN_EX/F_OWNER_TID). The handler then unwinds
// the thread's user stack from its ucontext like the timer engines, with no
// system call in the handler. Software cpu-clock runs at the full asked rate
// (unlike the tick-bound timer engines); a sample costs the kernel ~33-50 us
// here (VM timer interrupts).
//
// Kernel frames: where perf_event_paranoid and capabilities allow kernel
// events, each thread's event also counts time in the kernel (system calls,
// page faults; without it those samples are dropped) and writes its kernel
// callchain into a 3-page ring that the handler reads (perf_kernel_chain.h).
// Otherwise the engine samples user time only, and kernel_note() says why.
// The rings count against perf_event_mlock_kb (516 KiB per user without
// CAP_IPC_LOCK): past ~40 threads an unprivileged process's further threads
// get no ring, and their kernel time shows at the system call, unnamed.
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
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/perf/perf_kernel_chain.h"
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

  size_t thread_count() const { return threads_.size(); }
  // Whether samples carry kernel frames (decided at the first AddThread).
  bool kernel_frames() const { return kernel_ == Kernel::kOn; }
  // Why they do not ("" when they do, or before the first AddThread).
  const std::string& kernel_note() const { return kernel_note_; }

 private:
  enum class Kernel { kUndecided, kOn, kOff };
  struct Thread {
    ScopedFd fd;
    void* ring = nullptr;  // kernel chain ring, published for the handler
  };
  absl::StatusOr<ScopedFd> Open(pid_t tid, bool kernel);
  void Release(Thread& thread);

  PerfEventSpec event_;
  PerfPeriod period_;
  int signo_;
  bool started_ = false;
  Kernel kernel_ = Kernel::kUndecided;
  std::string kernel_note_;
  absl::flat_hash_map<pid_t, Thread> threads_;
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

inline absl::StatusOr<ScopedFd> PerfSampler::Open(pid_t tid, bool kernel) {
  PerfEventOptions options;
  options.event = event_;
  options.period = period_;
  options.tid = tid;
  if (kernel) {
    options.sample_type = PERF_SAMPLE_CALLCHAIN;
    options.exclude_callchain_user = true;
    options.max_callchain = kMaxKernelChain;
  } else {
    options.sample_type = PERF_SAMPLE_IP;  // nothing is read: no ring
  }
  options.exclude_kernel = !kernel;
  options.disabled = true;
  return OpenPerfEvent(options);
}

inline absl::Status PerfSampler::AddThread(pid_t tid) {
  if (!started_) return absl::FailedPreconditionError("perf engine not started");
  if (threads_.contains(tid)) return absl::OkStatus();
  if (kernel_ == Kernel::kUndecided && DefaultExcludeKernel()) {
    kernel_ = Kernel::kOff;
    absl::StatusOr<int> paranoid = PerfEventParanoid();
    kernel_note_ = absl::StrCat(
        "no kernel frames (perf_event_paranoid=", paranoid.ok() ? *paranoid : -1,
        " and no CAP_PERFMON/CAP_SYS_ADMIN): time in system calls is not sampled; "
        "set /proc/sys/kernel/perf_event_paranoid to 1 or lower to see it");
  }
  absl::StatusOr<ScopedFd> fd = Open(tid, kernel_ != Kernel::kOff);
  if (!fd.ok() && kernel_ == Kernel::kUndecided &&
      (absl::IsPermissionDenied(fd.status()) || absl::IsInvalidArgument(fd.status()))) {
    // Kernel events refused after all (a user namespace's root, a kernel
    // without exclude_callchain_user): user frames only, from now on.
    kernel_ = Kernel::kOff;
    kernel_note_ = absl::StrCat("no kernel frames (", fd.status().message(),
                                "): time in system calls is not sampled");
    fd = Open(tid, false);
  }
  if (!fd.ok()) return fd.status();
  const int raw = fd->get();
  if (raw >= sample_internal::kMaxPerfFd) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "perf event fd ", raw, " is above ", sample_internal::kMaxPerfFd,
        "; too many open files for the profiler to track"));
  }
  Thread thread;
  if (kernel_ != Kernel::kOff) {
    thread.ring = MapKernelChainRing(raw);
    if (thread.ring == nullptr && kernel_ == Kernel::kUndecided) {
      // No ring (locked memory limit): the event still counts kernel time,
      // whose samples then show the user stack at the system call.
      kernel_note_ = absl::StrCat("no kernel frames (mmap of the perf ring: ",
                                  strerror(errno), ")");
    }
    kernel_ = Kernel::kOn;
  }
  struct f_owner_ex owner;
  owner.type = F_OWNER_TID;
  owner.pid = tid;
  int flags = fcntl(raw, F_GETFL);
  if (flags < 0 || fcntl(raw, F_SETFL, flags | O_ASYNC) != 0 ||
      fcntl(raw, F_SETSIG, signo_) != 0 || fcntl(raw, F_SETOWN_EX, &owner) != 0) {
    int error = errno;
    UnmapKernelChainRing(thread.ring);
    if (error == ESRCH) return absl::NotFoundError(absl::StrCat("thread ", tid, " exited"));
    return absl::ErrnoToStatus(error, absl::StrCat("fcntl(perf fd of thread ", tid,
                                                   ", O_ASYNC/F_SETSIG/F_SETOWN_EX)"));
  }
  // Ring and fd known to the handler before the first overflow is signalled.
  PublishKernelChainRing(raw, thread.ring);
  sample_internal::SetPerfFd(raw, true);
  thread.fd = std::move(*fd);
  auto [it, inserted] = threads_.emplace(tid, std::move(thread));
  if (ioctl(raw, PERF_EVENT_IOC_ENABLE, 0) != 0) {
    int error = errno;
    Release(it->second);
    threads_.erase(it);
    return absl::ErrnoToStatus(error, absl::StrCat("PERF_EVENT_IOC_ENABLE(thread ", tid, ")"));
  }
  return absl::OkStatus();
}

inline void PerfSampler::Release(Thread& thread) {
  const int raw = thread.fd.get();
  ioctl(raw, PERF_EVENT_IOC_DISABLE, 0);
  sample_internal::SetPerfFd(raw, false);
  if (thread.ring != nullptr) {
    // A handler may be reading the ring right now (the thread is alive when
    // its name became excluded): unpublish, wait, then unmap.
    PublishKernelChainRing(raw, nullptr);
    WaitForSampleHandlers();
    UnmapKernelChainRing(thread.ring);
    thread.ring = nullptr;
  }
  thread.fd = ScopedFd();  // closes
}

inline void PerfSampler::RemoveThread(pid_t tid) {
  auto it = threads_.find(tid);
  if (it == threads_.end()) return;
  Release(it->second);
  threads_.erase(it);
}

inline void PerfSampler::Stop() {
  if (!started_) return;
  for (auto& [tid, thread] : threads_) ioctl(thread.fd.get(), PERF_EVENT_IOC_DISABLE, 0);
  for (auto& [tid, thread] : threads_) Release(thread);
  threads_.clear();
  RestoreSignalHandler(signo_);
  started_ = false;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_PERF_SAMPLER_H_
