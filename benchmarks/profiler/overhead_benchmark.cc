// SPDX-License-Identifier: Apache-2.0
// Overhead of the embedded profiler as a CPU-time ratio: a fixed amount of
// work on 2 threads, run with the profiler off and on, interleaved in the
// same process (off/on, on/off, ...), compared as process CPU time (workers
// plus the profiler's collector and timer threads). Reports the median
// overhead of the pairs in percent with its quartiles (overhead_pct,
// overhead_pct_p25, overhead_pct_p75), and the RSS the profiler added.
//
// The BM_Overhead/none row runs the same pairs with the profiler off in
// both phases: its ratios are the machine's noise floor (CPU frequency,
// caches, other processes). An engine's median
// inside the none row's quartile range is not told apart from zero by this
// run; add pairs or quiet the machine.
//
// Targets: cpu at 1 kHz < +4.0 %; ctimer/itimer at their maximum rate
// (1 ms asked, ~250 Hz given by the tick) < +0.4 %; any engine at 100 Hz
// < +0.5 %; added RSS < 20 MB.
//
//   bazel run -c opt //benchmarks/profiler:overhead_benchmark
//   FLAMEKIT_BENCHMARK_QUICK=1 ... for a short (noisy) run: 2 pairs of
//     shorter phases.
//   FLAMEKIT_BENCHMARK_PAIRS=N ... N off/on pairs per row (default 10, or
//     2 with FLAMEKIT_BENCHMARK_QUICK=1); a pair is two phases of ~1 s of
//     CPU each (~0.13 s when quick) on a 2-vCPU VM. The order alternates
//     per pair, so an even N gives off-first and on-first equal weight.

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "flamekit/profiler.h"
#include "flamekit/sample/sampler.h"

namespace flamekit {
namespace {

bool Quick() {
  const char* q = getenv("FLAMEKIT_BENCHMARK_QUICK");
  return q != nullptr && q[0] == '1';
}

// Off/on pairs per row: FLAMEKIT_BENCHMARK_PAIRS, else the default.
// Returns 0 (and sets *error) for a value that is not a positive integer.
int Pairs(std::string* error) {
  const int default_pairs = Quick() ? 2 : 10;
  const char* v = getenv("FLAMEKIT_BENCHMARK_PAIRS");
  if (v == nullptr || v[0] == '\0') return default_pairs;
  char* end = nullptr;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < 1 || n > 100000) {
    *error = std::string("FLAMEKIT_BENCHMARK_PAIRS must be a whole number from 1 to 100000, got '") +
             v + "'";
    return 0;
  }
  return static_cast<int>(n);
}

// The q-quantile of sorted `v`, interpolating between neighbours (the
// method of R's default and numpy's "linear"), so that with few pairs the
// quartiles still differ from the extremes and p25 <= median <= p75.
double Quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  double pos = q * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(pos);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

double ProcessCpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double ResidentMb() {
  FILE* f = fopen("/proc/self/statm", "re");
  if (f == nullptr) return 0;
  long size = 0, resident = 0;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  fclose(f);
  return resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

__attribute__((noinline)) uint64_t Kernel(uint64_t n, uint64_t seed) {
  uint64_t x = seed | 1;
  for (uint64_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}
__attribute__((noinline)) uint64_t Middle(uint64_t n, uint64_t seed) {
  uint64_t r = 0;
  for (int i = 0; i < 4; ++i) r += Kernel(n / 4, seed + i);
  return r;
}
__attribute__((noinline)) uint64_t Work(uint64_t n, uint64_t seed) {
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r += Middle(n / 8, seed + i);
  return r;
}

// Two long-lived worker threads (so the profiler arms them at Start) that
// run one phase of fixed work per Run() call.
class Workers {
 public:
  explicit Workers(uint64_t iterations_per_thread) : iterations_(iterations_per_thread) {
    for (int t = 0; t < 2; ++t) {
      threads_.emplace_back([this, t] { Loop(t); });
    }
  }
  ~Workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    ++generation_;
    done_ = 0;
    cv_.notify_all();
    cv_.wait(lock, [this] { return done_ == 2; });
  }

 private:
  void Loop(int t) {
    pthread_setname_np(pthread_self(), "fk-bench-work");
    uint64_t seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
      }
      sink_ += Work(iterations_, seen * 2 + t);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++done_;
      }
      cv_.notify_all();
    }
  }
  const uint64_t iterations_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  int done_ = 0;
  bool quit_ = false;
  std::atomic<uint64_t> sink_{0};
};

// Threads that wait on a condition variable for the whole run, as the idle
// workers of a thread pool do: the wall engine's cost grows with them.
class IdleThreads {
 public:
  explicit IdleThreads(int count) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "fk-bench-idle");
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return quit_; });
      });
    }
  }
  ~IdleThreads() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
};

// One fixed-work phase; returns the process CPU it took.
double Phase(Workers& workers) {
  double before = ProcessCpuSeconds();
  workers.Run();
  return ProcessCpuSeconds() - before;
}

// `event` "none": the "on" phase of each pair runs unprofiled too (the
// noise floor row).
void BM_Overhead(benchmark::State& state, const char* event, int interval_us,
                 int idle_threads = 0, const char* unwind = "fp") {
  std::string pairs_error;
  const int pairs = Pairs(&pairs_error);
  if (pairs == 0) {
    state.SkipWithError(pairs_error.c_str());
    return;
  }
  const bool noise_floor = strcmp(event, "none") == 0;
  IdleThreads idle(idle_threads);
  // ~0.5 s of CPU per thread and phase on a 2-vCPU VM at -O2 (measured:
  // off_cpu_s 10.6 s for 10 pairs).
  Workers workers(Quick() ? 40'000'000 : 300'000'000);
  Phase(workers);  // warm up
  std::vector<double> ratios;
  double off_total = 0, on_total = 0, rss_added = 0;
  uint64_t samples = 0;
  double profiler_threads = 0, handler = 0, profiled_wall = 0;
  uint64_t signals = 0;
  std::string engine;
  for (auto _ : state) {
    for (int pair = 0; pair < pairs; ++pair) {
      double off = 0, on = 0;
      for (int half = 0; half < 2; ++half) {
        const bool profiled = (half == 0) == (pair % 2 == 1);  // alternate order
        if (!profiled) {
          off = Phase(workers);
          continue;
        }
        if (noise_floor) {
          on = Phase(workers);
          engine = "none: both phases unprofiled (noise floor)";
          continue;
        }
        ProfilerOptions options;
        options.event = event;
        options.interval = absl::Microseconds(interval_us);
        options.unwind = unwind;
        options.fallback = false;
        double rss_before = ResidentMb();
        absl::Status started = Profiler::Global().Start(options);
        if (!started.ok()) {
          state.SkipWithError(std::string(started.ToString()).c_str());
          return;
        }
        absl::Time phase_start = absl::Now();
        on = Phase(workers);
        profiled_wall += absl::ToDoubleSeconds(absl::Now() - phase_start);
        signals += ReadSamplerCounters().signals;
        rss_added = std::max(rss_added, ResidentMb() - rss_before);
        ProfilerStatus status = Profiler::Global().Status();
        engine = status.engine;
        samples += status.samples;
        profiler_threads += absl::ToDoubleSeconds(status.profiler_thread_cpu);
        handler += absl::ToDoubleSeconds(status.handler_time);
        (void)Profiler::Global().Stop();
      }
      off_total += off;
      on_total += on;
      ratios.push_back(on / off - 1.0);
    }
  }
  std::sort(ratios.begin(), ratios.end());
  state.counters["pairs"] = static_cast<double>(ratios.size());
  state.counters["overhead_pct"] = 100.0 * Quantile(ratios, 0.5);
  state.counters["overhead_pct_p25"] = 100.0 * Quantile(ratios, 0.25);
  state.counters["overhead_pct_p75"] = 100.0 * Quantile(ratios, 0.75);
  state.counters["overhead_total_pct"] = 100.0 * (on_total / off_total - 1.0);
  state.counters["off_cpu_s"] = off_total;
  state.counters["on_cpu_s"] = on_total;
  state.counters["samples_per_cpu_s"] = on_total > 0 ? samples / on_total : 0;
  state.counters["rss_added_mb"] = rss_added;
  // Sample signals the threads received per second of profiled time (the
  // wall engine skips threads still blocked where they were last seen).
  state.counters["signals_per_s"] = profiled_wall > 0 ? signals / profiled_wall : 0;
  // Parts of the overhead, in percent of the unprofiled CPU: the profiler's
  // own threads (collector, wall timer) and the handler path in user space;
  // the rest is the kernel's signal delivery and cache effects.
  state.counters["profiler_threads_pct"] = 100.0 * profiler_threads / off_total;
  state.counters["handler_pct"] = 100.0 * handler / off_total;
  state.SetLabel(engine);
}

// The profiler's own threads' CPU per wall-clock second while the process
// idles (the collector; for wall also its timer thread, which looks at
// every thread each interval): the fixed cost of a running capture.
void BM_CollectorIdleCost(benchmark::State& state, const char* event, int idle_threads) {
  IdleThreads idle(idle_threads);
  double cpu = 0, wall = 0;
  for (auto _ : state) {
    ProfilerOptions options;
    options.event = event;
    if (!Profiler::Global().Start(options).ok()) {
      state.SkipWithError("Start failed");
      return;
    }
    // Steady state: leave out Start()'s first thread scan and symbolizer
    // setup.
    absl::SleepFor(absl::Milliseconds(300));
    absl::Duration cpu_before = Profiler::Global().Status().profiler_thread_cpu;
    absl::Time start = absl::Now();
    absl::SleepFor(absl::Seconds(Quick() ? 0.2 : 2));
    cpu += absl::ToDoubleSeconds(Profiler::Global().Status().profiler_thread_cpu - cpu_before);
    wall += absl::ToDoubleSeconds(absl::Now() - start);
    (void)Profiler::Global().Stop();
  }
  state.counters["collector_cpu_us_per_s"] = 1e6 * cpu / wall;
}
BENCHMARK_CAPTURE(BM_CollectorIdleCost, ctimer, "ctimer", 0)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_CollectorIdleCost, wall_100Hz_32_idle_threads, "wall", 32)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

// First, so the rows after it can be read against it.
BENCHMARK_CAPTURE(BM_Overhead, none, "none", 0)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, cpu_1kHz, "cpu", 1000)->Iterations(1)->Unit(benchmark::kSecond);
// Every frame by its .eh_frame rule (unwind = "dwarf").
BENCHMARK_CAPTURE(BM_Overhead, cpu_1kHz_dwarf, "cpu", 1000, 0, "dwarf")
    ->Iterations(1)
    ->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, ctimer_max, "ctimer", 1000)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, itimer_max, "itimer", 1000)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, cpu_100Hz, "cpu", 10000)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, ctimer_100Hz, "ctimer", 10000)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, itimer_100Hz, "itimer", 10000)->Iterations(1)->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Overhead, wall_100Hz, "wall", 10000)->Iterations(1)->Unit(benchmark::kSecond);
// A service's shape: 2 busy threads beside a pool of 32 idle ones.
BENCHMARK_CAPTURE(BM_Overhead, wall_100Hz_32_idle_threads, "wall", 10000, 32)
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

}  // namespace
}  // namespace flamekit
