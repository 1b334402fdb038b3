// SPDX-License-Identifier: Apache-2.0
// File: agent_signal.cc

#include "examples/agent/agent_signal.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "flamekit/sample/signal_handler.h"

namespace flamekit {
namespace agent {
namespace {

using SigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
using SignalFn = sighandler_t (*)(int, sighandler_t);
using SetitimerFn = int (*)(int, const struct itimerval*, struct itimerval*);

// libc's functions, found once (dlsym is not async-signal-safe: a program
// whose first sigaction() runs in a signal handler before the agent's
// constructor is not a case worth a lock).
std::atomic<SigactionFn> g_sigaction{nullptr};
std::atomic<SignalFn> g_signal{nullptr};
std::atomic<SignalFn> g_bsd_signal{nullptr};
std::atomic<SignalFn> g_sysv_signal{nullptr};
std::atomic<SignalFn> g_sigset{nullptr};
std::atomic<SetitimerFn> g_setitimer{nullptr};

template <typename Fn>
Fn Next(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    slot.store(fn, std::memory_order_release);
  }
  return fn;
}

// The signal the agent samples on while it watches (0: not watching), and
// whether it holds ITIMER_PROF.
std::atomic<int> g_guarded_signal{0};
// The profiled process: a forked child inherits these flags, not the capture.
std::atomic<pid_t> g_guarded_pid{0};
std::atomic<bool> g_guarded_itimer{false};
std::atomic<bool> g_stepped_aside{false};

void WriteLine(const char* line) {
  // write(2): the program's call may come from a signal handler.
  ssize_t ignored = write(STDERR_FILENO, line, strlen(line));
  (void)ignored;
}

// The program takes SIGPROF / ITIMER_PROF from the itimer engine: disarm
// the agent's timer (the program's own call comes next) and say so once.
void StepAside() {
  if (g_stepped_aside.exchange(true)) return;
  struct itimerval off;
  memset(&off, 0, sizeof(off));
  if (SetitimerFn real = Next(g_setitimer, "setitimer")) real(ITIMER_PROF, &off, nullptr);
  WriteLine(
      "flamekit agent: the program uses SIGPROF/ITIMER_PROF itself; the itimer engine "
      "steps aside and writes no profile (FLAMEKIT_EVENT=cpu, ctimer or wall sample on "
      "another signal)\n");
}

bool IsFlamekitDispatcher(const struct sigaction* act) {
  return flamekit::IsFlamekitSignalHandler(*act);
}

// Called before the program's call that sets a disposition of `signo`:
// with itimer, SIGPROF is the program's from now on.
void OnProgramDisposition(int signo) {
  if (signo == 0 || signo != g_guarded_signal.load(std::memory_order_acquire) ||
      getpid() != g_guarded_pid.load(std::memory_order_acquire)) {
    return;
  }
  if (g_guarded_itimer.load(std::memory_order_acquire)) StepAside();
}

// The program's own use of the real-time signal the agent samples on
// (chosen because nobody had it at load; a program may still pick it
// later): its disposition is kept where flamekit's dispatcher chains the
// signals that are not samples (a kill(), a sigqueue() of its own, its own
// timer), and reported back to it, so it sees and receives exactly what it
// would without the agent while the samples still reach the profiler.
// Returns false when the call is not about that signal (libc answers it).
//
// (flamekit::ExchangeChainedAction() keeps the action the dispatcher
// chains to.)
bool EmulateDisposition(int signo, const struct sigaction* act, struct sigaction* old) {
  if (signo != g_guarded_signal.load(std::memory_order_acquire) ||
      g_guarded_itimer.load(std::memory_order_acquire) ||
      getpid() != g_guarded_pid.load(std::memory_order_acquire)) {
    return false;
  }
  return flamekit::ExchangeChainedAction(signo, act, old);
}

// signal() and its variants, as glibc builds their sigaction.
sighandler_t CallSignalVariant(std::atomic<SignalFn>& slot, const char* name, int signo,
                               sighandler_t handler, int flags, bool mask_self) {
  if (handler != SIG_ERR) {
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = handler;
    act.sa_flags = flags;
    sigemptyset(&act.sa_mask);
    if (mask_self) sigaddset(&act.sa_mask, signo);
    struct sigaction old;
    memset(&old, 0, sizeof(old));
    if (EmulateDisposition(signo, &act, &old)) return old.sa_handler;
  }
  SignalFn real = Next(slot, name);
  if (real == nullptr) {
    errno = ENOSYS;
    return SIG_ERR;
  }
  OnProgramDisposition(signo);
  return real(signo, handler);
}

__attribute__((constructor(101))) void ResolveLibcSignalFunctions() {
  Next(g_sigaction, "sigaction");
  Next(g_signal, "signal");
  Next(g_bsd_signal, "bsd_signal");
  Next(g_sysv_signal, "sysv_signal");
  Next(g_sigset, "sigset");
  Next(g_setitimer, "setitimer");
}

absl::StatusOr<int> ParseSignal(absl::string_view text) {
  absl::string_view rest = text;
  absl::ConsumePrefix(&rest, "SIG");
  int value = 0;
  if (rest == "PROF") return SIGPROF;
  if (absl::SimpleAtoi(rest, &value)) {
  } else if (absl::ConsumePrefix(&rest, "RTMIN") &&
             (rest.empty() || (absl::ConsumePrefix(&rest, "+") && absl::SimpleAtoi(rest, &value)))) {
    value += SIGRTMIN;
  } else if (absl::ConsumePrefix(&rest, "RTMAX") &&
             (rest.empty() || (absl::ConsumePrefix(&rest, "-") && absl::SimpleAtoi(rest, &value)))) {
    value = SIGRTMAX - value;
  } else {
    value = 0;
  }
  if (value <= 0 || value > SIGRTMAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FLAMEKIT_SIGNAL: '", text, "' is not a signal; use SIGPROF, a number, SIGRTMIN+N or ",
        "SIGRTMAX-N"));
  }
  return value;
}

bool IsDefault(int signo) {
  struct sigaction current;
  memset(&current, 0, sizeof(current));
  SigactionFn real = Next(g_sigaction, "sigaction");
  if (real == nullptr || real(signo, nullptr, &current) != 0) return false;
  return (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL;
}

}  // namespace

absl::StatusOr<int> ChooseSampleSignal(absl::string_view event, absl::string_view requested) {
  if (event == "itimer") {
    if (!IsDefault(SIGPROF)) {
      return absl::FailedPreconditionError(
          "the program already has a SIGPROF disposition and the itimer engine needs "
          "SIGPROF; use FLAMEKIT_EVENT=cpu, ctimer or wall");
    }
    return SIGPROF;
  }
  if (!requested.empty()) return ParseSignal(requested);
  sigset_t blocked;
  sigemptyset(&blocked);
  pthread_sigmask(SIG_BLOCK, nullptr, &blocked);
  for (int signo = SIGRTMAX; signo >= SIGRTMIN; --signo) {
    if (IsDefault(signo) && sigismember(&blocked, signo) == 0) return signo;
  }
  return absl::FailedPreconditionError(
      "every real-time signal is taken or blocked; set FLAMEKIT_SIGNAL to one the program "
      "does not use");
}

void GuardSignal(int signo, bool itimer) {
  g_stepped_aside.store(false);
  g_guarded_pid.store(getpid(), std::memory_order_release);
  g_guarded_itimer.store(itimer, std::memory_order_release);
  g_guarded_signal.store(signo, std::memory_order_release);
}

bool SteppedAside() { return g_stepped_aside.load(); }

bool Unguard() {
  g_guarded_signal.store(0, std::memory_order_release);
  g_guarded_itimer.store(false, std::memory_order_release);
  return g_stepped_aside.load();
}

}  // namespace agent
}  // namespace flamekit

// The interposed libc functions. They are the program's (and the
// profiler's: its own calls install flamekit's dispatcher, which never
// counts as the program's) and behave as libc's do.
extern "C" {

__attribute__((visibility("default"))) int sigaction(int signo, const struct sigaction* act,
                                                     struct sigaction* old) __THROW {
  using namespace flamekit::agent;  // NOLINT: the internal names of this file
  SigactionFn real = Next(g_sigaction, "sigaction");
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  if (act == nullptr || !IsFlamekitDispatcher(act)) {
    if (EmulateDisposition(signo, act, old)) return 0;
    if (act != nullptr) OnProgramDisposition(signo);
  }
  return real(signo, act, old);
}

__attribute__((visibility("default"))) sighandler_t signal(int signo,
                                                           sighandler_t handler) __THROW {
  using namespace flamekit::agent;  // NOLINT
  return CallSignalVariant(g_signal, "signal", signo, handler, SA_RESTART, true);
}

__attribute__((visibility("default"))) sighandler_t bsd_signal(int signo,
                                                               sighandler_t handler) __THROW {
  using namespace flamekit::agent;  // NOLINT
  return CallSignalVariant(g_bsd_signal, "bsd_signal", signo, handler, SA_RESTART, true);
}

__attribute__((visibility("default"))) sighandler_t sysv_signal(int signo,
                                                                sighandler_t handler) __THROW {
  using namespace flamekit::agent;  // NOLINT
  return CallSignalVariant(g_sysv_signal, "sysv_signal", signo, handler,
                           SA_RESETHAND | SA_NODEFER, false);
}

__attribute__((visibility("default"))) sighandler_t sigset(int signo,
                                                           sighandler_t handler) __THROW {
  using namespace flamekit::agent;  // NOLINT
  // sigset(sig, SIG_HOLD) only blocks the signal (libc does that).
  if (handler != SIG_HOLD) {
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = handler;
    sigemptyset(&act.sa_mask);
    struct sigaction old;
    memset(&old, 0, sizeof(old));
    if (EmulateDisposition(signo, &act, &old)) {
      sigset_t unblock;
      sigemptyset(&unblock);
      sigaddset(&unblock, signo);
      pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
      return old.sa_handler;
    }
    OnProgramDisposition(signo);
  }
  SignalFn real = Next(g_sigset, "sigset");
  if (real == nullptr) {
    errno = ENOSYS;
    return SIG_ERR;
  }
  return real(signo, handler);
}

__attribute__((visibility("default"))) int setitimer(__itimer_which_t which,
                                                     const struct itimerval* value,
                                                     struct itimerval* old) __THROW {
  using namespace flamekit::agent;  // NOLINT
  if (which == ITIMER_PROF && value != nullptr &&
      g_guarded_itimer.load(std::memory_order_acquire) &&
      getpid() == g_guarded_pid.load(std::memory_order_acquire)) {
    StepAside();
  }
  SetitimerFn real = Next(g_setitimer, "setitimer");
  if (real == nullptr) {
    errno = ENOSYS;
    return -1;
  }
  return real(which, value, old);
}

}  // extern "C"
