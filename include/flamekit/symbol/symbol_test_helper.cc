// SPDX-License-Identifier: Apache-2.0
// Test helper run as a separate process by the symbol tests: prints
// "FkHelperSpin 0xADDR\nFkHelperStatic 0xADDR\nready\n" and spins in
// FkHelperSpin until its stdin reaches EOF (the test closes the pipe or
// kills it).

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

extern "C" __attribute__((noinline)) int FkHelperSpin(int fd) {
  char c;
  // Blocks in read(); the address of this function is what tests look up.
  while (read(fd, &c, 1) > 0) {
  }
  return 0;
}

static __attribute__((noinline)) int FkHelperStatic(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 1;
}

int main() {
  printf("FkHelperSpin %p\n", reinterpret_cast<void*>(&FkHelperSpin));
  printf("FkHelperStatic %p\n", reinterpret_cast<void*>(&FkHelperStatic));
  printf("ready\n");
  fflush(stdout);
  FkHelperStatic(1);
  return FkHelperSpin(0);
}
