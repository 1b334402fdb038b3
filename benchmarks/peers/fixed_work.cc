// SPDX-License-Identifier: Apache-2.0
// File: fixed_work.cc
//
// A fixed amount of CPU work on N threads, for comparing profilers'
// overhead across processes (tools/run_benchmarks.sh). It reports its own
// CPU time (RUSAGE_SELF: every thread, user + system, which includes the
// cost of signal delivery and of any in-process profiler) as one JSON line.
// The work has nested, non-inlined calls so stack walking does real work.
//
// With FLAMEKIT_PROFILE_EVENT set (cpu, ctimer, itimer, wall, ...) it runs
// flamekit's embedded profiler around the work at FLAMEKIT_PROFILE_HZ
// (default 100) and writes the profile to FLAMEKIT_PROFILE_OUT (collapsed
// text), so the runner can
// put the embedded engines beside the other profilers.
//
//   fixed_work --threads 2 --iterations 4000
//   {"cpu_seconds":2.01,"wall_seconds":1.02,"threads":2,"checksum":...}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/profiler.h"

namespace {

#define FIXED_WORK_NOINLINE __attribute__((noinline))

FIXED_WORK_NOINLINE uint64_t Mix(uint64_t x, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

FIXED_WORK_NOINLINE uint64_t Inner(uint64_t seed) { return Mix(seed, 20000); }

FIXED_WORK_NOINLINE uint64_t Middle(uint64_t seed) {
  uint64_t acc = 0;
  for (int i = 0; i < 10; ++i) acc += Inner(seed + i);
  return acc;
}

FIXED_WORK_NOINLINE uint64_t Outer(uint64_t seed, int iterations) {
  uint64_t acc = 0;
  for (int i = 0; i < iterations; ++i) acc ^= Middle(seed * 31 + i);
  return acc;
}

double Seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int iterations = 4000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--iterations") == 0) iterations = atoi(argv[i + 1]);
  }
  if (threads < 1 || iterations < 1 || argc % 2 == 0) {
    fprintf(stderr, "usage: %s [--threads N] [--iterations N]\n", argv[0]);
    return 2;
  }
  const char* event = getenv("FLAMEKIT_PROFILE_EVENT");
  if (event != nullptr && *event != '\0') {
    flamekit::ProfilerOptions options;
    options.event = event;
    const char* hz = getenv("FLAMEKIT_PROFILE_HZ");
    int rate = hz != nullptr ? atoi(hz) : 100;
    if (rate < 1) rate = 100;
    options.interval = absl::Nanoseconds(1000000000 / rate);
    options.fallback = false;  // measure the engine asked for, or fail
    absl::Status started = flamekit::Profiler::Global().Start(options);
    if (!started.ok()) {
      fprintf(stderr, "fixed_work: %s\n", started.ToString().c_str());
      return 1;
    }
  }
  timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  std::vector<uint64_t> results(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&results, t, iterations] { results[t] = Outer(t + 1, iterations); });
  }
  for (auto& th : pool) th.join();
  clock_gettime(CLOCK_MONOTONIC, &end);
  if (flamekit::Profiler::Global().IsRunning()) {
    absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
    const char* out = getenv("FLAMEKIT_PROFILE_OUT");
    if (!profile.ok() || out == nullptr ||
        !flamekit::WriteCollapsedFile(*profile, out).ok()) {
      fprintf(stderr, "fixed_work: the embedded profile was not written\n");
      return 1;
    }
    printf("flamekit_embedded samples=%llu engine=%s\n",
           static_cast<unsigned long long>(profile->total_samples()),
           profile->metadata().engine.c_str());
  }
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  uint64_t checksum = 0;
  for (uint64_t r : results) checksum ^= r;
  printf("{\"cpu_seconds\":%.6f,\"wall_seconds\":%.6f,\"threads\":%d,\"checksum\":%llu}\n",
         Seconds(usage.ru_utime) + Seconds(usage.ru_stime),
         (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9, threads,
         static_cast<unsigned long long>(checksum));
  return 0;
}
