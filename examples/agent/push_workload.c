// SPDX-License-Identifier: Apache-2.0
// For agent_push_test: spins in hot_spin() for argv[1] seconds of wall time
// (default 2), prints "rounds N" (its throughput) and flushes, then returns
// from main(), so the agent's exit handler runs (the last push window).
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long hot_spin(double seconds) {
  volatile unsigned long x = 0;
  unsigned long rounds = 0;
  double until = Now() + seconds;
  while (Now() < until) {
    for (int i = 0; i < 10000; ++i) x = x + i;
    ++rounds;
  }
  return rounds;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2.0;
  printf("rounds %lu\n", hot_spin(seconds));
  fflush(stdout);
  return 0;
}
