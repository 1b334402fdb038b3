// SPDX-License-Identifier: Apache-2.0
// File: ui_transport.h
//
// How the UI's HTTP server spends its threads: UiTaskQueue, a worker pool
// whose queue is bounded. Connections beyond the bound are answered 503 by
// one extra "rejecter" thread (and when even that is backed up, on the
// accepting thread, which slows accepting down: backpressure).
//
// Thread-safety: enqueue() is called by httplib's accepting thread,
// shutdown() by the server on its way out; the pool's state is guarded by
// one std::mutex. Handlers run on the pool's threads. Never from a signal
// handler.
//
// Example:
//
//   server.new_task_queue = [] { return new UiTaskQueue(4, 64); };

#ifndef FLAMEKIT_UI_UI_TRANSPORT_H_
#define FLAMEKIT_UI_UI_TRANSPORT_H_

#include <stddef.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so

namespace flamekit {
namespace ui_internal {

// Set on the thread that serves connections over the limit: such requests
// get 503 without being routed.
inline thread_local bool tls_over_limit = false;

}  // namespace ui_internal

class UiTaskQueue : public httplib::TaskQueue {
 public:
  // `workers` threads serve; at most `max_pending` connections are served
  // or queued at once (at least `workers`).
  UiTaskQueue(size_t workers, size_t max_pending);
  ~UiTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  void Work(bool rejecter);

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable jobs_cv_;
  std::condition_variable overflow_cv_;
  std::deque<std::function<void()>> jobs_;
  std::deque<std::function<void()>> overflow_;
  size_t pending_ = 0;  // queued + running jobs
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

// Implementation details follow.

inline UiTaskQueue::UiTaskQueue(size_t workers, size_t max_pending)
    : max_pending_(std::max<size_t>(max_pending, workers)) {
  for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) {
    threads_.emplace_back([this] { Work(false); });
  }
  threads_.emplace_back([this] { Work(true); });
}

inline void UiTaskQueue::enqueue(std::function<void()> fn) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (pending_ < max_pending_) {
      ++pending_;
      jobs_.push_back(std::move(fn));
      jobs_cv_.notify_one();
      return;
    }
    if (overflow_.size() < max_pending_) {
      overflow_.push_back(std::move(fn));
      overflow_cv_.notify_one();
      return;
    }
  }
  ui_internal::tls_over_limit = true;
  fn();
  ui_internal::tls_over_limit = false;
}

inline void UiTaskQueue::shutdown() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
    jobs_cv_.notify_all();
    overflow_cv_.notify_all();
  }
  for (std::thread& t : threads_) t.join();
}

inline void UiTaskQueue::Work(bool rejecter) {
  ui_internal::tls_over_limit = rejecter;
  while (true) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      std::deque<std::function<void()>>& queue = rejecter ? overflow_ : jobs_;
      // Separate condition variables: a notify_one meant for a worker
      // must never be swallowed by the rejecter, and vice versa.
      (rejecter ? overflow_cv_ : jobs_cv_).wait(lock, [&] { return shutdown_ || !queue.empty(); });
      if (queue.empty()) return;  // shut down and drained
      fn = std::move(queue.front());
      queue.pop_front();
    }
    fn();
    if (!rejecter) {
      std::unique_lock<std::mutex> lock(mu_);
      --pending_;
    }
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_TRANSPORT_H_
