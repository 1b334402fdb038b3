// SPDX-License-Identifier: Apache-2.0
// A target for the attach tests: two threads spend their CPU in a function
// that gcc -O2 gives no frame (FramelessLeaf), each under its own caller.
// Prints "ready <pid>" on stdout once running, then runs for argv[1]
// seconds of CPU per thread (default 5).

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <thread>

#include "flamekit/profiler_test_leaf.h"

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? atof(argv[1]) : 5.0;
  printf("ready %d\n", static_cast<int>(getpid()));
  fflush(stdout);
  std::thread first([seconds] { flamekit::leaf_test::FirstCallerOfTheLeaf(seconds); });
  std::thread second([seconds] { flamekit::leaf_test::SecondCallerOfTheLeaf(seconds); });
  first.join();
  second.join();
  return 0;
}
