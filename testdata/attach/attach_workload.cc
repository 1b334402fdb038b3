// SPDX-License-Identifier: Apache-2.0
// attach_workload: a target for flamekit's attach tests and benchmarks, with
// a known CPU split. Prints "ready <pid>" on stdout once running.
//
//   attach_workload split SECONDS [REPORT]     75 % HotA, 25 % HotB (one thread)
//   attach_workload threads SECONDS DELAY_MS N main spins in MainSpin; after
//                                              DELAY_MS, N threads run WorkerSpin
//   attach_workload dlopen SECONDS DELAY_MS LIB  BeforeDlopen, then LIB's PluginWork
//   attach_workload spin2 SECONDS [REPORT]     two threads running the split
//   attach_workload bench SECONDS              fixed chunks of HotA, printing
//                                              each chunk's CPU ns (benchmarks)
//
// SECONDS is wall time (0 = until SIGTERM/SIGINT). REPORT, when given, gets
// "HotA_ns HotB_ns cpu_ns" measured with the thread CPU clock, written at exit,
// so a test can compare a profile's shares with what really ran.
//
// Built with -O0 so every function keeps its frame pointer: the profile's
// chains are then exact (main -> RunSplit -> HotA).

#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

static std::atomic<bool> g_stop{false};

static void OnSignal(int) { g_stop.store(true); }

static int64_t Now(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

static volatile uint64_t g_sink = 0;

// One unit of work: the same instructions in every Hot function, so their
// CPU shares follow the number of units.
#define WORK_UNIT()                                   \
  do {                                                \
    uint64_t x = g_sink;                              \
    for (int i = 0; i < 200000; ++i) x = x * 31 + i;  \
    g_sink = x;                                       \
  } while (0)

extern "C" __attribute__((noinline)) void HotA() {
  WORK_UNIT();
  WORK_UNIT();
  WORK_UNIT();
}

extern "C" __attribute__((noinline)) void HotB() { WORK_UNIT(); }

extern "C" __attribute__((noinline)) void MainSpin() { WORK_UNIT(); }

extern "C" __attribute__((noinline)) void WorkerSpin() { WORK_UNIT(); }

extern "C" __attribute__((noinline)) void BeforeDlopen() { WORK_UNIT(); }

static bool Done(int64_t deadline) {
  return g_stop.load(std::memory_order_relaxed) ||
         (deadline > 0 && Now(CLOCK_MONOTONIC) >= deadline);
}

struct SplitTimes {
  int64_t a = 0, b = 0, total = 0;
};

extern "C" __attribute__((noinline)) void RunSplit(int64_t deadline, SplitTimes* t) {
  int64_t start = Now(CLOCK_THREAD_CPUTIME_ID);
  while (!Done(deadline)) {
    int64_t t0 = Now(CLOCK_THREAD_CPUTIME_ID);
    HotA();
    int64_t t1 = Now(CLOCK_THREAD_CPUTIME_ID);
    HotB();
    int64_t t2 = Now(CLOCK_THREAD_CPUTIME_ID);
    t->a += t1 - t0;
    t->b += t2 - t1;
  }
  t->total = Now(CLOCK_THREAD_CPUTIME_ID) - start;
}

static void Report(const char* path, const SplitTimes& t) {
  if (path == nullptr) return;
  FILE* f = fopen(path, "w");
  if (f == nullptr) return;
  fprintf(f, "%lld %lld %lld\n", static_cast<long long>(t.a), static_cast<long long>(t.b),
          static_cast<long long>(t.total));
  fclose(f);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s split|threads|dlopen|spin2 SECONDS ...\n", argv[0]);
    return 2;
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  const char* mode = argv[1];
  double seconds = atof(argv[2]);
  int64_t deadline =
      seconds > 0 ? Now(CLOCK_MONOTONIC) + static_cast<int64_t>(seconds * 1e9) : 0;
  printf("ready %d\n", static_cast<int>(getpid()));
  fflush(stdout);
  if (strcmp(mode, "split") == 0) {
    SplitTimes t;
    RunSplit(deadline, &t);
    Report(argc > 3 ? argv[3] : nullptr, t);
    return 0;
  }
  if (strcmp(mode, "spin2") == 0) {
    SplitTimes t1, t2;
    std::thread other([&] { RunSplit(deadline, &t2); });
    RunSplit(deadline, &t1);
    other.join();
    SplitTimes sum{t1.a + t2.a, t1.b + t2.b, t1.total + t2.total};
    Report(argc > 3 ? argv[3] : nullptr, sum);
    return 0;
  }
  if (strcmp(mode, "bench") == 0) {
    // Fixed chunks of work; after each, one line: the CPU nanoseconds the
    // chunk took (thread CPU clock: includes the kernel's sampling
    // interrupts charged to this thread).
    while (!Done(deadline)) {
      int64_t t0 = Now(CLOCK_THREAD_CPUTIME_ID);
      for (int i = 0; i < 20; ++i) HotA();
      int64_t t1 = Now(CLOCK_THREAD_CPUTIME_ID);
      printf("%lld\n", static_cast<long long>(t1 - t0));
      fflush(stdout);
    }
    return 0;
  }
  if (strcmp(mode, "threads") == 0 && argc >= 5) {
    int64_t start_threads = Now(CLOCK_MONOTONIC) + atoll(argv[3]) * 1000000;
    int n = atoi(argv[4]);
    while (!Done(deadline) && Now(CLOCK_MONOTONIC) < start_threads) MainSpin();
    std::vector<std::thread> workers;
    for (int i = 0; i < n; ++i) {
      workers.emplace_back([deadline] {
        while (!Done(deadline)) WorkerSpin();
      });
    }
    while (!Done(deadline)) usleep(10000);
    for (auto& w : workers) w.join();
    return 0;
  }
  if (strcmp(mode, "dlopen") == 0 && argc >= 5) {
    int64_t load_at = Now(CLOCK_MONOTONIC) + atoll(argv[3]) * 1000000;
    while (!Done(deadline) && Now(CLOCK_MONOTONIC) < load_at) BeforeDlopen();
    void* lib = dlopen(argv[4], RTLD_NOW);
    if (lib == nullptr) {
      fprintf(stderr, "dlopen: %s\n", dlerror());
      return 1;
    }
    auto work = reinterpret_cast<void (*)()>(dlsym(lib, "PluginWork"));
    if (work == nullptr) return 1;
    while (!Done(deadline)) work();
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", mode);
  return 2;
}
