// SPDX-License-Identifier: Apache-2.0
// File: rt_signal_user.c
//
// A program that uses real-time signals itself, from SIGRTMAX down (the end
// the agent picks its sample signal from): it installs a handler on each
// with sigaction(), checks that sigaction() then reports that handler,
// burns CPU in spin() for a while, queues itself 20 signals on each with
// sigqueue() and prints "received N of M foreign K" (K: signals that
// reached its handler without its own si_value). agent_signal_test.sh runs
// it under the agent: N must be M and K zero, and the agent must still
// profile spin().
//
// Usage: rt_signal_user [cpu_ms]   (default 1000)

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define kSignals 4
#define kEach 20
#define kCookie 0x5eed

static volatile sig_atomic_t g_received = 0;
static volatile sig_atomic_t g_foreign = 0;

static void OnSignal(int signo, siginfo_t* info, void* ucontext) {
  (void)signo;
  (void)ucontext;
  if (info->si_code == SI_QUEUE && info->si_value.sival_int == kCookie) {
    g_received = g_received + 1;
  } else {
    g_foreign = g_foreign + 1;
  }
}

static double CpuMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) double spin(double until_ms) {
  volatile double x = 0;
  while (CpuMs() < until_ms) {
    for (int i = 0; i < 10000; ++i) x = x + i * 0.5;
  }
  return x;
}

int main(int argc, char** argv) {
  const double cpu_ms = argc > 1 ? atof(argv[1]) : 1000.0;
  for (int k = 0; k < kSignals; ++k) {
    const int signo = SIGRTMAX - k;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = OnSignal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(signo, &action, NULL) != 0) {
      perror("sigaction");
      return 2;
    }
    struct sigaction seen;
    memset(&seen, 0, sizeof(seen));
    if (sigaction(signo, NULL, &seen) != 0 || !(seen.sa_flags & SA_SIGINFO) ||
        seen.sa_sigaction != OnSignal) {
      fprintf(stderr, "sigaction(%d) does not report the handler just installed\n", signo);
      return 3;
    }
  }
  spin(CpuMs() + cpu_ms);
  for (int k = 0; k < kSignals; ++k) {
    for (int i = 0; i < kEach; ++i) {
      union sigval value;
      value.sival_int = kCookie;
      sigqueue(getpid(), SIGRTMAX - k, value);
    }
  }
  // Queued signals to this process arrive before sigqueue() returns or at
  // the latest on the next return to user space; give stragglers a moment.
  usleep(10000);
  printf("received %d of %d foreign %d\n", (int)g_received, kSignals * kEach, (int)g_foreign);
  return 0;
}
