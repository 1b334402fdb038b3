// SPDX-License-Identifier: Apache-2.0
// A statically linked program for CheckStaticBinary()'s test.
#include <cstdio>

int main() {
  std::puts("static hello");
  return 0;
}
