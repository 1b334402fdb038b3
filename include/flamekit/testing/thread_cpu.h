// SPDX-License-Identifier: Apache-2.0
// File: thread_cpu.h
//
// ThreadCpuSeconds(): the calling thread's CPU time, for tests and test
// workloads that spin for an amount of CPU rather than of wall time (on a
// busy 2-core machine wall time says little about the samples a thread can
// get). Thread-safe; not for signal handlers (not a concern: tests only).

#ifndef FLAMEKIT_TESTING_THREAD_CPU_H_
#define FLAMEKIT_TESTING_THREAD_CPU_H_

#include <time.h>

namespace flamekit {
namespace testing {

inline double ThreadCpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

}  // namespace testing
}  // namespace flamekit

#endif  // FLAMEKIT_TESTING_THREAD_CPU_H_
