// SPDX-License-Identifier: Apache-2.0
// Test helper run as a separate process by the symbol tests. It prints
// "NAME 0xADDR" lines for its functions, then "ready", and blocks in
// FkHelperSpin until its stdin reaches EOF (the test closes the pipe or
// kills it). With an argument, it first dlopens that shared library and
// also prints the address of the library's FkDsoTarget.

#include <dlfcn.h>
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

int main(int argc, char** argv) {
  printf("FkHelperSpin %p\n", reinterpret_cast<void*>(&FkHelperSpin));
  printf("FkHelperStatic %p\n", reinterpret_cast<void*>(&FkHelperStatic));
#ifndef FK_HELPER_NO_DLOPEN  // the static build: no dlopen there
  if (argc > 1) {
    void* handle = dlopen(argv[1], RTLD_NOW);
    if (handle == nullptr) {
      printf("dlopen failed: %s\n", dlerror());
      return 1;
    }
    printf("FkDsoTarget %p\n", dlsym(handle, "FkDsoTarget"));
  }
#else
  (void)argc;
  (void)argv;
#endif
  printf("ready\n");
  fflush(stdout);
  FkHelperStatic(1);
  return FkHelperSpin(0);
}
