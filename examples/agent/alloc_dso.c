// SPDX-License-Identifier: Apache-2.0
// A library alloc_workload dlopen()s: its allocations must be seen too.
#include <stdint.h>
#include <stdlib.h>

static volatile uintptr_t g_sink;

__attribute__((visibility("default"), noinline)) void DsoAllocate(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void* p = malloc(4096);
    g_sink ^= (uintptr_t)p;
    free(p);
  }
}
