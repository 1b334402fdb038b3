// SPDX-License-Identifier: Apache-2.0
// File: signal_handler.h
//
// Installs flamekit's handler for a signal (SIGPROF by default) so that
// samplers can share it with the application: the previous sigaction is
// kept, every signal the sampling callback does not claim as its own (a
// kill(2) from elsewhere, the application's own timer) is chained to it,
// and it is restored by RestoreSignalHandler().
//
// Thread and signal safety: InstallSignalHandler() and
// RestoreSignalHandler() are thread-compatible (call them from one control
// thread; they use sigaction(2), which is process-wide). The dispatcher
// that runs in signal context is async-signal-safe: it saves errno, calls
// the callback, and chains with no allocation and no lock.
//
// Behaviour kept for the application:
//   - SA_SIGINFO | SA_RESTART, so the application's system calls restart
//     (except those the kernel never restarts after a handler, signal(7):
//     poll, epoll_wait, nanosleep, ... return EINTR as with any handler).
//   - A chained signal whose previous disposition was SIG_IGN or SIG_DFL is
//     dropped: for SIGPROF/SIGVTALRM SIG_DFL would terminate the process,
//     which a stray sample signal must never do.
//   - When the previous disposition was SIG_DFL, RestoreSignalHandler()
//     keeps the dispatcher (with no callback) instead, because a sample
//     signal already in flight from a timer being disarmed would otherwise
//     kill the process. Otherwise the previous sigaction is put back exactly.
//
// Example:
//
//   bool OnSample(int signo, siginfo_t* info, void* ucontext) {
//     if (info->si_code <= 0) return false;  // not ours: chain
//     ...
//     return true;
//   }
//   FLAMEKIT_RETURN_IF_ERROR(flamekit::InstallSignalHandler(SIGPROF, OnSample));
//   ...
//   flamekit::RestoreSignalHandler(SIGPROF);

#ifndef FLAMEKIT_SAMPLE_SIGNAL_HANDLER_H_
#define FLAMEKIT_SAMPLE_SIGNAL_HANDLER_H_

#include <errno.h>
#include <signal.h>
#include <string.h>

#include <atomic>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/errno_saver.h"

namespace flamekit {

// Returns true when the signal was the sampler's (handled), false to chain
// it to the previous handler. Must be async-signal-safe.
using SignalCallback = bool (*)(int signo, siginfo_t* info, void* ucontext);

// InstallSignalHandler()
//
// Routes `signo` to `callback`, keeping the current sigaction for chaining.
// InvalidArgument for a signal that cannot be caught (SIGKILL, SIGSTOP) or
// out of range; FailedPrecondition when flamekit's handler is already
// installed on it with another callback (stop the other user first).
absl::Status InstallSignalHandler(int signo, SignalCallback callback);

// RestoreSignalHandler()
//
// Stops routing `signo` to the callback and restores the sigaction saved by
// InstallSignalHandler() (see the SIG_DFL note above). No-op when not
// installed.
void RestoreSignalHandler(int signo);

// IsSignalHandlerInstalled()
//
// Whether `signo` currently goes to a callback installed here.
bool IsSignalHandlerInstalled(int signo);

// ChainSignal()
//
// Passes a signal that is not the sampler's to the handler that was
// installed before ours. Async-signal-safe.
void ChainSignal(int signo, siginfo_t* info, void* ucontext);

// Counters for tests and the UI: signals chained to the previous handler,
// and those dropped because it was SIG_DFL/SIG_IGN. Async-signal-safe.
uint64_t ChainedSignalCount();
uint64_t DroppedForeignSignalCount();

// IsFlamekitSignalHandler()
//
// Whether `action` is the dispatcher InstallSignalHandler() installs (an
// LD_PRELOAD agent tells its own handler from the program's this way).
// Async-signal-safe.
bool IsFlamekitSignalHandler(const struct sigaction& action);

// ExchangeChainedAction()
//
// Where flamekit's dispatcher owns `signo`: stores the handler signals that
// are not samples are chained to in *old (if not null) and, if `action` is
// not null, makes it the new one, so a program that sets a disposition of
// that signal later sees and receives exactly what it would without us.
// False (nothing done) when the dispatcher is not installed on `signo`. A
// handler chaining on another thread at that very moment drops that one
// signal. Async-signal-safe.
bool ExchangeChainedAction(int signo, const struct sigaction* action, struct sigaction* old);

// IsSampleSignalUsable()
//
// Whether `signo` may carry samples: a valid signal other than SIGKILL,
// SIGSTOP and the fault signals (SIGSEGV, SIGBUS), whose handlers must stay
// the application's.
bool IsSampleSignalUsable(int signo);

// Implementation details follow.

namespace sample_internal {

inline constexpr int kMaxSignal = 65;

// Constant-initialized globals: safe to touch from signal context (no
// dynamic initialization guard).
inline std::atomic<SignalCallback> g_signal_callbacks[kMaxSignal] = {};
inline struct sigaction g_previous_actions[kMaxSignal] = {};
inline std::atomic<bool> g_previous_valid[kMaxSignal] = {};
inline std::atomic<bool> g_dispatcher_installed[kMaxSignal] = {};
inline std::atomic<uint64_t> g_chained_signals{0};
inline std::atomic<uint64_t> g_dropped_foreign_signals{0};

inline void Dispatch(int signo, siginfo_t* info, void* ucontext) {
  ErrnoSaver errno_saver;
  if (signo <= 0 || signo >= kMaxSignal) return;
  // Acquire: pairs with the release store in InstallSignalHandler(); the
  // callback's own state was set up before it was published.
  SignalCallback callback =
      g_signal_callbacks[signo].load(std::memory_order_acquire);
  if (callback != nullptr && callback(signo, info, ucontext)) return;
  ChainSignal(signo, info, ucontext);
}

}  // namespace sample_internal

inline bool IsFlamekitSignalHandler(const struct sigaction& action) {
  return (action.sa_flags & SA_SIGINFO) != 0 && action.sa_sigaction == &sample_internal::Dispatch;
}

inline bool ExchangeChainedAction(int signo, const struct sigaction* action,
                                  struct sigaction* old) {
  using namespace sample_internal;  // NOLINT: the arrays below
  if (signo <= 0 || signo >= kMaxSignal ||
      !g_dispatcher_installed[signo].load(std::memory_order_acquire)) {
    return false;
  }
  if (old != nullptr) *old = g_previous_actions[signo];
  if (action != nullptr) {
    // As InstallSignalHandler() writes it: invalid, write, valid (release:
    // a handler that sees valid sees the whole action).
    g_previous_valid[signo].store(false, std::memory_order_release);
    g_previous_actions[signo] = *action;
    g_previous_valid[signo].store(true, std::memory_order_release);
  }
  return true;
}

inline bool IsSampleSignalUsable(int signo) {
  return signo > 0 && signo < sample_internal::kMaxSignal && signo != SIGKILL &&
         signo != SIGSTOP && signo != SIGSEGV && signo != SIGBUS;
}

inline void ChainSignal(int signo, siginfo_t* info, void* ucontext) {
  using namespace sample_internal;  // NOLINT: internal names, one function
  if (signo <= 0 || signo >= kMaxSignal ||
      !g_previous_valid[signo].load(std::memory_order_acquire)) {
    g_dropped_foreign_signals.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const struct sigaction& previous = g_previous_actions[signo];
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) {
      g_chained_signals.fetch_add(1, std::memory_order_relaxed);
      previous.sa_sigaction(signo, info, ucontext);
      return;
    }
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN &&
             previous.sa_handler != nullptr) {
    g_chained_signals.fetch_add(1, std::memory_order_relaxed);
    previous.sa_handler(signo);
    return;
  }
  // Relaxed: statistics.
  g_dropped_foreign_signals.fetch_add(1, std::memory_order_relaxed);
}

inline absl::Status InstallSignalHandler(int signo, SignalCallback callback) {
  using namespace sample_internal;  // NOLINT
  if (signo <= 0 || signo >= kMaxSignal || signo == SIGKILL || signo == SIGSTOP) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal ", signo, " cannot carry samples; use SIGPROF (",
        SIGPROF, ") or a real-time signal"));
  }
  if (callback == nullptr) {
    return absl::InvalidArgumentError("InstallSignalHandler: null callback");
  }
  SignalCallback current = g_signal_callbacks[signo].load(std::memory_order_acquire);
  if (current != nullptr && current != callback) {
    return absl::FailedPreconditionError(absl::StrCat(
        "signal ", signo, " is already used by another flamekit sampler; stop it first"));
  }
  struct sigaction current_action;
  memset(&current_action, 0, sizeof(current_action));
  if (sigaction(signo, nullptr, &current_action) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("sigaction(", signo, ")"));
  }
  bool ours_installed = (current_action.sa_flags & SA_SIGINFO) &&
                        current_action.sa_sigaction == &Dispatch;
  if (ours_installed) {
    // The dispatcher stayed from an earlier run (the previous action was
    // SIG_DFL); it already chains to the saved action.
    g_signal_callbacks[signo].store(callback, std::memory_order_release);
    g_dispatcher_installed[signo].store(true, std::memory_order_release);
    return absl::OkStatus();
  }
  // Save the previous action before ours can chain to it. The release on the
  // valid flag publishes the struct to handlers (they acquire it). A
  // handler of ours still running from before (impossible: ours is not
  // installed) cannot observe the struct half-written.
  g_previous_valid[signo].store(false, std::memory_order_release);
  g_previous_actions[signo] = current_action;
  g_previous_valid[signo].store(true, std::memory_order_release);
  // Release: the callback's state is set up before the dispatcher uses it.
  g_signal_callbacks[signo].store(callback, std::memory_order_release);
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_sigaction = &Dispatch;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(signo, &action, nullptr) != 0) {
    int error = errno;
    g_signal_callbacks[signo].store(nullptr, std::memory_order_release);
    return absl::ErrnoToStatus(error, absl::StrCat("sigaction(", signo, ")"));
  }
  g_dispatcher_installed[signo].store(true, std::memory_order_release);
  return absl::OkStatus();
}

inline void RestoreSignalHandler(int signo) {
  using namespace sample_internal;  // NOLINT
  if (signo <= 0 || signo >= kMaxSignal) return;
  g_signal_callbacks[signo].store(nullptr, std::memory_order_release);
  if (!g_dispatcher_installed[signo].load(std::memory_order_acquire)) return;
  const struct sigaction& previous = g_previous_actions[signo];
  bool previous_is_default =
      !(previous.sa_flags & SA_SIGINFO) && previous.sa_handler == SIG_DFL;
  if (previous_is_default) return;  // keep the dispatcher: see the banner
  // Only put the old action back if ours is still the one installed: an
  // application that installed its own handler meanwhile keeps it.
  struct sigaction current_action;
  memset(&current_action, 0, sizeof(current_action));
  if (sigaction(signo, nullptr, &current_action) == 0 &&
      (current_action.sa_flags & SA_SIGINFO) &&
      current_action.sa_sigaction == &Dispatch) {
    sigaction(signo, &previous, nullptr);
  }
  g_dispatcher_installed[signo].store(false, std::memory_order_release);
  g_previous_valid[signo].store(false, std::memory_order_release);
}

inline bool IsSignalHandlerInstalled(int signo) {
  if (signo <= 0 || signo >= sample_internal::kMaxSignal) return false;
  return sample_internal::g_signal_callbacks[signo].load(std::memory_order_acquire) !=
         nullptr;
}

inline uint64_t ChainedSignalCount() {
  return sample_internal::g_chained_signals.load(std::memory_order_relaxed);
}

inline uint64_t DroppedForeignSignalCount() {
  return sample_internal::g_dropped_foreign_signals.load(std::memory_order_relaxed);
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_SIGNAL_HANDLER_H_
