// SPDX-License-Identifier: Apache-2.0
// onset_workload: a test target with a steady baseline load that spikes on
// command, for the look-back tests of `flamekit watch`.
//
//   before SIGUSR1  ~20 % of a core in BaselineFunction() (5 ms of work,
//                   20 ms of sleep), so the seconds before a spike have
//                   samples, all in BaselineFunction()
//   SIGUSR1         burn a whole core in OnsetSpikeFunction(); Baseline-
//                   Function() never runs again, so any sample of it in a
//                   capture comes from before the signal
//   SIGTERM         exit 0
//
// Prints "ready <pid>\n" on stdout once the handlers are installed.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <initializer_list>

namespace {

volatile sig_atomic_t g_spike = 0;
volatile sig_atomic_t g_stop = 0;

void OnSignal(int sig) {
  if (sig == SIGUSR1) g_spike = 1;
  if (sig == SIGTERM) g_stop = 1;
}

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

__attribute__((noinline)) uint64_t BaselineFunction(uint64_t seed) {
  uint64_t x = seed;
  // 5 ms of CPU time, checked every 20k steps.
  int64_t end = ThreadCpuNanos() + 5 * 1000 * 1000;
  while (ThreadCpuNanos() < end && !g_spike) {
    for (int i = 0; i < 20000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  }
  return x;
}

__attribute__((noinline)) uint64_t OnsetSpikeFunction(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 2000000; ++i) x = x * 2862933555777941757ULL + 3037000493ULL;
  return x;
}

}  // namespace

int main() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGUSR1, SIGTERM}) sigaction(sig, &sa, nullptr);
  printf("ready %d\n", static_cast<int>(getpid()));
  fflush(stdout);
  volatile uint64_t sink = 1;
  while (!g_stop) {
    if (g_spike) {
      sink = OnsetSpikeFunction(sink);
    } else {
      sink = BaselineFunction(sink);
      if (!g_spike) usleep(20 * 1000);
    }
  }
  return 0;
}
