// SPDX-License-Identifier: Apache-2.0
// File: embed_example.cc
//
// The smallest complete use of the embedded profiler: start it, do some
// work, stop it, write a flame graph. The README builds this file both with
// Bazel and with a plain g++ command line.
//
//   embed_example [OUTPUT.html] [EVENT]     (defaults: embed-flame.html, cpu)

#include <stdio.h>

#include <cmath>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/profiler.h"
#include "flamekit/render/write_profile.h"

namespace {

__attribute__((noinline)) double Integrate(int steps) {
  double sum = 0;
  for (int i = 0; i < steps; ++i) sum += std::sin(i * 1e-3) * std::cos(i * 2e-3);
  return sum;
}

__attribute__((noinline)) double DoWork(absl::Duration how_long) {
  double total = 0;
  absl::Time end = absl::Now() + how_long;
  while (absl::Now() < end) total += Integrate(100000);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  std::string output = argc > 1 ? argv[1] : "embed-flame.html";
  flamekit::ProfilerOptions options;
  options.event = argc > 2 ? argv[2] : "cpu";
  options.interval = absl::Milliseconds(1);

  absl::Status started = flamekit::Profiler::Global().Start(options);
  if (!started.ok()) {
    fprintf(stderr, "embed_example: %s\n", started.ToString().c_str());
    return 1;
  }
  double result = DoWork(absl::Seconds(2));
  absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
  if (!profile.ok()) {
    fprintf(stderr, "embed_example: %s\n", profile.status().ToString().c_str());
    return 1;
  }
  absl::Status written = flamekit::WriteProfile(*profile, output);
  if (!written.ok()) {
    fprintf(stderr, "embed_example: %s\n", written.ToString().c_str());
    return 1;
  }
  printf("embed_example: %llu samples (engine %s, result %.3f) -> %s\n",
         static_cast<unsigned long long>(profile->total_samples()),
         profile->metadata().engine.c_str(), result, output.c_str());
  return 0;
}
