// SPDX-License-Identifier: Apache-2.0
// File: thread_rings.h
//
// attach_internal::ThreadRings holds one perf event and ring per thread of
// the target, in one epoll set: opens them (halving the ring when the
// locked-memory budget refuses it, dropping the user stack copy on a
// kernel that refuses it), remembers which threads are known, exited or
// newly forked, and closes them. AttachSession decides when; this file
// only does the per-thread bookkeeping.
//
// Thread-compatible: used by the AttachSession's thread only. Not for
// signal handlers.
//
// Example:
//
//   attach_internal::ThreadRings rings(&event_options, &progress, 32);
//   FLAMEKIT_RETURN_IF_ERROR(rings.Init());
//   FLAMEKIT_RETURN_IF_ERROR(rings.Open(tid, /*first=*/true, /*start_enabled=*/false));
//   rings.Drain(0, sink);

#ifndef FLAMEKIT_ATTACH_THREAD_RINGS_H_
#define FLAMEKIT_ATTACH_THREAD_RINGS_H_

#include <errno.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/types.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flamekit/attach/attach_options.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/perf/perf_ring.h"

namespace flamekit {
namespace attach_internal {

// Marks the pidfd's epoll entry (thread entries carry their index).
inline constexpr uint64_t kPidfdEpollKey = ~uint64_t{0};

class ThreadRings {
 public:
  struct Thread {
    pid_t tid = 0;
    ScopedFd fd;
    std::unique_ptr<PerfRing> ring;
    bool closed = false;
  };

  // `event_options` (the template every thread's event is opened from;
  // its sample_type loses PERF_SAMPLE_STACK_USER when the kernel refuses
  // it) and `progress` (thread counters) must outlive this object.
  ThreadRings(PerfEventOptions* event_options, AttachProgress* progress, size_t ring_pages)
      : event_options_(event_options), progress_(progress), ring_pages_(ring_pages) {}
  ~ThreadRings() { CloseAll(); }

  // Init()
  //
  // Creates the epoll set, and watches `pidfd` in it when >= 0 (its entry
  // carries kPidfdEpollKey).
  absl::Status Init(int pidfd);

  // Open()
  //
  // Opens `tid`'s event and ring (a no-op for a known thread). For the
  // `first` thread the error is returned as is (the user's problem:
  // permission, no PMU, ...); for later ones it is also counted in
  // progress (missed: the thread exited; failed: anything else).
  // `start_enabled`: the event counts at once, not when enabled together.
  absl::Status Open(pid_t tid, bool first, bool start_enabled);

  // Drain()
  //
  // Reads thread `index`'s ring into `sink`; lost records and throttles go
  // to progress.
  void Drain(size_t index, PerfRecordSink& sink);
  void Close(size_t index);
  void CloseAll();
  void EnableAll() { SetAll(PERF_EVENT_IOC_ENABLE); }
  void DisableAll() { SetAll(PERF_EVENT_IOC_DISABLE); }

  size_t size() const { return threads_.size(); }
  const Thread& at(size_t index) const { return *threads_[index]; }
  int epoll_fd() const { return epoll_.get(); }
  size_t ring_pages() const { return ring_pages_; }

  bool Known(pid_t tid) const { return known_tids_.contains(tid); }
  bool Exited(pid_t tid) const { return exited_tids_.contains(tid); }
  bool AnyExited() const { return !exited_tids_.empty(); }
  void NoteExit(pid_t tid) { exited_tids_.insert(tid); }
  // A FORK record named a thread to open after the rings are read.
  void NoteFork(pid_t tid) {
    if (!Known(tid)) pending_forks_.push_back(tid);
  }
  std::vector<pid_t> TakeForks() {
    std::vector<pid_t> out;
    out.swap(pending_forks_);
    return out;
  }

 private:
  void SetAll(unsigned long request) {
    for (auto& t : threads_) {
      if (!t->closed && t->fd) ioctl(t->fd.get(), request, 0);
    }
  }

  PerfEventOptions* const event_options_;
  AttachProgress* const progress_;
  size_t ring_pages_;
  std::vector<std::unique_ptr<Thread>> threads_;
  absl::flat_hash_set<pid_t> known_tids_;
  absl::flat_hash_set<pid_t> exited_tids_;
  std::vector<pid_t> pending_forks_;
  ScopedFd epoll_;
};

// Implementation details follow.

inline absl::Status ThreadRings::Init(int pidfd) {
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return absl::ErrnoToStatus(errno, "epoll_create1");
  if (pidfd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kPidfdEpollKey;
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pidfd, &ev);
  }
  return absl::OkStatus();
}

inline absl::Status ThreadRings::Open(pid_t tid, bool first, bool start_enabled) {
  if (known_tids_.contains(tid)) return absl::OkStatus();
  PerfEventOptions options = *event_options_;
  options.tid = tid;
  if (start_enabled) {
    options.enable_on_exec = false;
    options.disabled = false;
  }
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok() && (options.sample_type & PERF_SAMPLE_STACK_USER) != 0 &&
      fd.status().code() == absl::StatusCode::kInvalidArgument) {
    // A kernel without user stack samples (before 3.7, or one that limits
    // them): go on without; leaves' callers may then be missing, and the
    // rules cannot walk (samples keep the kernel's chain).
    event_options_->exclude_callchain_user = false;
    event_options_->sample_type &=
        ~static_cast<uint64_t>(PERF_SAMPLE_STACK_USER | PERF_SAMPLE_REGS_USER);
    options.sample_type = event_options_->sample_type;
    options.exclude_callchain_user = false;
    fd = OpenPerfEvent(options);
  }
  if (!fd.ok()) {
    if (!first) {
      if (fd.status().code() == absl::StatusCode::kNotFound) {
        ++progress_->threads_missed;
      } else {
        ++progress_->threads_failed;
        progress_->thread_error = std::string(fd.status().message());
      }
    }
    return fd.status();
  }
  auto t = std::make_unique<Thread>();
  t->tid = tid;
  t->fd = std::move(*fd);
  for (size_t pages = ring_pages_;; pages /= 2) {
    absl::StatusOr<PerfRing> ring =
        PerfRing::Map(t->fd.get(), pages, options.sample_type, options.sample_regs_user);
    if (ring.ok()) {
      t->ring = std::make_unique<PerfRing>(std::move(*ring));
      ring_pages_ = pages;
      break;
    }
    if (ring.status().code() != absl::StatusCode::kResourceExhausted || pages == 1) {
      if (!first) {
        ++progress_->threads_failed;
        progress_->thread_error = std::string(ring.status().message());
      }
      return ring.status();
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = threads_.size();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, t->fd.get(), &ev) != 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl(ADD perf fd)");
  }
  known_tids_.insert(tid);
  threads_.push_back(std::move(t));
  ++progress_->threads_followed;
  ++progress_->threads_now;
  return absl::OkStatus();
}

inline void ThreadRings::Close(size_t index) {
  Thread& t = *threads_[index];
  if (t.closed) return;
  if (t.fd) {
    ioctl(t.fd.get(), PERF_EVENT_IOC_DISABLE, 0);
    if (epoll_) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, t.fd.get(), nullptr);
  }
  t.ring.reset();
  t.fd.reset();
  t.closed = true;
  if (progress_->threads_now > 0) --progress_->threads_now;
}

inline void ThreadRings::CloseAll() {
  for (size_t i = 0; i < threads_.size(); ++i) Close(i);
}

inline void ThreadRings::Drain(size_t index, PerfRecordSink& sink) {
  Thread& t = *threads_[index];
  if (t.closed || !t.ring) return;
  PerfRecordCounts counts = t.ring->Read(sink);
  progress_->lost_samples += counts.lost_samples;
  progress_->throttles += counts.throttles;
}

}  // namespace attach_internal
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_THREAD_RINGS_H_
