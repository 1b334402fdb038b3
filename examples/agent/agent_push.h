// SPDX-License-Identifier: Apache-2.0
// File: agent_push.h
//
// The agent's continuous push settings, read from the environment into
// ProfilerOptions::push (the profiler then does the pushing, see
// flamekit/profiler_push.h):
//
//   FLAMEKIT_PUSH=http://127.0.0.1:4040[/prefix]   Pyroscope's base URL
//   FLAMEKIT_PUSH_EVERY=10s                       window length, 1s..1h
//   FLAMEKIT_APP=checkout                         default: the program's name
//   FLAMEKIT_LABELS=team=core,env=prod            added to host, pid, build_id
//
// Thread safety: reads the environment; call it where nothing else changes
// it (the agent's constructor). Not async-signal-safe.
//
// Example:
//
//   absl::Status st = flamekit::agent::PushFromEnvironment(&options.push);

#ifndef FLAMEKIT_EXAMPLES_AGENT_AGENT_PUSH_H_
#define FLAMEKIT_EXAMPLES_AGENT_AGENT_PUSH_H_

#include "absl/status/status.h"
#include "flamekit/profiler.h"

namespace flamekit {
namespace agent {

// PushFromEnvironment()
//
// Fills `push` from FLAMEKIT_PUSH* (leaves it empty when FLAMEKIT_PUSH is
// unset or empty). InvalidArgument naming the variable and what to give.
absl::Status PushFromEnvironment(ProfilerPushOptions* push);

}  // namespace agent
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_AGENT_AGENT_PUSH_H_
