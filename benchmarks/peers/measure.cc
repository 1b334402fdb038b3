// SPDX-License-Identifier: Apache-2.0
// File: measure.cc
//
// Runs a command and prints the CPU time of it and all its descendants
// (RUSAGE_CHILDREN after waiting) as one JSON line on stderr, so the
// benchmark runner can tell a profiler's own CPU (perf, flamekit record)
// from the CPU of the workload it profiles. Exits with the command's status.
//
//   measure perf record -F 999 -g -o /tmp/x.data -- fixed_work
//   {"children_cpu_seconds":2.71}

#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 1;
  }
  if (child == 0) {
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
  }
  rusage usage;
  getrusage(RUSAGE_CHILDREN, &usage);
  double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 +
               usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
  fprintf(stderr, "{\"children_cpu_seconds\":%.6f}\n", cpu);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
