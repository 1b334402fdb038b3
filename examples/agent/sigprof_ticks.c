// SPDX-License-Identifier: Apache-2.0
// File: sigprof_ticks.c
//
// A program with its own CPU profiler, as gprof-style tools and some
// interpreters have: it installs a SIGPROF handler with signal(), arms
// setitimer(ITIMER_PROF, 10 ms), burns a fixed amount of CPU time in
// spin() and prints "ticks N cpu_ms M". agent_signal_test.sh runs it with
// and without the agent: the agent must not change N (its own signals must
// not reach this handler, and it must not take SIGPROF away from it).
//
// Usage: sigprof_ticks [cpu_ms]   (default 1000)

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t g_ticks = 0;

static void OnProf(int signo) {
  (void)signo;
  g_ticks = g_ticks + 1;
}

static double CpuMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Not inlined: the agent's profile must show where the time went.
__attribute__((noinline)) double spin(double until_ms) {
  volatile double x = 0;
  while (CpuMs() < until_ms) {
    for (int i = 0; i < 10000; ++i) x = x + i * 0.5;
  }
  return x;
}

int main(int argc, char** argv) {
  const double cpu_ms = argc > 1 ? atof(argv[1]) : 1000.0;
  if (signal(SIGPROF, OnProf) == SIG_ERR) {
    perror("signal(SIGPROF)");
    return 2;
  }
  struct itimerval timer = {{0, 10000}, {0, 10000}};
  if (setitimer(ITIMER_PROF, &timer, NULL) != 0) {
    perror("setitimer(ITIMER_PROF)");
    return 2;
  }
  const double start = CpuMs();
  spin(start + cpu_ms);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &off, NULL);
  printf("ticks %d cpu_ms %.0f\n", (int)g_ticks, CpuMs() - start);
  return 0;
}
