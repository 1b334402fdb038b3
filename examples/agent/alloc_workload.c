// SPDX-License-Identifier: Apache-2.0
// A program that allocates in known amounts, for the agent's alloc, live
// and lock tests (agent_alloc_test.sh) and the overhead benchmark:
//   alloc_workload split   3 sites, 60/30/10 of ~3.1 GB in 4 KiB blocks
//   alloc_workload leak    leaks 64 MiB from LeakSite, churns 1 GB
//   alloc_workload dlopen PATH   a dlopen()ed library allocates 400 MB
//   alloc_workload fork    allocates before and in a forked child
//   alloc_workload threads 4 threads started at load, before the agent's
//                          constructor ran, allocate 4 x 100 MB
//   alloc_workload lock    4 threads take one mutex (held 1 ms each time)
//   alloc_workload churn N N malloc/free pairs of 16..256 bytes (benchmark);
//                          prints the loop's CPU time: cpu_ns=...
//   alloc_workload mutex N 2 threads take one mutex N times each (benchmark);
//                          prints the loop's CPU time: cpu_ns=...
// Exits 0 when done; prints nothing (the tests read the profile).

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile uintptr_t g_sink;

// Each site keeps its own name in every build: noinline alone lets gcc -O2
// clone a static function called with a constant (LeakSite.constprop.0),
// and the tests look the sites up by name.
#if defined(__clang__)
#define SITE __attribute__((noinline))
#else
#define SITE __attribute__((noinline, noclone))
#endif

SITE static void SiteSixty(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void* p = malloc(4096);
    g_sink ^= (uintptr_t)p;
    free(p);
  }
}
SITE static void SiteThirty(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void* p = calloc(1, 4096);
    g_sink ^= (uintptr_t)p;
    free(p);
  }
}
SITE static void SiteTen(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void* p = NULL;
    if (posix_memalign(&p, 64, 4096) != 0) abort();
    g_sink ^= (uintptr_t)p;
    free(p);
  }
}

SITE static void LeakSite(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    void* p = malloc(4096);
    memset(p, 1, 64);
    g_sink ^= (uintptr_t)p;  // never freed
  }
}

static void Split(void) {
  for (int round = 0; round < 25; ++round) {
    SiteSixty(18000);
    SiteThirty(9000);
    SiteTen(3000);
  }
}

static void* EarlyThread(void* arg) {
  (void)arg;
  SiteSixty(25000);
  return NULL;
}

static pthread_t g_early[4];
static int g_early_started = 0;

// Runs before main() and, being in the executable, after the preloaded
// agent's constructor... unless asked to start before it: then the threads
// are made in a constructor of higher priority than any library's.
__attribute__((constructor(101))) static void StartEarlyThreads(void) {
  const char* mode = getenv("ALLOC_WORKLOAD_EARLY_THREADS");
  if (mode == NULL || strcmp(mode, "1") != 0) return;
  for (int i = 0; i < 4; ++i) pthread_create(&g_early[i], NULL, EarlyThread, NULL);
  g_early_started = 1;
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

SITE static void TakeTheLock(void) {
  pthread_mutex_lock(&g_mu);
  struct timespec ms = {0, 1000000};
  nanosleep(&ms, NULL);
  pthread_mutex_unlock(&g_mu);
}

static void* LockThread(void* arg) {
  (void)arg;
  for (int i = 0; i < 50; ++i) TakeTheLock();
  return NULL;
}

static long long ProcessCpuNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long g_mutex_rounds;
static long g_counter;

static void* MutexThread(void* arg) {
  (void)arg;
  for (long i = 0; i < g_mutex_rounds; ++i) {
    pthread_mutex_lock(&g_mu);
    ++g_counter;
    pthread_mutex_unlock(&g_mu);
  }
  return NULL;
}

// Each block is filled and read back, as a program uses what it
// allocates: ~15M pairs/s here, the "allocation-heavy program" of the
// overhead targets (a bare malloc/free loop runs ~150M/s).
SITE static void Churn(long n) {
  for (long i = 0; i < n; ++i) {
    const size_t size = 16 + (size_t)(i & 15) * 16;
    unsigned char* p = malloc(size);
    memset(p, (int)i, size);
    uintptr_t sum = 0;
    for (size_t j = 0; j < size; j += 8) sum += p[j];
    g_sink ^= (uintptr_t)p ^ sum;
    free(p);
  }
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "split";
  if (strcmp(mode, "split") == 0) {
    Split();
  } else if (strcmp(mode, "leak") == 0) {
    for (int round = 0; round < 16; ++round) {
      LeakSite(1024);     // 4 MiB kept
      SiteSixty(16384);   // 64 MiB churned
    }
  } else if (strcmp(mode, "dlopen") == 0 && argc > 2) {
    void* lib = dlopen(argv[2], RTLD_NOW);
    if (lib == NULL) {
      fprintf(stderr, "%s\n", dlerror());
      return 2;
    }
    void (*allocate)(size_t) = (void (*)(size_t))dlsym(lib, "DsoAllocate");
    if (allocate == NULL) return 2;
    allocate(100000);  // 400 MB
    // Not dlclose()d: the profile is named at exit, from the mappings then
    // (a closed library's frames would be "[unknown]"; see README).
  } else if (strcmp(mode, "fork") == 0) {
    SiteSixty(50000);
    pid_t child = fork();
    if (child < 0) return 2;
    if (child == 0) {
      SiteThirty(50000);
      exit(0);  // runs the inherited exit handlers: no second profile
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 3;
    SiteTen(50000);
  } else if (strcmp(mode, "threads") == 0) {
    if (!g_early_started) return 2;
    for (int i = 0; i < 4; ++i) pthread_join(g_early[i], NULL);
  } else if (strcmp(mode, "lock") == 0) {
    pthread_t t[4];
    for (int i = 0; i < 4; ++i) pthread_create(&t[i], NULL, LockThread, NULL);
    for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
  } else if (strcmp(mode, "churn") == 0 && argc > 2) {
    const long long start = ProcessCpuNs();
    Churn(atol(argv[2]));
    printf("cpu_ns=%lld\n", ProcessCpuNs() - start);
  } else if (strcmp(mode, "mutex") == 0 && argc > 2) {
    g_mutex_rounds = atol(argv[2]);
    const long long start = ProcessCpuNs();
    pthread_t t[2];
    for (int i = 0; i < 2; ++i) pthread_create(&t[i], NULL, MutexThread, NULL);
    for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
    printf("cpu_ns=%lld\n", ProcessCpuNs() - start);
    if (g_counter != 2 * g_mutex_rounds) return 4;
  } else {
    fprintf(stderr, "usage: alloc_workload split|leak|dlopen LIB|fork|threads|lock|churn N|mutex N\n");
    return 2;
  }
  return 0;
}
