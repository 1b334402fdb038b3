// SPDX-License-Identifier: Apache-2.0
// Uses flamekit from another workspace, as a user's monorepo would: proves
// the public target, the include paths ("flamekit/...") and the dependency
// stand-ins work from outside. It profiles itself briefly, applies a
// transform list and renders a flame graph in memory.
#include <stdio.h>

#include <cmath>

#include "absl/time/clock.h"
#include "flamekit/profile/transform.h"
#include "flamekit/profiler.h"
#include "flamekit/render/write_profile.h"

namespace {

__attribute__((noinline)) double Spin(absl::Duration how_long) {
  double x = 0;
  absl::Time end = absl::Now() + how_long;
  while (absl::Now() < end) {
    for (int i = 0; i < 10000; ++i) x += std::sqrt(i + x);
  }
  return x;
}

}  // namespace

int main() {
  flamekit::ProfilerOptions options;
  options.event = "itimer";  // needs no perf events: works anywhere
  options.interval = absl::Milliseconds(4);
  absl::Status started = flamekit::Profiler::Global().Start(options);
  if (!started.ok()) {
    fprintf(stderr, "consumer: %s\n", started.ToString().c_str());
    return 1;
  }
  double x = Spin(absl::Milliseconds(500));
  absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
  if (!profile.ok()) {
    fprintf(stderr, "consumer: %s\n", profile.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<flamekit::TransformList> transforms =
      flamekit::TransformList::FromJson(R"([{"collapse_recursion": true}])");
  if (!transforms.ok()) {
    fprintf(stderr, "consumer: %s\n", transforms.status().ToString().c_str());
    return 1;
  }
  flamekit::Profile cleaned = flamekit::ApplyTransforms(*profile, *transforms);
  absl::StatusOr<std::string> html =
      flamekit::RenderProfile(cleaned, flamekit::OutputFormat::kHtml);
  if (!html.ok() || profile->total_samples() == 0) {
    fprintf(stderr, "consumer: no flame graph (%llu samples)\n",
            static_cast<unsigned long long>(profile->total_samples()));
    return 1;
  }
  printf("consumer built against flamekit: %llu samples, %zu bytes of HTML (%g)\n",
         static_cast<unsigned long long>(profile->total_samples()), html->size(), x);
  return 0;
}
