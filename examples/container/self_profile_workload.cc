// SPDX-License-Identifier: Apache-2.0
// self_profile_workload: the embedded profiler in a container. Profiles
// itself (event `cpu`, fallback on) while ContainerHotLoop() burns about
// SECONDS (default 2) of CPU, then prints what the engine was, why it fell
// back (engine_note), the sample count and the hottest leaf, e.g.
//   engine: ctimer
//   engine_note: perf_event_open ... refused ...; fell back to ctimer
//   samples: 412
//   hottest: ContainerHotLoop(unsigned long)
// Exit 0 with samples, 1 when Start() or Stop() failed or nothing was
// sampled. tools/checks/containers.sh runs its static build (-c opt
// --config=static) in a default-seccomp container, where perf_event_open
// is refused with EPERM and the timer engines must take over.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "flamekit/profiler.h"

__attribute__((noinline)) unsigned long ContainerHotLoop(unsigned long rounds) {
  volatile unsigned long sink = 0;
  for (unsigned long i = 0; i < rounds; ++i) sink = sink + i * 2654435761u;
  return sink;
}

static double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  if (!(seconds > 0 && seconds <= 60)) {
    std::fprintf(stderr, "self_profile_workload: SECONDS must be in (0, 60]\n");
    return 2;
  }
  flamekit::ProfilerOptions options;  // event cpu, fallback to ctimer/itimer
  absl::Status started = flamekit::Profiler::Global().Start(options);
  if (!started.ok()) {
    std::printf("start failed: %s\n", started.ToString().c_str());
    return 1;
  }
  const double until = CpuSeconds() + seconds;
  while (CpuSeconds() < until) ContainerHotLoop(1000000);
  absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
  if (!profile.ok()) {
    std::printf("stop failed: %s\n", profile.status().ToString().c_str());
    return 1;
  }
  absl::flat_hash_map<std::string, uint64_t> self;
  profile->ForEachStack([&](absl::Span<const flamekit::FrameId> frames, uint64_t count) {
    if (!frames.empty()) self[profile->frame(frames.back()).name] += count;
  });
  std::string hottest;
  uint64_t best = 0;
  for (const auto& [name, count] : self) {
    if (count > best) best = count, hottest = name;
  }
  std::printf("engine: %s\nengine_note: %s\nsamples: %llu\nhottest: %s\n",
              profile->metadata().engine.c_str(), profile->metadata().engine_note.c_str(),
              static_cast<unsigned long long>(profile->total_samples()), hottest.c_str());
  return profile->total_samples() > 0 ? 0 : 1;
}
