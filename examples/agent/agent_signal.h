// SPDX-License-Identifier: Apache-2.0
// File: agent_signal.h
//
// Keeping the agent's sample signal away from the program it is preloaded
// into. The program was not written for a profiler inside it: it may run
// its own SIGPROF profiler (signal(SIGPROF, h) + setitimer(ITIMER_PROF)),
// installed after the agent started. So:
//   - the engines that can (cpu and the other perf events, ctimer, wall)
//     sample on a real-time signal whose disposition is still SIG_DFL when
//     the program loads (ChooseSampleSignal(); FLAMEKIT_SIGNAL overrides).
//     Should the program use that signal later, the agent interposes
//     sigaction(), signal() and its variants: the program's disposition is
//     kept as the one flamekit's dispatcher chains to (it gets its own
//     kill()/sigqueue()/timer signals, never a sample) and is what
//     sigaction() reports to it;
//   - the itimer engine needs SIGPROF and ITIMER_PROF, of which a process
//     has one. With setitimer() interposed as well: when the program claims SIGPROF or ITIMER_PROF while
//     the agent samples with them, the agent disarms its timer, prints one
//     line and writes no profile (StepAside()); the program's call then
//     goes through unchanged.
//
// Thread and signal safety: the interposed functions are async-signal-safe
// as the libc ones are (atomics and write(2) only) once
// ResolveLibcSignalFunctions() ran; GuardSignal()/Unguard() are called by
// the agent's constructor and exit handler.

#ifndef FLAMEKIT_EXAMPLES_AGENT_AGENT_SIGNAL_H_
#define FLAMEKIT_EXAMPLES_AGENT_AGENT_SIGNAL_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flamekit {
namespace agent {

// ChooseSampleSignal()
//
// The signal samples of `event` travel on: SIGPROF for itimer (fails with
// FailedPrecondition when the program already owns SIGPROF: its
// disposition is not SIG_DFL); else `requested` (FLAMEKIT_SIGNAL: a number,
// SIGPROF, SIGRTMIN+N or SIGRTMAX-N) when not empty; else the highest
// real-time signal whose disposition is SIG_DFL and that this thread does
// not block.
absl::StatusOr<int> ChooseSampleSignal(absl::string_view event, absl::string_view requested);

// GuardSignal()
//
// From now on, a program call that installs a disposition for `signo`
// (other than flamekit's own dispatcher) makes the agent step aside; with
// `itimer`, so does a program call to setitimer(ITIMER_PROF).
void GuardSignal(int signo, bool itimer);

// SteppedAside()
//
// Whether the itimer engine gave SIGPROF up to the program. Async-signal-safe.
bool SteppedAside();

// Unguard()
//
// The agent's own Stop() follows: stop watching. Returns whether the agent
// stepped aside meanwhile (its profile is then not to be written).
bool Unguard();

}  // namespace agent
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_AGENT_AGENT_SIGNAL_H_
