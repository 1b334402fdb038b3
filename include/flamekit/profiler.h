// SPDX-License-Identifier: Apache-2.0
// File: profiler.h
//
// The embedded profiler: a service includes this header, calls Start(), and
// gets a Profile of itself from Stop() (or a snapshot from Dump()) at an
// overhead nobody notices. Samples come from signals delivered to the
// service's own threads (engines: perf `cpu` and counters, `ctimer`,
// `itimer`, `wall`; see sample/), are unwound by frame pointers in the
// handler and pushed to a lock-free StackRing; a collector thread drains the
// ring, folds stacks by address, arms threads created after Start() and
// symbolizes each unique address once.
//
// Thread and signal safety: every Profiler method may be called from any
// ordinary thread (they serialize on an internal mutex); none may be called
// from a signal handler. Only one Profiler may sample at a time in a
// process (the signal handler is process-wide); Profiler::Global() is the
// one to use. fork() while profiling leaves the child healthy and not
// profiling (its IsRunning() is false, Start() works there); a fork() that
// races a Start()/Stop()/Status() or a symbolization pass on another
// thread waits for it to finish (a pthread_atfork handler takes the
// profiler's locks), so the child never inherits one of them held.
//
// This header declares; the implementation is compiled once per binary
// (flamekit/profiler_impl.h, and Profile's in profile/profile_impl.h).
// Bazel: depend on //include/flamekit:profiler (or @flamekit//:flamekit),
// which compiles them. Other builds: in exactly one translation unit,
// `#define FLAMEKIT_IMPLEMENTATION` before including this header. Including
// this header costs about what Abseil's Status and Time headers cost.
//
// The returned profile is untransformed: transforms (RE2) are applied by the
// caller (profile/transform.h, the UI), which keeps RE2, mustache, httplib
// and JSON out of this header. options.transforms_json is only recorded in
// the profile's metadata for the caller to apply.
//
// Example:
//
//   #include "flamekit/profiler.h"
//   flamekit::ProfilerOptions options;          // event "cpu", interval 10ms
//   options.interval = absl::Milliseconds(1);
//   absl::Status started = flamekit::Profiler::Global().Start(options);
//   ...
//   absl::StatusOr<flamekit::Profile> profile = flamekit::Profiler::Global().Stop();

#ifndef FLAMEKIT_PROFILER_H_
#define FLAMEKIT_PROFILER_H_

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "flamekit/base/config.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

class Symbolizer;

// ProfilerPushOptions
//
// Continuous profiling from inside the process: with a `url`, every
// `every` the profiler sends the window's samples (what was sampled since
// the last window) as gzipped pprof to a Pyroscope-compatible server's
// /ingest API, named `app{host=..,pid=..,build_id=..,<labels>}`. Done on a
// thread of the profiler's; the program's threads never wait on the
// network: at most `max_queue` windows (8 MiB) wait, each send is bounded
// by min(5 s, every), a window that does not fit is dropped and counted.
// Stop() and exit wait at most `stop_wait` for the last window, then abort
// the send in flight (profiler_push.h). Needs the regular build (the
// static one has no HTTP client). With the `live` event each push is the
// whole live set (a snapshot, not a window).
struct ProfilerPushOptions {
  std::string url;  // http[s]://host:port[/prefix]; empty: no push
  std::string app;  // the application name; empty: the program's name
  // Added to (and overriding) host, pid and build_id. Keys
  // [A-Za-z_][A-Za-z0-9_.]*, values non-empty without , = { } newline.
  std::vector<std::pair<std::string, std::string>> labels;
  absl::Duration every = absl::Seconds(10);  // window length, 1s..1h
  size_t max_queue = 4;                      // windows waiting to be sent
  absl::Duration stop_wait = absl::Seconds(1);  // 0..10s
};

// ProfilerOptions
//
// What to sample and how. The defaults are a 10 ms `cpu` profile of every
// thread, with fallback to the timer engines when perf events are refused.
struct ProfilerOptions {
  // cpu | ctimer | itimer | wall | page-faults | context-switches | cycles |
  // instructions | cache-misses | branch-misses (and the other names of
  // ParsePerfEvent()); or alloc (bytes allocated), live (bytes allocated
  // and not freed yet), lock (time waited for mutexes, rwlocks and
  // condition variables), which need the hooks: the program links
  // //include/flamekit/hooks:interpose or runs under libflamekit_agent.so.
  std::string event = "cpu";
  // alloc, live: mean bytes between sampled allocations (Poisson); 0 = 512
  // KiB, 1 = every allocation.
  uint64_t alloc_interval_bytes = 0;
  // lock: waits at least this long are recorded.
  absl::Duration lock_threshold = absl::Microseconds(10);
  // Sampling interval of the time-based engines (cpu, ctimer, itimer: CPU
  // time; wall: wall time).
  absl::Duration interval = absl::Milliseconds(10);
  // Sampling period of count-based events (page-faults, cycles, ...): one
  // sample every `interval_events` events; 0 = the event's default.
  uint64_t interval_events = 0;
  // Deepest stack recorded (frames nearest the leaf are kept; deeper stacks
  // are cut and get a "[truncated]" root frame). 1..FLAMEKIT_MAX_FRAMES.
  uint32_t max_depth = FLAMEKIT_MAX_FRAMES;
  // How stacks are walked. "fp": frame pointers (build your code with
  // -fno-omit-frame-pointer), plus the caller of a leaf that keeps no frame
  // from its .eh_frame rule. "dwarf": every frame by its .eh_frame rule
  // where the code has one, frame pointers elsewhere, so code built without
  // them (most distribution libraries) has whole stacks too; Start() then
  // builds a table of the loaded code's rules (16 bytes a row, ~1.8 MB for
  // a process with libc, libstdc++ and Abseil) and rebuilds it after a
  // dlopen(). x86-64 only; elsewhere "dwarf" walks frame pointers.
  std::string unwind = "fp";
  // Split the profile by thread: each stack gets a root frame naming its
  // thread (ThreadFrameName(): "name tid=123", FrameKind::kThread).
  bool per_thread = false;
  // Shell globs on thread names (/proc/.../comm): when include_threads is
  // not empty only matching threads are sampled; exclude_threads wins.
  std::vector<std::string> include_threads;
  std::vector<std::string> exclude_threads;
  // Stop sampling automatically after this long (zero: until Stop()); the
  // profile is then taken with Stop() as usual.
  absl::Duration duration = absl::ZeroDuration();
  // When `cpu` cannot open perf events (EACCES, EPERM, ENOENT, ENOSYS,
  // seccomp), fall back to ctimer, then itimer, and say so in the profile's
  // metadata.engine_note. Off: Start() fails with the perf error instead.
  bool fallback = true;
  // For tests: make the `cpu` engine behave as if perf_event_open had failed
  // with this errno (0: off).
  int simulate_perf_errno = 0;
  // For the wall engine: add the thread state as the leaf frame
  // ("[running]", "[syscall futex]").
  bool thread_state = true;
  // Samples buffered between collector passes (a power of two).
  size_t ring_capacity = 4096;
  // How often the collector looks for new and exited threads (a stat() of
  // /proc/self/task and a read of /proc/sys/kernel/ns_last_pid; the full
  // listing when the thread count changed or a task was created) while
  // threads come and go. After each look that found no new thread the pause
  // doubles, up to max(thread_poll_interval, 100 ms): a wake-up costs the
  // collector ~40 us of CPU on this kind of VM (the context switch), so a
  // process with a stable set of threads pays ~10 of them per second. A new
  // thread is sampled from at most one pause (plus one sampling interval)
  // after it starts (up to a second where /proc/sys cannot be read and it
  // started within the same pause another exited).
  absl::Duration thread_poll_interval = absl::Milliseconds(10);
  // The signal samples travel on.
  int signal = SIGPROF;
  // Copied into the profile's metadata.
  std::string title;
  std::string transforms_json;
  // Push windows to a profiling store while sampling (see above).
  ProfilerPushOptions push;
};

// ProfilerStatus
//
// A snapshot of the profiler for the UI and for logs.
struct ProfilerStatus {
  bool running = false;
  std::string event;
  std::string engine;       // "perf cpu-clock", "ctimer", ...
  std::string engine_note;  // why a fallback happened, threads not armed, ...
  absl::Duration elapsed = absl::ZeroDuration();
  uint64_t samples = 0;
  uint64_t dropped_samples = 0;
  uint32_t threads = 0;  // threads sampled right now
  // Time spent in the signal handler since the capture started.
  absl::Duration handler_time = absl::ZeroDuration();
  // CPU time of the profiler's own threads (the collector, and the wall
  // engine's timer thread) since the capture started.
  absl::Duration profiler_thread_cpu = absl::ZeroDuration();
};

class Profiler {
 public:
  // Global()
  //
  // The process's profiler (never destroyed).
  static Profiler& Global();

  Profiler();
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // Start()
  //
  // Starts sampling with `options` (or the default options, see
  // SetDefaultOptions()). FailedPrecondition when already running (or when
  // another Profiler samples this process); InvalidArgument for bad options;
  // the engine's error (PermissionDenied with perf_event_paranoid advice,
  // FailedPrecondition "not available on this machine: no PMU", ...) when
  // it cannot run and no fallback applies.
  absl::Status Start();
  absl::Status Start(const ProfilerOptions& options);

  // Stop()
  //
  // Stops sampling (if not stopped by `duration` already) and returns the
  // profile. FailedPrecondition when nothing was started.
  absl::StatusOr<Profile> Stop();

  // Dump()
  //
  // The profile so far, without stopping. FailedPrecondition when nothing
  // was started.
  absl::StatusOr<Profile> Dump();

  // IsRunning()
  //
  // Whether samples are being taken (false after an auto-stop).
  bool IsRunning();

  // SetDefaultOptions()
  //
  // The options every later Start() without arguments uses (the UI calls it
  // too). InvalidArgument, keeping the old defaults, for bad options.
  absl::Status SetDefaultOptions(const ProfilerOptions& options);
  ProfilerOptions DefaultOptions();

  // Status()
  //
  // Running, event, engine, elapsed time, samples, drops, handler time.
  ProfilerStatus Status();

  // HookEvents()
  //
  // "alloc", "live", "lock" when this process has the allocation and lock
  // hooks (linked //include/flamekit/hooks:interpose, or runs under the
  // agent); empty otherwise (Start() with them then says how to get them).
  static std::vector<std::string> HookEvents();

  // ValidateOptions()
  //
  // The InvalidArgument Start() would return for `options`, or OK.
  static absl::Status ValidateOptions(const ProfilerOptions& options);

 private:
  class Session;

  void AbandonIfForked();
  // The pthread_atfork parent and child handlers: unlock what prepare took.
  static void ReleaseForkLocks();
  // This process's symbolizer, created on first use (again in a forked
  // child); nullptr if /proc/self/maps cannot be read. Needs symbol_mu_.
  Symbolizer* SymbolizerLocked();

  std::mutex control_mu_;  // Start/Stop/Dump/Status/defaults
  ProfilerOptions defaults_;
  std::unique_ptr<Session> session_;
  pid_t session_pid_ = 0;
  // Shared by sessions: parsing ELF files once per process, not per Start.
  std::mutex symbol_mu_;
  std::unique_ptr<Symbolizer> symbolizer_;
};

}  // namespace flamekit

// The implementation, in the one translation unit that asks for it.
#if defined(FLAMEKIT_IMPLEMENTATION)
#include "flamekit/profiler_impl.h"
#endif

#endif  // FLAMEKIT_PROFILER_H_
