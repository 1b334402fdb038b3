// SPDX-License-Identifier: Apache-2.0
// What a service's file that embeds the profiler compiles: the facade, a
// Start() and a Stop(). run_compile_time.sh times it beside abseil_only.cc.
#include "flamekit/profiler.h"

int main() {
  flamekit::ProfilerOptions options;
  absl::Status started = flamekit::Profiler::Global().Start(options);
  absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
  return started.ok() && profile.ok() ? 0 : 1;
}
