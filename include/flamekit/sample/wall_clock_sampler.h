// SPDX-License-Identifier: Apache-2.0
// File: wall_clock_sampler.h
//
// The `wall` engine: a timer thread wakes every `interval` of wall time and
// samples every registered thread, running or blocked, so that time spent
// sleeping, waiting for locks or for I/O shows up in the profile. The
// handler records whether the thread was in a system call (and which) from
// its ucontext (see ucontext_regs.h); the profiler shows it as a leaf frame
// such as "[syscall futex]" or "[running]".
//
// A thread is sampled by a signal, except when it is still blocked in the
// very call its previous sample saw (same call site, stack pointer and
// arguments in /proc/self/task/TID/syscall, and under kIdleCpuAllowanceNs of
// CPU used since):
// then the tick is counted as another sample of that stack without waking
// it (wall_idle.h). A thread whose CPU clock has not moved at all since the
// last such check has not run, so /proc is only read when it has. Idle
// thread pools cost one clock read per thread and tick instead of two
// context switches, and blocked calls are interrupted once per stay rather
// than every interval.
//
// A blocked thread's system call is restarted after the handler (SA_RESTART)
// except for the calls Linux never restarts after a handler (poll,
// epoll_wait, select, nanosleep, ...: signal(7)), which return EINTR as
// they would for any signal: applications must already handle that.
//
// Thread safety: Start/AddThread/RemoveThread/Stop from one control thread;
// the timer thread works on the thread set under a mutex.
//
// Example:
//
//   flamekit::WallClockSampler sampler(absl::Milliseconds(10));
//   FLAMEKIT_RETURN_IF_ERROR(sampler.Start());
//   sampler.AddThread(tid);
//   ...
//   sampler.Stop();

#ifndef FLAMEKIT_SAMPLE_WALL_CLOCK_SAMPLER_H_
#define FLAMEKIT_SAMPLE_WALL_CLOCK_SAMPLER_H_

#include <fcntl.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/sample/wall_idle.h"

namespace flamekit {

class WallClockSampler : public Sampler {
 public:
  explicit WallClockSampler(absl::Duration interval, int signo = SIGPROF)
      : interval_(interval), signo_(signo) {}
  ~WallClockSampler() override { Stop(); }

  std::string name() const override { return "wall"; }
  SampleSource source() const override { return SampleSource::kWall; }

  absl::Status Start() override;
  absl::Status AddThread(pid_t tid) override;
  void RemoveThread(pid_t tid) override;
  void Stop() override;

  // The timer thread's id (it is never sampled), 0 before Start().
  pid_t timer_tid() const { return timer_tid_.load(); }
  // Signals sent so far.
  uint64_t signals_sent() const { return signals_sent_.load(std::memory_order_relaxed); }
  // Ticks counted as a repeat of a blocked thread's previous sample, with
  // no signal sent.
  uint64_t ticks_skipped() const { return ticks_skipped_.load(std::memory_order_relaxed); }

  // CPU a thread may have used since its last sample and still count as not
  // moved: the end of the handler itself (return, sigreturn, re-entering or
  // looping on the call) takes a few microseconds; work takes more.
  static constexpr uint64_t kIdleCpuAllowanceNs = 200'000;
  // Repeats are pushed at least this often per thread, so that a snapshot
  // (Profiler::Dump) lags an idle thread by at most this many ticks.
  static constexpr uint32_t kMaxPendingRepeats = 8;

 private:
  struct Target {
    uint32_t slot = kNoWallSlot;
    uint16_t sequence = 0;  // of the last signal sent
    bool signalled = false;
    int syscall_fd = -1;    // /proc/self/task/TID/syscall, kept open
    uint32_t pending = 0;   // skipped ticks not pushed yet
    // The thread's CPU time when the last tick found it still blocked: while
    // it has not changed by a nanosecond the thread has not run, so it is
    // still in that call and /proc need not be read again.
    uint64_t still_cpu_ns = UINT64_MAX;
  };
  void Run();
  // Whether `tid` is still blocked where its last sample saw it.
  bool StillBlocked(pid_t tid, Target& target);
  void Flush(pid_t tid, Target& target);
  void Forget(pid_t tid, Target& target);

  const absl::Duration interval_;
  const int signo_;
  std::unique_ptr<std::thread> timer_thread_;
  std::atomic<pid_t> timer_tid_{0};
  std::atomic<uint64_t> signals_sent_{0};
  std::atomic<uint64_t> ticks_skipped_{0};
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees pthread
  // mutexes, not Debian's uninstrumented absl::Mutex.
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                            // under mu_
  absl::flat_hash_map<pid_t, Target> threads_;   // under mu_
  std::vector<uint32_t> free_slots_;             // under mu_
  uint32_t next_slot_ = 0;                       // under mu_
  // /proc fds kept open at once: a small share of the process's limit, so
  // the application never runs out of descriptors because of us.
  size_t fd_budget_ = 0;                         // under mu_
  size_t fds_open_ = 0;                          // under mu_
};

// Implementation details follow.

inline absl::Status WallClockSampler::Start() {
  if (timer_thread_ != nullptr) {
    return absl::FailedPreconditionError("wall engine already started");
  }
  if (interval_ < absl::Microseconds(100)) {
    return absl::InvalidArgumentError(
        "wall interval must be at least 100us (it signals every thread each "
        "time); e.g. 10ms");
  }
  absl::Status installed = InstallSignalHandler(signo_, &SampleSignalCallback);
  if (!installed.ok()) return installed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
    struct rlimit files;
    rlim_t limit = getrlimit(RLIMIT_NOFILE, &files) == 0 ? files.rlim_cur : 1024;
    fd_budget_ = static_cast<size_t>(std::min<rlim_t>(limit / 8, 1024));
  }
  timer_thread_ = std::make_unique<std::thread>([this] { Run(); });
  while (timer_tid_.load() == 0) std::this_thread::yield();
  return absl::OkStatus();
}

inline absl::Status WallClockSampler::AddThread(pid_t tid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tid == timer_tid_.load() || threads_.contains(tid)) return absl::OkStatus();
  Target target;
  if (!free_slots_.empty()) {
    target.slot = free_slots_.back();
    free_slots_.pop_back();
  } else if (next_slot_ < kWallIdleSlots) {
    target.slot = next_slot_++;
  }
  // A slot's sequence goes on from its previous owner's, so that owner's
  // last mark never answers the new thread's first signal.
  WallMarkSnapshot mark;
  if (target.slot != kNoWallSlot && ReadWallMark(target.slot, &mark)) {
    target.sequence = static_cast<uint16_t>(mark.sequence + 1);
  }
  threads_.emplace(tid, target);
  return absl::OkStatus();
}

inline void WallClockSampler::RemoveThread(pid_t tid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = threads_.find(tid);
  if (it == threads_.end()) return;
  Forget(tid, it->second);
  threads_.erase(it);
}

inline void WallClockSampler::Flush(pid_t tid, Target& target) {
  if (target.pending == 0) return;
  PushRepeatSamples(SampleSource::kWall, tid, target.pending);
  target.pending = 0;
}

inline void WallClockSampler::Forget(pid_t tid, Target& target) {
  Flush(tid, target);
  if (target.syscall_fd >= 0) {
    close(target.syscall_fd);
    target.syscall_fd = -1;
    --fds_open_;
  }
  if (target.slot != kNoWallSlot) free_slots_.push_back(target.slot);
  target.slot = kNoWallSlot;
}

inline bool WallClockSampler::StillBlocked(pid_t tid, Target& target) {
  WallMarkSnapshot mark;
  // The mark must answer the last signal (not one still pending) and have
  // seen the thread blocked.
  if (!target.signalled || !ReadWallMark(target.slot, &mark) ||
      mark.sequence != target.sequence || mark.site == 0) {
    return false;
  }
  struct timespec cpu;
  if (clock_gettime(ThreadCpuClock(tid), &cpu) != 0) return false;
  const uint64_t cpu_ns = TimespecNanos(cpu);
  if (cpu_ns == target.still_cpu_ns) return true;
  target.still_cpu_ns = UINT64_MAX;
  if (cpu_ns - mark.cpu_ns > kIdleCpuAllowanceNs) return false;
  // The /proc file stays open while the budget allows (a pread is a third
  // of open+read+close); past it, it is opened for each look.
  int fd = target.syscall_fd;
  if (fd < 0) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", static_cast<int>(tid));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    if (fds_open_ < fd_budget_) {
      target.syscall_fd = fd;
      ++fds_open_;
    }
  }
  char text[256];
  ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
  if (fd != target.syscall_fd) close(fd);
  SyscallSite now;
  if (n <= 0 || !ParseSyscallSite(absl::string_view(text, static_cast<size_t>(n)), &now) ||
      !SameBlockedCall(mark, now)) {
    return false;
  }
  target.still_cpu_ns = cpu_ns;
  return true;
}

inline void WallClockSampler::Run() {
  // The sampler's own thread never takes its signal.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, signo_);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  timer_tid_.store(CurrentTid());
  absl::Time next = absl::Now();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    next += interval_;
    absl::Duration wait = next - absl::Now();
    if (wait > absl::ZeroDuration()) {
      wake_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] { return stop_; });
    } else {
      next = absl::Now();  // fell behind (suspended VM): do not burst
    }
    if (stop_) return;
    for (auto& [tid, target] : threads_) {
      if (target.slot != kNoWallSlot && StillBlocked(tid, target)) {
        ticks_skipped_.fetch_add(1, std::memory_order_relaxed);
        if (++target.pending >= kMaxPendingRepeats) Flush(tid, target);
        continue;
      }
      // The repeats of the old stack go into the ring before the new sample.
      Flush(tid, target);
      const uint16_t sequence = static_cast<uint16_t>(target.sequence + 1);
      if (QueueSampleSignal(tid, signo_, WallSignalValue(target.slot, sequence)) == 0) {
        target.sequence = sequence;
        target.signalled = true;
        signals_sent_.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
}

inline void WallClockSampler::Stop() {
  if (timer_thread_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  timer_thread_->join();
  timer_thread_.reset();
  timer_tid_.store(0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [tid, target] : threads_) Forget(tid, target);
    threads_.clear();
    free_slots_.clear();
    next_slot_ = 0;
  }
  RestoreSignalHandler(signo_);
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_WALL_CLOCK_SAMPLER_H_
