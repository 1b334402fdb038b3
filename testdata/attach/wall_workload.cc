// SPDX-License-Identifier: Apache-2.0
// wall_workload: a target for `record -e wall PID` with a known wall-clock
// split. Prints "ready <pid>" on stdout once every thread runs.
//
//   wall_workload SECONDS THREADS
//
// Every thread (the main one included, so no thread just waits in join)
// repeats a ~20 ms cycle: ComputePhase spins for 4 ms of wall time (20 %),
// SleepPhase sleeps ~10 ms in nanosleep (50 %), ReadPhase blocks ~6 ms in
// read() on a pipe (30 %) that a helper *process* (not a thread: it is not
// profiled) writes to after that long. On a loaded machine the phases
// overrun (a preempted spin ends late, a woken thread waits for a CPU), so
// each thread measures its phases' wall time and sizes the next sleep and
// read to bring its running totals back to 20 / 50 / 30: any window of a
// few hundred ms then has that split. Exits after SECONDS (0 = until
// SIGTERM).
//
// Built with -O0 so the phases keep their frames (exact stacks).

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <thread>
#include <vector>

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

constexpr int64_t kComputeNs = 4000000;
// Longest sleep or read one cycle may ask for (catching up after a stall).
constexpr int64_t kMaxPhaseNs = 40000000;

struct Waker {
  int request = -1;   // worker writes a byte: "wake me in 6 ms"
  int response = -1;  // worker blocks in read() on this
};

// A helper process per worker: read a request (microseconds to wait),
// wait, answer. Exits when the workload dies (the pipe closes, or
// PDEATHSIG).
Waker StartWaker() {
  int req[2], resp[2];
  if (pipe(req) != 0 || pipe(resp) != 0) {
    perror("pipe");
    exit(1);
  }
  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    exit(1);
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(req[1]);
    close(resp[0]);
    uint32_t us;
    while (read(req[0], &us, sizeof(us)) == static_cast<ssize_t>(sizeof(us))) {
      if (us > 0) usleep(us);
      char c = 'x';
      if (write(resp[1], &c, 1) != 1) break;
    }
    _exit(0);
  }
  close(req[0]);
  close(resp[1]);
  return Waker{req[1], resp[0]};
}

volatile uint64_t g_sink = 0;

__attribute__((noinline)) void ComputePhase() {
  const int64_t end = NowNs() + kComputeNs;
  uint64_t x = g_sink;
  while (NowNs() < end) {
    for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
  }
  g_sink = x;
}

__attribute__((noinline)) void SleepPhase(int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  nanosleep(&ts, nullptr);
}

__attribute__((noinline)) void ReadPhase(const Waker& w, int64_t ns) {
  uint32_t us = static_cast<uint32_t>(ns / 1000);
  if (write(w.request, &us, sizeof(us)) != static_cast<ssize_t>(sizeof(us))) exit(1);
  char c;
  if (read(w.response, &c, 1) != 1) exit(1);
}

int64_t Clamp(int64_t ns) { return ns < 0 ? 0 : ns > kMaxPhaseNs ? kMaxPhaseNs : ns; }

__attribute__((noinline)) void WorkerLoop(Waker w, int64_t end) {
  // Wall time each phase really took, so far.
  int64_t compute = 0, sleep = 0, read = 0;
  while (end == 0 || NowNs() < end) {
    int64_t t0 = NowNs();
    ComputePhase();
    int64_t t1 = NowNs();
    compute += t1 - t0;
    // The cycle's total if compute is to be 20 %: sleep fills 50 %, read 30 %.
    const int64_t total = compute * 5;
    SleepPhase(Clamp(total / 2 - sleep));
    int64_t t2 = NowNs();
    sleep += t2 - t1;
    ReadPhase(w, Clamp(total * 3 / 10 - read));
    read += NowNs() - t2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: wall_workload SECONDS THREADS\n");
    return 2;
  }
  const double seconds = atof(argv[1]);
  const int threads = atoi(argv[2]);
  if (seconds < 0 || threads < 1 || threads > 64) {
    fprintf(stderr, "wall_workload: SECONDS >= 0 and THREADS in 1..64\n");
    return 2;
  }
  const int64_t end = seconds == 0 ? 0 : NowNs() + static_cast<int64_t>(seconds * 1e9);
  std::vector<Waker> wakers;
  for (int i = 0; i < threads; ++i) wakers.push_back(StartWaker());
  std::vector<std::thread> others;
  for (int i = 1; i < threads; ++i) others.emplace_back(WorkerLoop, wakers[i], end);
  printf("ready %d\n", static_cast<int>(getpid()));
  fflush(stdout);
  WorkerLoop(wakers[0], end);
  for (std::thread& t : others) t.join();
  return 0;
}
