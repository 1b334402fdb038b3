// SPDX-License-Identifier: Apache-2.0
// A shared library the profiler test loads with dlopen while profiling.

#include <stdint.h>
#include <time.h>

extern "C" __attribute__((noinline, visibility("default"))) uint64_t FkDsoBurn(double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  double until = ts.tv_sec + ts.tv_nsec / 1e9 + seconds;
  volatile uint64_t x = 0;
  for (;;) {
    for (int i = 0; i < 20000; ++i) x = x + i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    if (ts.tv_sec + ts.tv_nsec / 1e9 >= until) break;
  }
  return x;
}
