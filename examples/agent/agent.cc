// SPDX-License-Identifier: Apache-2.0
// File: agent.cc
//
// libflamekit_agent.so: the embedded profiler for a program that was not
// built with it. Preloaded into any dynamically linked program, it starts
// profiling when the program loads and writes the profile when it exits:
//
//   export FLAMEKIT_EVENT=wall FLAMEKIT_INTERVAL=10ms FLAMEKIT_OUTPUT=/tmp/redis-%p.html
//   LD_PRELOAD=libflamekit_agent.so redis-server ...
//
// Settings (environment):
//   FLAMEKIT_EVENT     cpu (default), ctimer, itimer, wall, page-faults, ...
//   FLAMEKIT_INTERVAL  10ms (default), 1ms, or an event count
//   FLAMEKIT_UNWIND    dwarf (default): walk stacks by .eh_frame rules, as
//                      the programs an agent is preloaded into were mostly
//                      built without frame pointers (a distribution's are);
//                      fp: frame pointers only (no 30 ms, 2 MB rule table)
//   FLAMEKIT_OUTPUT    where to write, format by extension (.html, .svg,
//                      .collapsed, .pb.gz); %p becomes the process id.
//                      Default: flamekit-%p.html in the working directory.
//
// What it promises the host program: a bad setting or a failed start prints
// one line on stderr ("flamekit agent: ...") and the program runs unprofiled;
// nothing here ever exits or aborts it. The profile is written by an
// atexit() handler, so a program that ends by _exit() or a fatal signal
// leaves none. A child it fork()s is not profiled (the profiler's fork
// handling); a program it exec()s is, if LD_PRELOAD is still set, into its
// own %p file.
//
// Thread and signal safety: the constructor and the exit handler run on the
// loading/exiting thread, as the C runtime calls them; everything else is
// the profiler's (flamekit/profiler.h).

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "flamekit/profiler.h"
#include "flamekit/render/write_profile.h"
#include "flamekit/perf/perf_event.h"

namespace {

pid_t g_profiled_pid = 0;
std::string* g_output = nullptr;  // leaked on purpose: used at exit

std::string Setting(const char* name, const char* fallback) {
  const char* value = getenv(name);
  return value != nullptr && value[0] != '\0' ? value : fallback;
}

absl::StatusOr<flamekit::ProfilerOptions> OptionsFromEnvironment() {
  flamekit::ProfilerOptions options;
  options.event = Setting("FLAMEKIT_EVENT", "cpu");
  const std::string interval = Setting("FLAMEKIT_INTERVAL", "10ms");
  absl::StatusOr<flamekit::PerfPeriod> period = flamekit::ParsePerfInterval(interval);
  if (!period.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("FLAMEKIT_INTERVAL: ", period.status().message()));
  }
  options.unwind = Setting("FLAMEKIT_UNWIND", "dwarf");
  options.interval = period->interval;
  options.interval_events = period->count;
  options.title = absl::StrCat(program_invocation_short_name, " (pid ", getpid(), ")");
  return options;
}

void WriteAtExit() {
  // A forked child inherits this handler but not the capture.
  if (getpid() != g_profiled_pid || g_output == nullptr) return;
  absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
  if (!profile.ok()) {
    fprintf(stderr, "flamekit agent: %s\n", std::string(profile.status().message()).c_str());
    return;
  }
  absl::Status written = flamekit::WriteProfile(*profile, *g_output);
  if (!written.ok()) {
    fprintf(stderr, "flamekit agent: %s\n", std::string(written.message()).c_str());
    return;
  }
  fprintf(stderr, "flamekit agent: %llu samples (%s) -> %s\n",
          static_cast<unsigned long long>(profile->total_samples()),
          profile->metadata().engine.c_str(), g_output->c_str());
}

__attribute__((constructor)) void StartProfiling() {
  absl::StatusOr<flamekit::ProfilerOptions> options = OptionsFromEnvironment();
  if (!options.ok()) {
    fprintf(stderr, "flamekit agent: %s; not profiling\n",
            std::string(options.status().message()).c_str());
    return;
  }
  const std::string output = absl::StrReplaceAll(
      Setting("FLAMEKIT_OUTPUT", "flamekit-%p.html"), {{"%p", absl::StrCat(getpid())}});
  // Check the format before profiling a whole run for nothing.
  absl::StatusOr<flamekit::OutputFormat> format = flamekit::ResolveFormat(output, {});
  if (!format.ok()) {
    fprintf(stderr, "flamekit agent: FLAMEKIT_OUTPUT: %s; not profiling\n",
            std::string(format.status().message()).c_str());
    return;
  }
  absl::Status started = flamekit::Profiler::Global().Start(*options);
  if (!started.ok()) {
    fprintf(stderr, "flamekit agent: %s; not profiling\n", std::string(started.message()).c_str());
    return;
  }
  g_profiled_pid = getpid();
  g_output = new std::string(output);
  // Registered after Profiler::Global() registered its own exit handler, so
  // this one runs first, while the capture is still there to write.
  atexit(&WriteAtExit);
}

}  // namespace
