// SPDX-License-Identifier: Apache-2.0
// spike_workload: a test target that idles until told to spike.
//
//   SIGUSR1  start burning CPU in HotSpikeFunction() (and, with
//            --alloc-mb N, allocate and touch N MiB once)
//   SIGUSR2  go back to idle
//   SIGTERM  exit 0
//
// Prints "ready <pid>\n" on stdout once the handlers are installed.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

namespace {

volatile sig_atomic_t g_spike = 0;
volatile sig_atomic_t g_stop = 0;

void OnSignal(int sig) {
  if (sig == SIGUSR1) g_spike = 1;
  if (sig == SIGUSR2) g_spike = 0;
  if (sig == SIGTERM) g_stop = 1;
}

__attribute__((noinline)) uint64_t HotSpikeFunction(uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 2000000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  long alloc_mb = 0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], "--alloc-mb") == 0) alloc_mb = strtol(argv[i + 1], nullptr, 10);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGUSR1, SIGUSR2, SIGTERM}) sigaction(sig, &sa, nullptr);
  printf("ready %d\n", static_cast<int>(getpid()));
  fflush(stdout);
  std::vector<char> ballast;
  volatile uint64_t sink = 1;
  while (!g_stop) {
    if (g_spike) {
      if (alloc_mb > 0 && ballast.empty()) {
        ballast.resize(static_cast<size_t>(alloc_mb) << 20);
        for (size_t j = 0; j < ballast.size(); j += 4096) ballast[j] = 1;
      }
      sink = HotSpikeFunction(sink);
    } else {
      usleep(20 * 1000);
    }
  }
  return 0;
}
