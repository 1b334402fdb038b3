// SPDX-License-Identifier: Apache-2.0
// File: wall_clock_sampler.h
//
// The `wall` engine: a timer thread wakes every `interval` of wall time and
// signals every registered thread, running or blocked, so that time spent
// sleeping, waiting for locks or for I/O shows up in the profile. The
// handler records whether the thread was in a system call (and which) from
// its ucontext (see ucontext_regs.h); the profiler shows it as a leaf frame
// such as "[syscall futex]" or "[running]".
//
// A blocked thread's system call is restarted after the handler (SA_RESTART)
// except for the calls Linux never restarts after a handler (poll,
// epoll_wait, select, nanosleep, ...: signal(7)), which return EINTR as
// they would for any signal: applications must already handle that.
//
// Thread safety: Start/AddThread/RemoveThread/Stop from one control thread;
// the timer thread only reads the thread set under a mutex.
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

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"

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

 private:
  void Run();

  const absl::Duration interval_;
  const int signo_;
  std::unique_ptr<std::thread> timer_thread_;
  std::atomic<pid_t> timer_tid_{0};
  std::atomic<uint64_t> signals_sent_{0};
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees pthread
  // mutexes, not Debian's uninstrumented absl::Mutex.
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                   // under mu_
  absl::flat_hash_set<pid_t> threads_;  // under mu_
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
  }
  timer_thread_ = std::make_unique<std::thread>([this] { Run(); });
  while (timer_tid_.load() == 0) std::this_thread::yield();
  return absl::OkStatus();
}

inline absl::Status WallClockSampler::AddThread(pid_t tid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tid != timer_tid_.load()) threads_.insert(tid);
  return absl::OkStatus();
}

inline void WallClockSampler::RemoveThread(pid_t tid) {
  std::lock_guard<std::mutex> lock(mu_);
  threads_.erase(tid);
}

inline void WallClockSampler::Run() {
  // The sampler's own thread never takes its signal.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, signo_);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  timer_tid_.store(CurrentTid());
  std::vector<pid_t> targets;
  absl::Time next = absl::Now();
  while (true) {
    next += interval_;
    {
      std::unique_lock<std::mutex> lock(mu_);
      absl::Duration wait = next - absl::Now();
      if (wait > absl::ZeroDuration()) {
        wake_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] { return stop_; });
      } else {
        next = absl::Now();  // fell behind (suspended VM): do not burst
      }
      if (stop_) return;
      targets.assign(threads_.begin(), threads_.end());
    }
    for (pid_t tid : targets) {
      if (QueueSampleSignal(tid, signo_, kWallCookie) == 0) {
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
  RestoreSignalHandler(signo_);
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_WALL_CLOCK_SAMPLER_H_
