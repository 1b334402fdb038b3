// SPDX-License-Identifier: Apache-2.0
// File: demo_service.h
//
// DemoService: a small stand-in for a real service, with the kinds of work
// a flame graph should tell apart: CPU-bound request handling (parsing,
// hashing, sorting, rendering), lock contention on a shared cache, and
// sleeping/IO (a log flushed to a file with fsync). Used by the http_ui demo
// and by the UI load benchmark. Start()/Stop() and the counters may be
// called from any ordinary thread; nothing here is for signal handlers.
//
// Example:
//
//   DemoService service;
//   service.Start(DemoServiceOptions());
//   ...
//   uint64_t handled = service.requests_handled();
//   service.Stop();

#ifndef FLAMEKIT_EXAMPLES_HTTP_UI_DEMO_SERVICE_H_
#define FLAMEKIT_EXAMPLES_HTTP_UI_DEMO_SERVICE_H_

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flamekit {
namespace demo {

struct DemoServiceOptions {
  int request_threads = 1;     // CPU-bound request handlers
  int contention_threads = 2;  // threads fighting over one mutex
  bool io_thread = true;       // a log writer that sleeps and fsyncs
  std::string log_path;        // empty: a file under $TMPDIR, removed at Stop
};

class DemoService {
 public:
  DemoService() = default;
  ~DemoService() { Stop(); }
  DemoService(const DemoService&) = delete;
  DemoService& operator=(const DemoService&) = delete;

  void Start(const DemoServiceOptions& options);
  void Stop();

  uint64_t requests_handled() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t cache_updates() const { return cache_updates_.load(std::memory_order_relaxed); }
  uint64_t log_flushes() const { return log_flushes_.load(std::memory_order_relaxed); }
  // CPU time the request threads have used so far, in seconds (their
  // throughput per CPU second does not depend on what else the machine
  // runs).
  double request_cpu_seconds() const;

 private:
  void RequestLoop(uint64_t seed);
  void ContentionLoop(uint64_t seed);
  void IoLoop();

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> cache_updates_{0};
  std::atomic<uint64_t> log_flushes_{0};
  std::vector<std::thread> threads_;
  size_t request_thread_count_ = 0;
  std::mutex cache_mu_;
  std::map<uint64_t, uint64_t> cache_;
  std::string log_path_;
  bool remove_log_ = false;
};

// Implementation details follow.

namespace demo_internal {

inline uint64_t NextRandom(uint64_t* state) {
  *state ^= *state << 13;
  *state ^= *state >> 7;
  *state ^= *state << 17;
  return *state;
}

__attribute__((noinline)) inline std::vector<uint64_t> ParseRequest(uint64_t* rng) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += std::to_string(NextRandom(rng) % 100000) + ",";
  std::vector<uint64_t> fields;
  uint64_t value = 0;
  for (char c : text) {
    if (c == ',') {
      fields.push_back(value);
      value = 0;
    } else {
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
  }
  return fields;
}

__attribute__((noinline)) inline uint64_t ComputeChecksum(const std::vector<uint64_t>& fields) {
  uint64_t h = 1469598103934665603ull;
  for (int round = 0; round < 40; ++round) {
    for (uint64_t f : fields) {
      h ^= f + static_cast<uint64_t>(round);
      h *= 1099511628211ull;
    }
  }
  return h;
}

__attribute__((noinline)) inline void SortResults(std::vector<uint64_t>* fields) {
  std::sort(fields->begin(), fields->end());
}

__attribute__((noinline)) inline size_t RenderResponse(const std::vector<uint64_t>& fields,
                                                      uint64_t checksum) {
  std::string out = "{\"checksum\":" + std::to_string(checksum) + ",\"values\":[";
  for (uint64_t f : fields) out += std::to_string(f) + ",";
  out += "]}";
  return out.size();
}

__attribute__((noinline)) inline size_t HandleRequest(uint64_t* rng) {
  std::vector<uint64_t> fields = ParseRequest(rng);
  uint64_t checksum = ComputeChecksum(fields);
  SortResults(&fields);
  return RenderResponse(fields, checksum);
}

}  // namespace demo_internal

inline void DemoService::Start(const DemoServiceOptions& options) {
  Stop();
  stop_.store(false);
  log_path_ = options.log_path;
  remove_log_ = false;
  if (log_path_.empty()) {
    const char* tmp = ::getenv("TMPDIR");
    log_path_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/flamekit-demo-" +
                std::to_string(::getpid()) + ".log";
    remove_log_ = true;
  }
  for (int i = 0; i < options.request_threads; ++i) {
    threads_.emplace_back([this, i] { RequestLoop(0x9e3779b97f4a7c15ull + i); });
  }
  request_thread_count_ = static_cast<size_t>(std::max(options.request_threads, 0));
  for (int i = 0; i < options.contention_threads; ++i) {
    threads_.emplace_back([this, i] { ContentionLoop(0x2545f4914f6cdd1dull + i); });
  }
  if (options.io_thread) threads_.emplace_back([this] { IoLoop(); });
}

inline void DemoService::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  if (remove_log_ && !log_path_.empty()) ::unlink(log_path_.c_str());
}

inline double DemoService::request_cpu_seconds() const {
  double total = 0;
  for (size_t i = 0; i < request_thread_count_ && i < threads_.size(); ++i) {
    clockid_t clock;
    // const_cast: native_handle() is not const, and reading it changes nothing.
    std::thread& t = const_cast<std::thread&>(threads_[i]);
    if (pthread_getcpuclockid(t.native_handle(), &clock) != 0) continue;
    struct timespec ts;
    if (clock_gettime(clock, &ts) == 0) total += ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return total;
}

__attribute__((noinline)) inline void DemoService::RequestLoop(uint64_t seed) {
  uint64_t rng = seed;
  size_t sink = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    sink += demo_internal::HandleRequest(&rng);
    requests_.fetch_add(1, std::memory_order_relaxed);
  }
  asm volatile("" : : "g"(sink) : "memory");
}

__attribute__((noinline)) inline void DemoService::ContentionLoop(uint64_t seed) {
  uint64_t rng = seed;
  while (!stop_.load(std::memory_order_relaxed)) {
    {
      // UpdateSharedCache: a little work under a lock both threads want.
      std::lock_guard<std::mutex> lock(cache_mu_);
      for (int i = 0; i < 50; ++i) {
        uint64_t key = demo_internal::NextRandom(&rng) % 4096;
        cache_[key] += key;
      }
      cache_updates_.fetch_add(1, std::memory_order_relaxed);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

__attribute__((noinline)) inline void DemoService::IoLoop() {
  int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  char line[128];
  while (!stop_.load(std::memory_order_relaxed)) {
    int n = snprintf(line, sizeof(line), "handled %llu requests\n",
                     static_cast<unsigned long long>(requests_handled()));
    if (fd >= 0 && n > 0) {
      ssize_t ignored = ::write(fd, line, static_cast<size_t>(n));
      (void)ignored;
      ::fdatasync(fd);
      log_flushes_.fetch_add(1, std::memory_order_relaxed);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (fd >= 0) ::close(fd);
}

}  // namespace demo
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_HTTP_UI_DEMO_SERVICE_H_
