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
//   FLAMEKIT_EVENT     cpu (default), ctimer, itimer, wall, page-faults, ...,
//                      or alloc, live, lock: allocations (bytes), what is
//                      still allocated at exit (leaks), lock waits (time);
//                      the agent carries the hooks (hooks/interpose.cc)
//   FLAMEKIT_INTERVAL  10ms (default), 1ms, or an event count; for alloc
//                      and live the mean bytes between samples (512k
//                      default, 1 = every allocation); for lock the
//                      shortest wait recorded (10us default)
//   FLAMEKIT_UNWIND    dwarf (default): walk stacks by .eh_frame rules, as
//                      the programs an agent is preloaded into were mostly
//                      built without frame pointers (a distribution's are);
//                      fp: frame pointers only (no 30 ms, 2 MB rule table)
//   FLAMEKIT_OUTPUT    where to write, format by extension (.html, .svg,
//                      .collapsed, .pb.gz); %p becomes the process id.
//                      Default: flamekit-%p.html in the working directory.
//                      Checked at start: a directory that is missing or
//                      not writable is reported then, not after the run.
//   FLAMEKIT_SIGNAL    the signal samples travel on. Default: a real-time
//                      signal nobody has a handler for when the program
//                      loads, so a program with its own SIGPROF profiler
//                      keeps it; should the program take that signal
//                      later, it gets its own signals on it and never a
//                      sample (agent_signal.h). itimer needs SIGPROF and
//                      steps aside when the program takes it.
//   FLAMEKIT_PUSH      http://host:4040[/prefix]: send each window as pprof
//                      to Pyroscope's /ingest from the profiler's threads
//                      (FLAMEKIT_PUSH_EVERY=10s, FLAMEKIT_APP=name,
//                      FLAMEKIT_LABELS=k=v,...; agent_push.h). Then no file
//                      is written unless FLAMEKIT_OUTPUT is set too; exit
//                      waits at most ~1 s for the last window.
//   FLAMEKIT_FOLLOW_EXEC=1  keep the agent in LD_PRELOAD for the programs
//                      this one runs (each then writes its own %p file).
//                      Default: only the process the agent was loaded
//                      into is profiled; the agent takes itself out of
//                      LD_PRELOAD (other preloads stay).
//
// What it promises the host program: a bad setting or a failed start prints
// one line on stderr ("flamekit agent: ...") and the program runs unprofiled;
// nothing here ever exits or aborts it, nor changes which signals reach the
// program's own handlers. The profile is written by an atexit() handler, so
// a program that ends by a fatal signal leaves none, and one that ends by
// _exit() none either, with one line saying so. A child it fork()s is not
// profiled (the profiler's fork handling).
//
// Thread and signal safety: the constructor and the exit handler run on the
// loading/exiting thread, as the C runtime calls them; the interposed
// signal functions (agent_signal.h) are as safe as libc's; everything else
// is the profiler's (flamekit/profiler.h).

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "examples/agent/agent_preload.h"
#include "examples/agent/agent_push.h"
#include "examples/agent/agent_signal.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/base/human_units.h"
#include "flamekit/profiler.h"
#include "flamekit/render/write_profile.h"
#include "flamekit/perf/perf_event.h"

namespace {

pid_t g_profiled_pid = 0;
std::string* g_output = nullptr;  // leaked on purpose: used at exit; null: push only
bool g_pushing = false;
// The line _exit() prints, formatted at start (it may run in a signal
// handler: write(2) only).
char g_exit_line[512] = "";

std::string Setting(const char* name, const char* fallback) {
  const char* value = getenv(name);
  return value != nullptr && value[0] != '\0' ? value : fallback;
}

absl::StatusOr<flamekit::ProfilerOptions> OptionsFromEnvironment() {
  flamekit::ProfilerOptions options;
  options.event = Setting("FLAMEKIT_EVENT", "cpu");
  options.title = absl::StrCat(program_invocation_short_name, " (pid ", getpid(), ")");
  absl::Status push = flamekit::agent::PushFromEnvironment(&options.push);
  if (!push.ok()) return push;
  if (options.event == "alloc" || options.event == "live") {
    absl::StatusOr<int64_t> bytes =
        flamekit::ParseHumanSize(Setting("FLAMEKIT_INTERVAL", "512k"));
    if (!bytes.ok() || *bytes < 1) {
      return absl::InvalidArgumentError(
          "FLAMEKIT_INTERVAL: for alloc and live give the mean bytes between samples, "
          "e.g. 512k (1 = every allocation)");
    }
    options.alloc_interval_bytes = static_cast<uint64_t>(*bytes);
    return options;
  }
  if (options.event == "lock") {
    absl::StatusOr<absl::Duration> threshold =
        flamekit::ParseHumanDuration(Setting("FLAMEKIT_INTERVAL", "10us"));
    if (!threshold.ok() || *threshold < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "FLAMEKIT_INTERVAL: for lock give the shortest wait recorded, e.g. 10us");
    }
    options.lock_threshold = *threshold;
    return options;
  }
  const std::string interval = Setting("FLAMEKIT_INTERVAL", "10ms");
  absl::StatusOr<flamekit::PerfPeriod> period = flamekit::ParsePerfInterval(interval);
  if (!period.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("FLAMEKIT_INTERVAL: ", period.status().message()));
  }
  options.unwind = Setting("FLAMEKIT_UNWIND", "dwarf");
  options.interval = period->interval;
  options.interval_events = period->count;
  absl::StatusOr<int> signo =
      flamekit::agent::ChooseSampleSignal(options.event, Setting("FLAMEKIT_SIGNAL", ""));
  if (!signo.ok()) return signo.status();
  options.signal = *signo;
  return options;
}

// The output's directory exists and takes a file: a temporary file is
// created there and removed, as the final write will do.
absl::Status CheckOutput(const std::string& output) {
  absl::StatusOr<flamekit::OutputFormat> format = flamekit::ResolveFormat(output, {});
  if (!format.ok()) return format.status();
  absl::StatusOr<flamekit::AtomicFileWriter> probe = flamekit::AtomicFileWriter::Open(output);
  return probe.status();
}

// The profiler's collector thread makes a single-threaded program
// multi-threaded, and glibc (2.34+) then takes the atomic paths of
// pthread_mutex_lock/unlock and malloc instead of its single-thread ones:
// a real cost of being profiled, which the profile shows as such.
constexpr char kSingleThreadNote[] =
    "a single-threaded program: the profiler's collector thread turns off glibc's "
    "single-thread fast paths, so mutex lock/unlock and malloc cost more here than "
    "unprofiled";

void WriteAtExit() {
  // A forked child inherits this handler but not the capture.
  if (getpid() != g_profiled_pid || (g_output == nullptr && !g_pushing)) return;
  const bool stepped_aside = flamekit::agent::Unguard();
  // Sends the last window first (bounded: push.stop_wait).
  absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();
  if (profile.ok() && g_pushing) {
    const std::string& note = profile->metadata().engine_note;
    if (size_t at = note.find("push to "); at != std::string::npos) {
      fprintf(stderr, "flamekit agent: %s\n", note.substr(at, note.find("; ", at) - at).c_str());
    }
  }
  if (g_output == nullptr) return;
  // Stepping aside printed its line; the capture is cut short, not written.
  if (stepped_aside) return;
  if (!profile.ok()) {
    fprintf(stderr, "flamekit agent: %s\n", std::string(profile.status().message()).c_str());
    return;
  }
  if (profile->metadata().threads <= 1) {
    // Measured on sqlite3 (glibc 2.36): pthread_mutex_lock+unlock self time
    // 0.9-1.2 % under perf alone, 3.5-5.3 % under perf with any preloaded
    // library that starts one idle thread, as with the agent.
    profile->metadata().engine_note = absl::StrCat(
        profile->metadata().engine_note, profile->metadata().engine_note.empty() ? "" : "; ",
        kSingleThreadNote);
  }
  absl::Status written = flamekit::WriteProfile(*profile, *g_output);
  if (!written.ok()) {
    fprintf(stderr, "flamekit agent: %s\n", std::string(written.message()).c_str());
    return;
  }
  const std::string& event = profile->metadata().event;
  // A replacement allocator preloaded before the agent hides malloc().
  const std::string& note = profile->metadata().engine_note;
  if (size_t at = note.find("malloc() is served by"); at != std::string::npos) {
    fprintf(stderr, "flamekit agent: %s\n", note.substr(at, note.find(';', at) - at).c_str());
  }
  const char* unit = event == "alloc" || event == "live" ? "bytes"
                     : event == "lock"                   ? "ns waited"
                                                         : "samples";
  fprintf(stderr, "flamekit agent: %llu %s (%s) -> %s\n",
          static_cast<unsigned long long>(profile->total_samples()), unit,
          profile->metadata().engine.c_str(), g_output->c_str());
}

__attribute__((constructor)) void StartProfiling() {
  // First, whatever happens next: the programs this one runs do not load
  // the agent again (each would start a profiler and leave a file).
  if (Setting("FLAMEKIT_FOLLOW_EXEC", "0") != "1") flamekit::agent::RemoveSelfFromPreload();
  absl::StatusOr<flamekit::ProfilerOptions> options = OptionsFromEnvironment();
  if (!options.ok()) {
    fprintf(stderr, "flamekit agent: %s; not profiling\n",
            std::string(options.status().message()).c_str());
    return;
  }
  g_pushing = !options->push.url.empty();
  // Pushing: a file only when asked for (a service pushing for weeks would
  // otherwise leave one per process).
  const std::string output = absl::StrReplaceAll(
      Setting("FLAMEKIT_OUTPUT", g_pushing ? "" : "flamekit-%p.html"),
      {{"%p", absl::StrCat(getpid())}});
  // Check where the profile goes before profiling a whole run for nothing.
  absl::Status writable = output.empty() ? absl::OkStatus() : CheckOutput(output);
  if (!writable.ok()) {
    fprintf(stderr, "flamekit agent: FLAMEKIT_OUTPUT: %s; not profiling\n",
            std::string(writable.message()).c_str());
    return;
  }
  // Made before Start(): under FLAMEKIT_EVENT=alloc the agent's own
  // allocations would otherwise be the profile's first samples. The exit
  // handler is registered after Profiler::Global() registered its own, so
  // this one runs first, while the capture is still there to write.
  if (!output.empty()) g_output = new std::string(output);
  flamekit::Profiler::Global();
  atexit(&WriteAtExit);
  absl::Status started = flamekit::Profiler::Global().Start(*options);
  if (!started.ok()) {
    fprintf(stderr, "flamekit agent: %s; not profiling\n", std::string(started.message()).c_str());
    return;
  }
  // The hook events take no signal; the others: the cpu engine falls back
  // to itimer where perf events and CPU timers are refused, and then
  // SIGPROF is what the program must not take.
  const std::string engine = flamekit::Profiler::Global().Status().engine;
  if (engine != "hooks") {
    const bool itimer = engine == "itimer";
    flamekit::agent::GuardSignal(itimer ? SIGPROF : options->signal, itimer);
  }
  g_profiled_pid = getpid();
  snprintf(g_exit_line, sizeof(g_exit_line),
           "flamekit agent: the program ended by _exit(), which runs no exit handler; "
           "no profile written to %s\n",
           output.empty() ? "a file (and the last push window not sent)" : output.c_str());
}

}  // namespace

// _exit() and _Exit() skip atexit(): dash and many forking servers end that
// way. Writing the profile there is not safe (they are often called from
// signal handlers, where the profiler's locks and malloc may be held), so
// the agent only says why there is no profile, instead of leaving none in
// silence. (exit() reaches libc's _exit internally, not through here.)
extern "C" {

__attribute__((visibility("default"), noreturn)) void _exit(int status) {
  if (g_profiled_pid != 0 && getpid() == g_profiled_pid &&
      !flamekit::agent::SteppedAside() && g_exit_line[0] != '\0') {
    ssize_t ignored = write(STDERR_FILENO, g_exit_line, strlen(g_exit_line));
    (void)ignored;
  }
  // What libc's _exit() does.
  for (;;) syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status) { _exit(status); }

}  // extern "C"
