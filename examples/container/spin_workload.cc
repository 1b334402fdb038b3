// SPDX-License-Identifier: Apache-2.0
// spin_workload: the CPU-bound program that tools/checks/containers.sh puts
// in its test image (linked with -static, so the image needs nothing else).
// It burns CPU in ContainerHotLoop(), a function whose name the check then
// looks for in flame graphs taken from the host and from inside the
// container. `spin_workload [SECONDS]`: exits after SECONDS (default 600,
// a bound so a forgotten container cannot spin forever).
#include <time.h>

#include <cstdio>
#include <cstdlib>

// noinline + a volatile sink: the symbol stays in .symtab and every sample
// lands in it rather than in an inlined copy inside main().
__attribute__((noinline)) unsigned long ContainerHotLoop(unsigned long rounds) {
  volatile unsigned long sink = 0;
  for (unsigned long i = 0; i < rounds; ++i) sink = sink + i * 2654435761u;
  return sink;
}

int main(int argc, char** argv) {
  long seconds = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 600;
  if (seconds <= 0 || seconds > 3600) {
    std::fprintf(stderr, "spin_workload: SECONDS must be 1..3600\n");
    return 2;
  }
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    ContainerHotLoop(1000000);
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while (now.tv_sec - start.tv_sec < seconds);
  return 0;
}
