// SPDX-License-Identifier: Apache-2.0
// File: agent_preload.h
//
// The agent's entry in LD_PRELOAD: a program profiled by the agent should
// not pass it on to every program it runs (each would pay the profiler's
// start-up, ~0.25 s, and leave its own profile), so the agent takes itself
// out of the variable and leaves every other preload as it was.
//
// Thread safety: RemovePreloadEntries() is a pure function;
// RemoveSelfFromPreload() edits the environment and must run while no
// other thread reads the environment (the agent's constructor).

#ifndef FLAMEKIT_EXAMPLES_AGENT_AGENT_PRELOAD_H_
#define FLAMEKIT_EXAMPLES_AGENT_AGENT_PRELOAD_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace flamekit {
namespace agent {

// RemovePreloadEntries()
//
// `ld_preload` with every entry for which `is_self(entry)` holds removed.
// Entries are separated by spaces or colons (ld.so(8)); the others keep
// their order and are joined by the first separator the value used.
std::string RemovePreloadEntries(absl::string_view ld_preload,
                                 const std::function<bool(absl::string_view)>& is_self);

// RemoveSelfFromPreload()
//
// Takes the shared object holding this code out of the environment's
// LD_PRELOAD (removes the variable when nothing else is left), in the
// environment array itself, which is also main()'s envp. An entry is this
// object when it resolves to the same file, or when it is a bare name
// (found by ld.so's search) equal to this object's file name.
void RemoveSelfFromPreload();

}  // namespace agent
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_AGENT_AGENT_PRELOAD_H_
