// SPDX-License-Identifier: Apache-2.0
// A shared library the symbol tests dlopen after building a Symbolizer.

extern "C" __attribute__((noinline, visibility("default"))) int FkDsoTarget(int x) {
  asm volatile("" ::: "memory");
  return x * 7 + 3;
}

namespace fk_test {
__attribute__((noinline, visibility("default"))) int DsoCxxTarget(int x) {
  asm volatile("" ::: "memory");
  return x * 5 + 2;
}
}  // namespace fk_test
