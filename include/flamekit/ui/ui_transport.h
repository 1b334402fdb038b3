// SPDX-License-Identifier: Apache-2.0
// File: ui_transport.h
//
// How the UI's HTTP server spends its threads and what one client may cost
// it. Two parts, both over cpp-httplib (which still parses every request):
//
//   UiTaskQueue: a worker pool whose queue is bounded. Connections beyond
//     the bound are answered 503 by one extra "rejecter" thread (and when
//     even that is backed up, on the accepting thread, which slows
//     accepting down: backpressure).
//   UiHttpServer: an httplib::Server that reads each connection through a
//     guarded stream (UiGuardedStream) instead of httplib's own, so that
//       - the WHOLE request (line, headers, body) must arrive within
//         UiConnectionLimits::request_timeout of a worker taking the
//         connection, however slowly the bytes trickle (httplib's read
//         timeout is per read: one byte every 0.5 s kept a worker forever);
//       - the request line and headers are cut off past max_header_count
//         lines or max_header_bytes (431), before anything is routed or
//         authenticated, so memory per connection is bounded;
//       - one client address has at most max_connections_per_client
//         connections still sending their request at once (more: 503), so
//         slow senders from one address cannot take every worker; fast
//         clients (whose request is there at once) are not limited by it;
//       - writing the response is bounded by response_timeout in all;
//       - Stop() is not held up by a slow client for more than ~0.1 s.
//
// Thread-safety: enqueue() is called by httplib's accepting thread,
// shutdown() by the server on its way out; connection handling runs on the
// pool's threads, and the per-client table is guarded by an absl::Mutex.
// Per-connection state lives in a thread_local that only the thread serving
// that connection touches. Never from a signal handler.
//
// Example:
//
//   UiHttpServer server(limits);
//   server.new_task_queue = [] { return new UiTaskQueue(16, 64); };
//   ... install routes, bind, listen_after_bind() ...
//   server.BeginStop(); server.stop();

#ifndef FLAMEKIT_UI_UI_TRANSPORT_H_
#define FLAMEKIT_UI_UI_TRANSPORT_H_

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so

namespace flamekit {

// The bounds on one connection; UiOptions carries them (see ui_options.h
// for the defaults and why).
struct UiConnectionLimits {
  // Time to receive a whole request (line, headers and body), counted from
  // its first byte.
  absl::Duration request_timeout = absl::Seconds(2);
  // Time a connection may stay open without sending a byte. Longer than
  // request_timeout: browsers open sockets ahead of use (Chromium keeps an
  // unused one up to 10 s), and closing one at 2 s while the browser starts
  // a request on it fails that request (net::ERR_SOCKET_NOT_CONNECTED, seen
  // in the browser check). Such a connection still counts against its
  // client's max_connections_per_client while it waits.
  absl::Duration idle_timeout = absl::Seconds(15);
  // Time to send a whole response.
  absl::Duration response_timeout = absl::Seconds(30);
  // A connection refused for a limit (max_connections, or its client's
  // max_connections_per_client) is read for at most this long, to answer
  // it 503: a whole request is normally there already, and each refused
  // connection holds a thread for up to this long (250 ms let a burst of
  // refused ones delay another client by ~200 ms; 100 ms halves that).
  absl::Duration over_limit_timeout = absl::Milliseconds(100);
  // Header lines (not counting the request line) and bytes of the request
  // line plus headers; more: 431.
  size_t max_header_count = 100;
  size_t max_header_bytes = 32 * 1024;
  // Connections from one client address still sending their request at
  // once; more: 503.
  size_t max_connections_per_client = 8;
  // Connections the kernel may hold for accept(). httplib 0.11.4 listens
  // with a backlog of 5: a burst of more connects had SYNs dropped and
  // retried 1 s later (24 connects took 3.4 s).
  int listen_backlog = 128;
};

// Why the connection being served on this thread is refused or cut off;
// read by the request gate and the error handler (ui_routes.h).
struct UiConnectionState {
  bool over_limit = false;         // over max_connections: 503
  bool over_client_limit = false;  // over max_connections_per_client: 503
  bool header_limit = false;       // headers over the bounds: 431
  bool timed_out = false;          // request not received in time: 408
};

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

class UiHttpServer : public httplib::Server {
 public:
  explicit UiHttpServer(const UiConnectionLimits& limits) : limits_(limits) {}

  // RaiseBacklog()
  //
  // After bind_to_port()/bind_to_any_port(): lets the kernel queue
  // UiConnectionLimits::listen_backlog connections (listen() again on the
  // bound socket only changes its backlog).
  bool RaiseBacklog() { return ::listen(svr_sock_, limits_.listen_backlog) == 0; }

  // BeginStop()
  //
  // Makes every connection still being read or written give up within
  // ~0.1 s; call before stop().
  void BeginStop() { stopping_.store(true, std::memory_order_relaxed); }

  // Connections cut off: requests not received in time, headers over the
  // bounds, clients over their connection limit.
  uint64_t timed_out() const { return timed_out_.load(std::memory_order_relaxed); }
  uint64_t header_limited() const { return header_limited_.load(std::memory_order_relaxed); }
  uint64_t client_limited() const { return client_limited_.load(std::memory_order_relaxed); }

  // The state of the connection served by the calling thread (nullptr
  // outside one).
  static UiConnectionState* CurrentConnection();

 private:
  bool process_and_close_socket(socket_t sock) override;
  bool AdmitClient(const std::string& address);
  void ReleaseClient(const std::string& address);

  const UiConnectionLimits limits_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> timed_out_{0};
  std::atomic<uint64_t> header_limited_{0};
  std::atomic<uint64_t> client_limited_{0};
  absl::Mutex clients_mu_;
  absl::flat_hash_map<std::string, size_t> clients_ ABSL_GUARDED_BY(clients_mu_);
};

// Implementation details follow.

namespace ui_internal {

// Set on the thread that serves connections over the limit: such requests
// get 503 without being routed.
inline thread_local bool tls_over_limit = false;
inline thread_local UiConnectionState* tls_connection = nullptr;

// The address of a socket's peer (or, with `local`, its own) as text.
inline bool SocketAddress(int fd, bool local, std::string* ip, int* port) {
  sockaddr_storage addr = {};
  socklen_t len = sizeof(addr);
  int rc = local ? ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                 : ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (rc != 0) return false;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    *port = ntohs(in6->sin6_port);
  } else {
    return false;
  }
  *ip = text;
  return true;
}

// An httplib::Stream over a connected socket that enforces one deadline for
// reading the whole request, one for writing the whole response, and the
// header bounds. Buffered: httplib reads header lines a byte at a time.
class UiGuardedStream : public httplib::Stream {
 public:
  // `on_head` is called once, when the request line and headers are in.
  // Until the first byte arrives reads wait until `first_byte_deadline`;
  // from then on the whole request has `request_time`.
  UiGuardedStream(int fd, absl::Time first_byte_deadline, absl::Duration request_time,
                  const UiConnectionLimits& limits, const std::atomic<bool>* stopping,
                  UiConnectionState* state, std::function<void()> on_head)
      : fd_(fd), read_deadline_(first_byte_deadline), request_time_(request_time),
        limits_(limits), stopping_(stopping), state_(state), on_head_(std::move(on_head)) {}

  bool is_readable() const override {
    return pos_ < len_ || Wait(POLLIN, read_deadline_);
  }
  bool is_writable() const override { return Wait(POLLOUT, WriteDeadline()); }

  ssize_t read(char* ptr, size_t size) override {
    if (state_->header_limit || state_->timed_out) return -1;
    if (pos_ == len_) {
      if (!Wait(POLLIN, read_deadline_)) {
        state_->timed_out = true;
        return -1;
      }
      ssize_t n;
      do {
        n = ::recv(fd_, buffer_, sizeof(buffer_), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      if (!got_bytes_) {
        got_bytes_ = true;
        read_deadline_ = absl::Now() + request_time_;
      }
      pos_ = 0;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - pos_);
    if (!head_done_) {
      if (!CountHead(buffer_ + pos_, n)) {
        state_->header_limit = true;
        return -1;
      }
      if (head_done_ && on_head_) on_head_();
    }
    memcpy(ptr, buffer_ + pos_, n);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  // Writes all of it or fails: httplib writes a whole body in one call and
  // takes a short count as success. Non-blocking sends between waits, so
  // the response deadline holds even for a client that stops reading (a
  // blocking send of a large body would wait on the client).
  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      if (!Wait(POLLOUT, WriteDeadline())) return -1;
      ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return -1;
      }
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (!SocketAddress(fd_, false, &ip, &port)) port = 0;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (!SocketAddress(fd_, true, &ip, &port)) port = 0;
  }
  socket_t socket() const override { return fd_; }

 private:
  // Counts the request line and header lines up to the empty line that
  // ends them; false once over a bound. Only counts bytes: httplib parses.
  bool CountHead(const char* data, size_t n) {
    for (size_t i = 0; i < n && !head_done_; ++i) {
      ++head_bytes_;
      char c = data[i];
      if (c == '\n') {
        if (line_length_ == 0 && lines_ > 0) {
          head_done_ = true;
        } else {
          ++lines_;
        }
        line_length_ = 0;
      } else if (c != '\r') {
        ++line_length_;
      }
    }
    // lines_ counts the request line too.
    return head_bytes_ <= limits_.max_header_bytes && lines_ <= limits_.max_header_count + 1;
  }

  absl::Time WriteDeadline() const {
    if (write_deadline_ == absl::InfinitePast()) {
      write_deadline_ = absl::Now() + limits_.response_timeout;
    }
    return write_deadline_;
  }

  // Waits until the socket is ready for `events`, the deadline passes
  // (false), or the server stops (false). Polls in slices of at most
  // 100 ms so that a stopping server is noticed.
  bool Wait(short events, absl::Time deadline) const {
    while (true) {
      if (stopping_->load(std::memory_order_relaxed)) return false;
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return false;
      int ms = static_cast<int>(
          std::min<int64_t>(100, absl::ToInt64Milliseconds(left + absl::Milliseconds(1) -
                                                           absl::Nanoseconds(1))));
      struct pollfd p = {fd_, events, 0};
      int rc = ::poll(&p, 1, std::max(ms, 1));
      if (rc > 0) return true;  // ready, or an error recv/send will report
      if (rc < 0 && errno != EINTR) return false;
    }
  }

  const int fd_;
  absl::Time read_deadline_;
  const absl::Duration request_time_;
  bool got_bytes_ = false;
  mutable absl::Time write_deadline_ = absl::InfinitePast();
  const UiConnectionLimits& limits_;
  const std::atomic<bool>* const stopping_;
  UiConnectionState* const state_;
  const std::function<void()> on_head_;
  char buffer_[4096];
  size_t pos_ = 0;
  size_t len_ = 0;
  bool head_done_ = false;
  size_t head_bytes_ = 0;
  size_t lines_ = 0;
  size_t line_length_ = 0;
};

}  // namespace ui_internal

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

inline UiConnectionState* UiHttpServer::CurrentConnection() { return ui_internal::tls_connection; }

inline bool UiHttpServer::AdmitClient(const std::string& address) {
  absl::MutexLock lock(&clients_mu_);
  size_t& count = clients_[address];
  if (count >= limits_.max_connections_per_client) {
    if (count == 0) clients_.erase(address);
    return false;
  }
  ++count;
  return true;
}

inline void UiHttpServer::ReleaseClient(const std::string& address) {
  absl::MutexLock lock(&clients_mu_);
  auto it = clients_.find(address);
  if (it == clients_.end()) return;
  if (--it->second == 0) clients_.erase(it);
}

inline bool UiHttpServer::process_and_close_socket(socket_t sock) {
  UiConnectionState state;
  state.over_limit = ui_internal::tls_over_limit;
  std::string address;
  int port = 0;
  if (!ui_internal::SocketAddress(sock, false, &address, &port)) address.clear();
  bool admitted = !state.over_limit && AdmitClient(address);
  if (!state.over_limit && !admitted) {
    state.over_client_limit = true;
    client_limited_.fetch_add(1, std::memory_order_relaxed);
  }
  // Refused connections are read only long enough to answer them.
  absl::Duration read_time = admitted ? limits_.request_timeout : limits_.over_limit_timeout;
  absl::Duration idle_time =
      admitted ? std::max(limits_.idle_timeout, read_time) : limits_.over_limit_timeout;
  // The client's slot is given back once its request head is in: the limit
  // is on connections still sending, not on requests being answered.
  bool holds_slot = admitted;
  auto release = [&] {
    if (holds_slot) ReleaseClient(address);
    holds_slot = false;
  };
  ui_internal::UiGuardedStream stream(sock, absl::Now() + idle_time, read_time, limits_,
                                      &stopping_, &state, release);
  ui_internal::tls_connection = &state;
  bool connection_closed = false;
  bool ok = process_request(stream, /*close_connection=*/true, connection_closed, nullptr);
  ui_internal::tls_connection = nullptr;
  release();
  if (state.timed_out) timed_out_.fetch_add(1, std::memory_order_relaxed);
  if (state.header_limit) header_limited_.fetch_add(1, std::memory_order_relaxed);
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_TRANSPORT_H_
