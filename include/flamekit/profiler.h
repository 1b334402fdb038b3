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

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/buffer/stack_record.h"
#include "flamekit/buffer/stack_ring.h"
#include "flamekit/profile/profile.h"
#include "flamekit/sample/ctimer_sampler.h"
#include "flamekit/sample/itimer_sampler.h"
#include "flamekit/sample/perf_event.h"
#include "flamekit/sample/perf_sampler.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/sample/thread_list.h"
#include "flamekit/sample/wall_clock_sampler.h"
#include "flamekit/symbol/cfi_table_builder.h"
#include "flamekit/symbol/symbolizer.h"
#include "flamekit/unwind/stack_bounds.h"
#include "flamekit/unwind/syscall_caller.h"

namespace flamekit {

// ProfilerOptions
//
// What to sample and how. The defaults are a 10 ms `cpu` profile of every
// thread, with fallback to the timer engines when perf events are refused.
struct ProfilerOptions {
  // cpu | ctimer | itimer | wall | page-faults | context-switches | cycles |
  // instructions | cache-misses | branch-misses (and the other names of
  // ParsePerfEvent()).
  std::string event = "cpu";
  // Sampling interval of the time-based engines (cpu, ctimer, itimer: CPU
  // time; wall: wall time).
  absl::Duration interval = absl::Milliseconds(10);
  // Sampling period of count-based events (page-faults, cycles, ...): one
  // sample every `interval_events` events; 0 = the event's default.
  uint64_t interval_events = 0;
  // Deepest stack recorded (frames nearest the leaf are kept; deeper stacks
  // are cut and get a "[truncated]" root frame). 1..FLAMEKIT_MAX_FRAMES.
  uint32_t max_depth = kMaxStackFrames;
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
  // thread ("[name tid=123]", FrameKind::kThread).
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
  size_t ring_capacity = StackRing::kDefaultCapacity;
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

// Implementation details follow.

namespace profiler_internal {

// Only one Profiler may own the signal path at a time.
inline std::atomic<Profiler*> g_active_profiler{nullptr};

// The Profiler whose locks this thread's fork() took in the pthread_atfork
// prepare handler, to release in the parent and child handlers.
inline thread_local Profiler* t_forking_profiler = nullptr;

// Profiler::Session::leaf_slots_ values that are not a stack word index.
inline constexpr int32_t kLeafKeepsFrame = -1;   // the walk already has the caller
inline constexpr int32_t kLeafRuleUnknown = -2;  // no usable .eh_frame rule at the pc

inline bool IsTimerEngine(absl::string_view event) {
  return event == "ctimer" || event == "itimer" || event == "wall";
}

// A few x86_64/aarch64 system call names for the wall engine's state frame.
inline std::string SyscallName(int32_t number) {
  struct Entry {
    int32_t number;
    const char* name;
  };
#if defined(__x86_64__)
  static constexpr Entry kNames[] = {
      {0, "read"},         {1, "write"},          {7, "poll"},
      {17, "pread64"},     {18, "pwrite64"},      {23, "select"},
      {34, "pause"},       {35, "nanosleep"},     {43, "accept"},
      {44, "sendto"},      {45, "recvfrom"},      {46, "sendmsg"},
      {47, "recvmsg"},     {61, "wait4"},         {202, "futex"},
      {230, "clock_nanosleep"}, {232, "epoll_wait"}, {247, "waitid"},
      {270, "pselect6"},   {271, "ppoll"},        {281, "epoll_pwait"},
      {288, "accept4"},    {299, "recvmmsg"},     {441, "epoll_pwait2"},
  };
#elif defined(__aarch64__)
  static constexpr Entry kNames[] = {
      {63, "read"},       {64, "write"},        {22, "epoll_pwait"},
      {73, "ppoll"},      {72, "pselect6"},     {98, "futex"},
      {101, "nanosleep"}, {115, "clock_nanosleep"}, {202, "accept"},
      {206, "sendto"},    {207, "recvfrom"},    {242, "accept4"},
      {260, "wait4"},     {95, "waitid"},
  };
#else
  static constexpr Entry kNames[] = {{-2, ""}};
#endif
  for (const Entry& e : kNames) {
    if (e.number == number) return e.name;
  }
  return absl::StrCat(number);
}

inline std::string ProcessCommand() {
  FILE* file = fopen("/proc/self/cmdline", "re");
  if (file == nullptr) return "";
  char buffer[4096];
  size_t n = fread(buffer, 1, sizeof(buffer) - 1, file);
  fclose(file);
  buffer[n] = '\0';
  std::string command;
  for (size_t i = 0; i < n;) {
    std::string arg(buffer + i);
    if (!command.empty()) command += ' ';
    command += arg;
    i += arg.size() + 1;
  }
  return command;
}

// Whether a perf failure is one the fallback covers (perf events refused or
// missing) rather than a bug in the request.
inline bool PerfUnavailable(const absl::Status& status) {
  return absl::IsPermissionDenied(status) || absl::IsFailedPrecondition(status) ||
         absl::IsUnimplemented(status) || absl::IsNotFound(status) ||
         absl::IsUnavailable(status);
}

// State of each thread the collector knows.
struct ThreadInfo {
  std::string name;
  bool armed = false;     // the engine samples it
  bool excluded = false;  // filtered out by name
  bool bounds = false;    // stack bounds known
  bool probe_sent = false;
};

}  // namespace profiler_internal

// One capture: ring, stack table, engine, collector thread, folded data.
class Profiler::Session {
 public:
  Session(Profiler* owner, ProfilerOptions options)
      : owner_(owner), options_(std::move(options)) {}
  ~Session() { Shutdown(); }

  absl::Status Begin();
  // Stops the collector and the engine; idempotent.
  void Shutdown();
  absl::StatusOr<Profile> BuildProfile();
  bool sampling() const { return sampling_.load(); }
  ProfilerStatus Status();
  void Abandon() {
    abandoned_ = true;  // forked child: the threads are not ours
  }

 private:
  absl::Status ChooseEngine();
  absl::Status TryEngine(std::unique_ptr<Sampler> sampler, pid_t self);
  void CollectorMain();
  // The caller of the leaf function at r.frames[leaf] when the
  // frame-pointer walk skipped it, taken from the stack words the sample
  // kept; 0 when nothing is missing or it cannot be told. The leaf's
  // .eh_frame rule at that pc says whether its frame is set up and where
  // its return address is; code without one falls back to
  // WrapperCaller(). Needs data_mu_.
  uint64_t LeafCaller(const StackRecord& r, uint32_t leaf);
  // For a leaf with no call frame information: the caller of a system
  // call wrapper (the first return address above sp).
  uint64_t WrapperCaller(const StackRecord& r, uint32_t leaf);
  // Whether `word` is an address in executable code just after a call.
  bool IsReturnAddress(uint64_t word);
  // Returns the number of probes sent (new threads whose stacks are asked).
  size_t SyncThreads(bool refresh_names);
  void DrainLocked();
  void StopSampling();
  bool WantThread(const std::string& name) const;

  Profiler* const owner_;
  const ProfilerOptions options_;
  std::unique_ptr<StackRing> ring_;
  std::unique_ptr<ThreadStackTable> stacks_;
  // unwind == "dwarf": the rules handlers unwind with.
  std::unique_ptr<CfiTable> cfi_table_;
  std::unique_ptr<Sampler> sampler_;
  std::string engine_;
  std::string engine_note_;
  absl::Time start_time_ = absl::InfinitePast();
  absl::Time end_time_ = absl::InfinitePast();

  std::unique_ptr<std::thread> collector_;
  std::atomic<pid_t> collector_tid_{0};
  std::atomic<uint64_t> collector_cpu_ns_{0};  // set when the collector ends
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stop_requested_ = false;  // under wake_mu_
  bool first_sync_done_ = false;  // under wake_mu_
  std::atomic<bool> sampling_{false};
  bool engine_stopped_ = true;  // under data_mu_
  bool abandoned_ = false;

  // Folded samples: key = [tid or 0, state, flags, pc...] (leaf first,
  // return addresses minus one so that each lies inside its call).
  std::mutex data_mu_;
  absl::flat_hash_map<std::vector<uint64_t>, uint64_t> folded_;
  std::vector<uint64_t> scratch_;
  absl::flat_hash_map<pid_t, profiler_internal::ThreadInfo> threads_;
  absl::flat_hash_map<uint64_t, Symbolizer::Symbol> symbols_;
  std::vector<uint64_t> unsymbolized_;
  absl::flat_hash_set<pid_t> seen_threads_;
  // The wall engine's last folded key of each thread, for its repeat records.
  absl::flat_hash_map<pid_t, std::vector<uint64_t>> last_wall_key_;
  // Answers for LeafCaller(), by leaf pc: the index of the stack word that
  // holds its return address, or one of profiler_internal::kLeafKeepsFrame,
  // kLeafRuleUnknown.
  absl::flat_hash_map<uint64_t, int32_t> leaf_slots_;
  // Answers for WrapperCaller() and IsReturnAddress(), by address: is it a
  // system call site; is it a return address.
  absl::flat_hash_map<uint64_t, bool> syscall_sites_;
  absl::flat_hash_map<uint64_t, bool> return_addresses_;
  uint64_t samples_ = 0;
  uint64_t unarmed_threads_ = 0;
  std::string first_arm_error_;
  uint64_t ring_drained_ = 0;  // records taken from the ring so far
  SamplerCounters counters_at_stop_;
  uint64_t ring_dropped_at_stop_ = 0;
};

inline Profiler& Profiler::Global() {
  static Profiler* const profiler = new Profiler();
  return *profiler;
}

inline Profiler::Profiler() {
  static std::once_flag atexit_once;
  std::call_once(atexit_once, [] {
    // exit() while a capture runs: stop the engine and the collector before
    // static destructors run under them. Skipped if another thread holds
    // the profiler's lock (it may be the one exiting mid-Start/Stop): then
    // only the signal path is turned off.
    std::atexit([] {
      Profiler* active = profiler_internal::g_active_profiler.load();
      if (active == nullptr) return;
      std::unique_lock<std::mutex> lock(active->control_mu_, std::try_to_lock);
      if (!lock.owns_lock()) {
        sample_internal::g_shared.source.store(static_cast<int>(SampleSource::kNone));
        return;
      }
      active->AbandonIfForked();
      if (active->session_ != nullptr) active->session_->Shutdown();
    });
  });
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] {
    // A child gets copies of mutexes in whatever state other threads held
    // them, and those threads do not exist there: a lock held by the
    // collector (symbolizing) or by a Status() call from the UI at fork()
    // time would deadlock the child's first Profiler call. So fork() takes
    // both locks first (in the order Start/Stop take them; the collector
    // never takes control_mu_), waiting out at most one Stop() or one
    // symbolization pass.
    pthread_atfork(
        [] {
          Profiler* active = profiler_internal::g_active_profiler.load();
          if (active == nullptr) return;
          active->control_mu_.lock();
          active->symbol_mu_.lock();
          profiler_internal::t_forking_profiler = active;
        },
        [] { ReleaseForkLocks(); },
        [] {
          ReleaseForkLocks();
          // No engine thread exists in the child: stop accepting samples
          // at once; the Profiler notices the new pid on its next call and
          // drops the session.
          sample_internal::g_shared.source.store(static_cast<int>(SampleSource::kNone));
          sample_internal::t_cached_tid = 0;
          profiler_internal::g_active_profiler.store(nullptr);
        });
  });
}

inline void Profiler::ReleaseForkLocks() {
  Profiler* locked = profiler_internal::t_forking_profiler;
  if (locked == nullptr) return;
  profiler_internal::t_forking_profiler = nullptr;
  locked->symbol_mu_.unlock();
  locked->control_mu_.unlock();
}

inline Profiler::~Profiler() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  session_.reset();
  Profiler* self = this;
  profiler_internal::g_active_profiler.compare_exchange_strong(self, nullptr);
}

inline void Profiler::AbandonIfForked() {
  if (session_ != nullptr && session_pid_ != getpid()) {
    // The collector and engine threads live in the parent only: destroying
    // their std::thread objects here would terminate. Leak the session.
    session_->Abandon();
    session_.release();  // NOLINT: intentional leak in a forked child
    std::lock_guard<std::mutex> lock(symbol_mu_);
    symbolizer_.reset();
  }
}

inline Symbolizer* Profiler::SymbolizerLocked() {
  if (symbolizer_ == nullptr || symbolizer_->pid() != getpid()) {
    absl::StatusOr<std::unique_ptr<Symbolizer>> created = Symbolizer::ForSelf();
    if (created.ok()) symbolizer_ = std::move(*created);
  }
  return symbolizer_.get();
}

inline absl::Status Profiler::ValidateOptions(const ProfilerOptions& options) {
  if (options.event.empty()) {
    return absl::InvalidArgumentError(
        "profiler event is empty; use cpu, ctimer, itimer, wall or a perf event name");
  }
  bool time_based = true;
  if (!profiler_internal::IsTimerEngine(options.event)) {
    absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(options.event);
    if (!spec.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown profiler event '", options.event,
          "'; use cpu, ctimer, itimer, wall or a perf event: ",
          sample_internal::KnownEventNames()));
    }
    time_based = spec->time_based;
  }
  if (time_based) {
    if (options.interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("profiler interval must be positive (got ",
                       absl::FormatDuration(options.interval), "); e.g. 10ms"));
    }
    if (options.interval < absl::Microseconds(100)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "profiler interval ", absl::FormatDuration(options.interval),
          " is below 100us; the process would spend its time in the handler"));
    }
  }
  if (options.unwind != "fp" && options.unwind != "dwarf") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown unwind mode '", options.unwind,
        "'; use fp (frame pointers) or dwarf (.eh_frame rules)"));
  }
  if (options.max_depth < 1 || options.max_depth > kMaxStackFrames) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_depth ", options.max_depth, " is outside [1, ", kMaxStackFrames,
        "]; rebuild with -DFLAMEKIT_MAX_FRAMES=N for deeper stacks"));
  }
  if (options.ring_capacity < 2 || options.ring_capacity > StackRing::kMaxCapacity ||
      (options.ring_capacity & (options.ring_capacity - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ring_capacity ", options.ring_capacity,
        " is not a power of two in [2, 1048576]; e.g. 4096"));
  }
  if (options.duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must not be negative");
  }
  if (options.thread_poll_interval < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("thread_poll_interval must be at least 1ms");
  }
  if (options.signal <= 0 || options.signal >= sample_internal::kMaxSignal ||
      options.signal == SIGKILL || options.signal == SIGSTOP ||
      options.signal == SIGSEGV || options.signal == SIGBUS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "signal ", options.signal, " cannot carry samples; use SIGPROF (", SIGPROF, ")"));
  }
  if (options.event == "itimer" && options.signal != SIGPROF) {
    return absl::InvalidArgumentError("the itimer engine always uses SIGPROF");
  }
  return absl::OkStatus();
}

inline absl::Status Profiler::SetDefaultOptions(const ProfilerOptions& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(control_mu_);
  defaults_ = options;
  return absl::OkStatus();
}

inline ProfilerOptions Profiler::DefaultOptions() {
  std::lock_guard<std::mutex> lock(control_mu_);
  return defaults_;
}

inline absl::Status Profiler::Start() {
  ProfilerOptions options = DefaultOptions();
  return Start(options);
}

inline absl::Status Profiler::Start(const ProfilerOptions& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (session_ != nullptr) {
    if (session_->sampling()) {
      return absl::FailedPreconditionError(
          "the profiler is already running; call Stop() first");
    }
    return absl::FailedPreconditionError(
        "the previous capture stopped after its duration; call Stop() to take "
        "its profile before starting another");
  }
  Profiler* expected = nullptr;
  if (!profiler_internal::g_active_profiler.compare_exchange_strong(expected, this)) {
    return absl::FailedPreconditionError(
        "another Profiler is sampling this process; use Profiler::Global()");
  }
  auto session = std::make_unique<Session>(this, options);
  absl::Status begun = session->Begin();
  if (!begun.ok()) {
    session.reset();
    profiler_internal::g_active_profiler.store(nullptr);
    return begun;
  }
  session_ = std::move(session);
  session_pid_ = getpid();
  return absl::OkStatus();
}

inline absl::StatusOr<Profile> Profiler::Stop() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (session_ == nullptr) {
    return absl::FailedPreconditionError("the profiler is not running; call Start() first");
  }
  session_->Shutdown();
  absl::StatusOr<Profile> profile = session_->BuildProfile();
  session_.reset();
  profiler_internal::g_active_profiler.store(nullptr);
  return profile;
}

inline absl::StatusOr<Profile> Profiler::Dump() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (session_ == nullptr) {
    return absl::FailedPreconditionError("the profiler is not running; call Start() first");
  }
  return session_->BuildProfile();
}

inline bool Profiler::IsRunning() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  return session_ != nullptr && session_->sampling();
}

inline ProfilerStatus Profiler::Status() {
  std::lock_guard<std::mutex> lock(control_mu_);
  AbandonIfForked();
  if (session_ == nullptr) {
    ProfilerStatus status;
    status.event = defaults_.event;
    return status;
  }
  return session_->Status();
}

// ---- Session ----

inline absl::Status Profiler::Session::Begin() {
  absl::StatusOr<std::unique_ptr<StackRing>> ring = StackRing::Create(options_.ring_capacity);
  if (!ring.ok()) return ring.status();
  ring_ = std::move(*ring);
  stacks_ = std::make_unique<ThreadStackTable>(8192);
  const pid_t self = CurrentTid();
  absl::StatusOr<StackBounds> own = CurrentThreadStackBounds();
  if (own.ok()) {
    stacks_->Insert(static_cast<uint32_t>(self), *own);
    threads_[self].bounds = true;
  }
  ResetSamplerCounters();
  start_time_ = absl::Now();
  std::string unwind_note;
  if (options_.unwind == "dwarf") {
    CfiTableStats stats;
    {
      std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
      if (Symbolizer* symbolizer = owner_->SymbolizerLocked()) {
        cfi_table_ = BuildCfiTable(*symbolizer, &stats);
      }
    }
    unwind_note = cfi_table_ == nullptr
                      ? "unwind=dwarf: /proc/self/maps unreadable, frame pointers used"
                      : absl::StrCat("unwind=dwarf: ", stats.rows, " rules from ", stats.mappings,
                                     " mappings (", stats.bytes / 1024, " KiB)");
  }
  absl::Status engine = ChooseEngine();
  if (engine.ok() && !unwind_note.empty()) {
    engine_note_ = absl::StrCat(engine_note_, engine_note_.empty() ? "" : "; ", unwind_note);
  }
  if (!engine.ok()) {
    DeactivateSampling();
    return engine;
  }
  {
    std::lock_guard<std::mutex> lock(data_mu_);
    engine_stopped_ = false;
  }
  sampling_ = true;
  collector_ = std::make_unique<std::thread>([this] { CollectorMain(); });
  // Wait for the first thread scan so that every thread is armed on return.
  std::unique_lock<std::mutex> lock(wake_mu_);
  wake_.wait(lock, [this] { return first_sync_done_; });
  return absl::OkStatus();
}

inline absl::Status Profiler::Session::TryEngine(std::unique_ptr<Sampler> sampler,
                                                 pid_t self) {
  SamplingTarget target{ring_.get(), stacks_.get(), options_.max_depth, cfi_table_.get()};
  ActivateSampling(target, sampler->source());
  absl::Status started = sampler->Start();
  if (started.ok() && sampler->per_thread()) {
    started = sampler->AddThread(self);
    if (!started.ok()) sampler->Stop();
  }
  if (!started.ok()) {
    DeactivateSampling();
    return started;
  }
  if (sampler->per_thread()) threads_[self].armed = true;
  engine_ = sampler->name();
  sampler_ = std::move(sampler);
  return absl::OkStatus();
}

inline absl::Status Profiler::Session::ChooseEngine() {
  const pid_t self = CurrentTid();
  const std::string& event = options_.event;
  if (event == "ctimer") {
    return TryEngine(std::make_unique<CtimerSampler>(options_.interval, options_.signal), self);
  }
  if (event == "itimer") {
    return TryEngine(std::make_unique<ItimerSampler>(options_.interval), self);
  }
  if (event == "wall") {
    return TryEngine(std::make_unique<WallClockSampler>(options_.interval, options_.signal),
                     self);
  }
  absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(event);
  if (!spec.ok()) return spec.status();
  PerfPeriod period;
  if (spec->time_based) {
    period = PerfPeriod::Interval(options_.interval);
  } else if (options_.interval_events > 0) {
    period = PerfPeriod::Count(options_.interval_events);
  }
  absl::Status perf;
  if (options_.simulate_perf_errno != 0) {
    PerfEventOptions what;
    what.event = *spec;
    what.tid = self;
    perf = PerfEventOpenError(options_.simulate_perf_errno, what);
  } else {
    perf = TryEngine(std::make_unique<PerfSampler>(*spec, period, options_.signal), self);
  }
  if (perf.ok()) {
    // Whether kernel frames were allowed is known once the first thread's
    // event is open.
    if (auto* sampler = dynamic_cast<PerfSampler*>(sampler_.get())) {
      engine_note_ = sampler->kernel_note();
    }
    return perf;
  }
  const bool is_cpu = spec->name == "cpu" || spec->name == "cpu-clock";
  if (!is_cpu || !options_.fallback || !profiler_internal::PerfUnavailable(perf)) {
    return perf;
  }
  // Fallback: ctimer, then itimer.
  absl::Status ctimer =
      TryEngine(std::make_unique<CtimerSampler>(options_.interval, options_.signal), self);
  if (ctimer.ok()) {
    engine_note_ = absl::StrCat("perf events unavailable: ", perf.message(),
                                "; fell back to ctimer");
    fprintf(stderr, "flamekit: %s\n", engine_note_.c_str());
    return ctimer;
  }
  absl::Status itimer = TryEngine(std::make_unique<ItimerSampler>(options_.interval), self);
  if (itimer.ok()) {
    engine_note_ = absl::StrCat("perf events unavailable: ", perf.message(),
                                "; ctimer failed: ", ctimer.message(),
                                "; fell back to itimer");
    fprintf(stderr, "flamekit: %s\n", engine_note_.c_str());
    return itimer;
  }
  return absl::Status(perf.code(),
                      absl::StrCat(perf.message(), "; fallback to ctimer failed: ",
                                   ctimer.message(), "; fallback to itimer failed: ",
                                   itimer.message()));
}

inline bool Profiler::Session::WantThread(const std::string& name) const {
  for (const std::string& pattern : options_.exclude_threads) {
    if (ThreadNameMatches(pattern, name)) return false;
  }
  if (options_.include_threads.empty()) return true;
  for (const std::string& pattern : options_.include_threads) {
    if (ThreadNameMatches(pattern, name)) return true;
  }
  return false;
}

inline void Profiler::Session::CollectorMain() {
  // The collector never takes sample signals (ITIMER_PROF then goes to a
  // thread that is doing the application's work).
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, options_.signal);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  collector_tid_ = CurrentTid();
  // The collector's own cost is paid per wall-clock second whatever the
  // sampling rate, so it does as little as it can per wake-up: every
  // thread_poll_interval one stat() of /proc/self/task (its link count is
  // 2 + the number of threads) and one read of the last pid handed out; the
  // full listing only when the count changed, a task was created (a thread
  // that exited while another started leaves the count equal), or once a
  // second (/proc/sys unreadable).
  // The ring is drained when a quarter full or every 100 ms, and the
  // collector wakes every 5 ms while the last drain found it that full.
  const absl::Duration min_tick = options_.thread_poll_interval;
  const absl::Duration max_tick = std::max(min_tick, absl::Milliseconds(100));
  absl::Duration tick = min_tick;
  const uint64_t drain_threshold = ring_->capacity() / 4;
  absl::Time next_full_sync = absl::InfinitePast();
  absl::Time next_drain = absl::InfinitePast();
  absl::Time probe_drain = absl::InfiniteFuture();
  nlink_t last_links = 0;
  TaskCreationWatch created;
  uint64_t drained_total = 0;
  bool busy = false;  // the last drain found the ring a quarter full
  while (true) {
    const absl::Time now = absl::Now();
    if (sampling_.load()) {
      struct stat task_dir;
      nlink_t links = stat("/proc/self/task", &task_dir) == 0 ? task_dir.st_nlink : 0;
      const bool changed = links != last_links || links == 0;
      // Read every tick so that a creation is not reported twice.
      const bool task_created = created.Changed();
      bool found_new = false;
      if (changed || task_created || now >= next_full_sync) {
        // New threads' probes come back within a tick; their stack pointers
        // are turned into stack bounds at a drain, and until then their
        // samples hold the leaf frame only: so drain soon.
        if (SyncThreads(/*refresh_names=*/now >= next_full_sync) > 0) {
          probe_drain = now + min_tick;
          found_new = true;
        }
        last_links = links;
        if (now >= next_full_sync) next_full_sync = now + absl::Seconds(1);
        std::lock_guard<std::mutex> lock(wake_mu_);
        if (!first_sync_done_) {
          first_sync_done_ = true;
          wake_.notify_all();
        }
      }
      // Other processes' forks move the last pid too: only threads of ours
      // keep the collector looking often.
      tick = changed || found_new ? min_tick : std::min(tick * 2, max_tick);
    }
    {
      // A library dlopen()ed and dlclose()d between two drains is named
      // only if the symbolizer saw it mapped: one cheap check per tick.
      std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
      if (Symbolizer* symbolizer = owner_->SymbolizerLocked()) {
        if (symbolizer->RefreshIfLibrariesChanged() && cfi_table_ != nullptr &&
            sampling_.load()) {
          // New code (or code gone): handlers get rules for what is mapped
          // now, and the old table goes once no handler can hold it. (Once
          // sampling stopped there is nothing to publish to; a publish that
          // races Stop() leaves a pointer no handler reads: the ring is
          // unpublished and the next Start() overwrites it.)
          std::unique_ptr<CfiTable> fresh = BuildCfiTable(*symbolizer);
          PublishCfiTable(fresh.get());
          WaitForSampleHandlers();
          cfi_table_ = std::move(fresh);
        }
      }
    }
    // Relaxed reads of a statistic: only decides whether to drain now.
    if (ring_->pushed() - drained_total >= drain_threshold || now >= next_drain ||
        now >= probe_drain) {
      if (now >= probe_drain) probe_drain = absl::InfiniteFuture();
      std::lock_guard<std::mutex> lock(data_mu_);
      DrainLocked();
      busy = ring_drained_ - drained_total >= drain_threshold;
      drained_total = ring_drained_;
      next_drain = now + absl::Milliseconds(100);
    }
    if (options_.duration > absl::ZeroDuration() && sampling_.load() &&
        now - start_time_ >= options_.duration) {
      StopSampling();
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    if (stop_requested_) break;
    // Many threads sampling fast: come back sooner so the ring never fills.
    absl::Duration wait = busy ? std::min(tick, absl::Milliseconds(5)) : tick;
    if (probe_drain != absl::InfiniteFuture()) {
      wait = std::min(wait, std::max(probe_drain - absl::Now(), absl::Milliseconds(1)));
    }
    if (options_.duration > absl::ZeroDuration() && sampling_.load()) {
      wait = std::min(wait, std::max(start_time_ + options_.duration - absl::Now(),
                                     absl::Milliseconds(1)));
    }
    wake_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] { return stop_requested_; });
    if (stop_requested_) break;
  }
  struct timespec own;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &own);
  collector_cpu_ns_ = static_cast<uint64_t>(own.tv_sec) * 1000000000ull + own.tv_nsec;
}

inline size_t Profiler::Session::SyncThreads(bool refresh_names) {
  absl::StatusOr<std::vector<pid_t>> tids = ListThreadIds();
  if (!tids.ok()) return 0;
  size_t probes = 0;
  const pid_t collector = collector_tid_.load();
  pid_t timer_tid = 0;
  if (auto* wall = dynamic_cast<WallClockSampler*>(sampler_.get())) {
    timer_tid = wall->timer_tid();
  }
  absl::flat_hash_set<pid_t> alive(tids->begin(), tids->end());
  std::lock_guard<std::mutex> lock(data_mu_);
  if (engine_stopped_) return 0;
  for (pid_t tid : *tids) {
    if (tid == collector || tid == timer_tid) continue;
    auto [it, inserted] = threads_.try_emplace(tid);
    profiler_internal::ThreadInfo& info = it->second;
    if (inserted || info.name.empty() || refresh_names) {
      std::string name = ReadThreadName(tid);
      if (!name.empty()) info.name = std::move(name);
    }
    const bool want = WantThread(info.name);
    info.excluded = !want;
    if (sampler_->per_thread()) {
      if (want && !info.armed) {
        absl::Status armed = sampler_->AddThread(tid);
        if (armed.ok()) {
          info.armed = true;
        } else if (!absl::IsNotFound(armed)) {
          ++unarmed_threads_;
          if (first_arm_error_.empty()) first_arm_error_ = std::string(armed.message());
          info.excluded = true;  // do not retry every poll
        }
      } else if (!want && info.armed) {
        sampler_->RemoveThread(tid);
        info.armed = false;
      }
    }
    if (want && !info.bounds && !info.probe_sent) {
      // Ask the thread for its stack pointer so that its stack is known
      // before its first real sample.
      QueueSampleSignal(tid, options_.signal, kProbeCookie);
      info.probe_sent = true;
      ++probes;
    }
  }
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (alive.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->second.armed) sampler_->RemoveThread(it->first);
    stacks_->Erase(static_cast<uint32_t>(it->first));
    it->second.armed = false;
    it->second.bounds = false;
    it->second.probe_sent = false;
    // Keep the name for samples still in the ring; forget dead threads that
    // never produced a sample.
    if (!seen_threads_.contains(it->first)) {
      threads_.erase(it++);
    } else {
      ++it;
    }
  }
  return probes;
}

inline void Profiler::Session::DrainLocked() {
  // Threads whose samples came without known stack bounds, with a stack
  // pointer seen in one of them.
  absl::flat_hash_map<pid_t, uint64_t> resolve;
  const bool wall = options_.event == "wall";
  ring_drained_ += ring_->Drain([&](const StackRecord& r) {
    const pid_t tid = static_cast<pid_t>(r.tid);
    if ((r.flags & kStackRecordNoBounds) != 0 && r.sp != 0) resolve[tid] = r.sp;
    if ((r.flags & kStackRecordRepeat) != 0) {
      // The wall engine found the thread still blocked where its previous
      // sample saw it (that sample is ahead of this record in the ring).
      auto last = last_wall_key_.find(tid);
      if (last == last_wall_key_.end()) return;
      folded_[last->second] += r.weight;
      samples_ += r.weight;
      return;
    }
    if ((r.flags & kStackRecordProbe) != 0 || r.frame_count == 0) return;
    auto info = threads_.find(tid);
    if (info != threads_.end() && info->second.excluded) return;
    seen_threads_.insert(tid);
    scratch_.clear();
    scratch_.push_back(options_.per_thread ? r.tid : 0);
    uint64_t state = 0;
    if (wall && options_.thread_state) {
      // 1: running; 2 + the call's number (as uint32: an unknown number,
      // -1, stays distinct from running) for a blocked thread.
      state = r.state == ThreadState::kSyscall
                  ? 2 + static_cast<uint64_t>(static_cast<uint32_t>(r.syscall_number))
                  : 1;
    }
    scratch_.push_back(state);
    scratch_.push_back(r.truncated() ? 1 : 0);
    // The user part starts after the kernel's frames (cpu engine).
    uint32_t leaf = 0;
    while (leaf < r.frame_count && IsKernelAddress(r.frames[leaf])) ++leaf;
    const uint64_t leaf_caller = LeafCaller(r, leaf);
    auto add = [&](uint64_t pc) {
      scratch_.push_back(pc);
      if (!symbols_.contains(pc)) {
        symbols_.emplace(pc, Symbolizer::Symbol{});
        unsymbolized_.push_back(pc);
      }
    };
    for (uint32_t i = 0; i < r.frame_count; ++i) {
      // Return addresses point after the call; step back into it.
      add(i == 0 || i == leaf ? r.frames[i] : r.frames[i] - 1);
      if (i == leaf && leaf_caller != 0) add(leaf_caller - 1);
    }
    ++folded_[scratch_];
    ++samples_;
    // Only a blocked thread's sample is ever repeated (wall_idle.h).
    if (wall && r.state == ThreadState::kSyscall) last_wall_key_[tid] = scratch_;
  });
  // Learn the stacks of threads first seen without bounds (or whose tid was
  // reused by a thread with another stack) from the mapping holding their sp.
  for (const auto& [tid, sp] : resolve) {
    absl::StatusOr<StackBounds> bounds = StackBoundsFromMaps(sp);
    if (bounds.ok() && stacks_->Insert(static_cast<uint32_t>(tid), *bounds)) {
      threads_[tid].bounds = true;
    }
  }
  // Symbolize new addresses now, while their libraries are still loaded.
  if (!unsymbolized_.empty()) {
    std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
    Symbolizer* symbolizer = owner_->SymbolizerLocked();
    if (symbolizer != nullptr) {
      // Names are kept for the whole session, so a batch with addresses in
      // no known mapping re-reads maps first (LookupAll).
      std::vector<Symbolizer::Symbol> named = symbolizer->LookupAll(unsymbolized_);
      for (size_t i = 0; i < named.size(); ++i) symbols_[unsymbolized_[i]] = std::move(named[i]);
    } else {
      for (uint64_t pc : unsymbolized_) {
        symbols_[pc] = Symbolizer::Symbol{absl::StrCat("0x", absl::Hex(pc)), FrameKind::kUnknown};
      }
    }
    unsymbolized_.clear();
  }
}

inline uint64_t Profiler::Session::LeafCaller(const StackRecord& r, uint32_t leaf) {
  using profiler_internal::kLeafKeepsFrame;
  using profiler_internal::kLeafRuleUnknown;
  if (r.leaf_stack_words == 0 || leaf >= r.frame_count) return 0;
  const uint64_t pc = r.frames[leaf];
  // Answers about code, which does not change while it is mapped; the
  // bound keeps a long session from growing the cache for ever.
  if (leaf_slots_.size() > 65536) leaf_slots_.clear();
  auto slot = leaf_slots_.find(pc);
  if (slot == leaf_slots_.end()) {
    std::optional<CfaRule> rule;
    {
      std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
      if (Symbolizer* symbolizer = owner_->SymbolizerLocked()) rule = symbolizer->CfaRuleAt(pc);
    }
    int32_t where = kLeafRuleUnknown;
    if (rule && rule->base == CfaRule::Base::kFramePointer) {
      where = kLeafKeepsFrame;  // rbp is this function's: the walk saw its caller
    } else if (std::optional<uint32_t> at = rule ? rule->FramelessReturnSlot() : std::nullopt) {
      where = static_cast<int32_t>(*at);
    }
    slot = leaf_slots_.emplace(pc, where).first;
  }
  if (slot->second == kLeafKeepsFrame) return 0;
  if (slot->second == kLeafRuleUnknown) return WrapperCaller(r, leaf);
  // A frame larger than the words kept: the caller stays missing.
  if (slot->second >= r.leaf_stack_words) return 0;
  const uint64_t word = r.frames[r.frame_count + slot->second];
  return IsReturnAddress(word) ? word : 0;
}

inline uint64_t Profiler::Session::WrapperCaller(const StackRecord& r, uint32_t leaf) {
  if (syscall_sites_.size() > 65536) syscall_sites_.clear();
  auto site = syscall_sites_.find(r.frames[leaf]);
  if (site == syscall_sites_.end()) {
    site = syscall_sites_.emplace(r.frames[leaf], IsSystemCallSite(r.frames[leaf])).first;
  }
  if (!site->second) return 0;
  const uint64_t next = leaf + 1 < r.frame_count ? r.frames[leaf + 1] : 0;
  const uint64_t* words = r.frames + r.frame_count;
  for (uint16_t i = 0; i < r.leaf_stack_words; ++i) {
    // The first return address above sp is the wrapper's own: when the
    // walk already has it (the wrapper did keep a frame), nothing is missing.
    if (IsReturnAddress(words[i])) return words[i] == next ? 0 : words[i];
  }
  return 0;
}

inline bool Profiler::Session::IsReturnAddress(uint64_t word) {
  if (word < 4096 || IsKernelAddress(word)) return false;
  if (return_addresses_.size() > 65536) return_addresses_.clear();
  auto known = return_addresses_.find(word);
  if (known != return_addresses_.end()) return known->second;
  bool executable = false;
  {
    std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
    if (Symbolizer* symbolizer = owner_->SymbolizerLocked()) {
      executable = symbolizer->InExecutableMapping(word);
    }
  }
  return return_addresses_.emplace(word, executable && FollowsCallInstruction(word)).first->second;
}

inline void Profiler::Session::StopSampling() {
  std::lock_guard<std::mutex> lock(data_mu_);
  if (engine_stopped_) return;
  if (!abandoned_ && sampler_ != nullptr) sampler_->Stop();
  DeactivateSampling();
  engine_stopped_ = true;
  sampling_ = false;
  end_time_ = absl::Now();
  counters_at_stop_ = ReadSamplerCounters();
  DrainLocked();
  ring_dropped_at_stop_ = ring_->dropped();
}

inline void Profiler::Session::Shutdown() {
  if (abandoned_) return;
  if (collector_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      stop_requested_ = true;
    }
    wake_.notify_all();
    collector_->join();
    collector_.reset();
  }
  StopSampling();
}

inline ProfilerStatus Profiler::Session::Status() {
  ProfilerStatus status;
  std::lock_guard<std::mutex> lock(data_mu_);
  status.running = !engine_stopped_;
  status.event = options_.event;
  status.engine = engine_;
  status.engine_note = engine_note_;
  if (unarmed_threads_ > 0) {
    status.engine_note = absl::StrCat(
        status.engine_note, status.engine_note.empty() ? "" : "; ", unarmed_threads_,
        " thread(s) could not be sampled: ", first_arm_error_);
  }
  absl::Time end = engine_stopped_ ? end_time_ : absl::Now();
  status.elapsed = end - start_time_;
  SamplerCounters counters = engine_stopped_ ? counters_at_stop_ : ReadSamplerCounters();
  status.samples = counters.samples;
  status.dropped_samples = engine_stopped_ ? ring_dropped_at_stop_ : ring_->dropped();
  status.handler_time = absl::Nanoseconds(counters.handler_ns);
  uint32_t armed = 0;
  for (const auto& [tid, info] : threads_) armed += info.armed ? 1 : 0;
  status.threads = armed;
  auto thread_cpu = [](pid_t tid) {
    struct timespec ts;
    if (tid == 0 || clock_gettime(CtimerSampler::ThreadCpuClock(tid), &ts) != 0) {
      return absl::ZeroDuration();
    }
    return absl::DurationFromTimespec(ts);
  };
  status.profiler_thread_cpu = collector_cpu_ns_.load() > 0
                                   ? absl::Nanoseconds(collector_cpu_ns_.load())
                                   : thread_cpu(collector_tid_.load());
  if (auto* wall = dynamic_cast<WallClockSampler*>(sampler_.get())) {
    status.profiler_thread_cpu += thread_cpu(wall->timer_tid());
  }
  return status;
}

inline absl::StatusOr<Profile> Profiler::Session::BuildProfile() {
  std::lock_guard<std::mutex> lock(data_mu_);
  if (!engine_stopped_) DrainLocked();
  Profile profile;
  ProfileMetadata& m = profile.metadata();
  m.title = options_.title;
  m.event = options_.event;
  m.engine = engine_;
  m.engine_note = engine_note_;
  if (unarmed_threads_ > 0) {
    m.engine_note = absl::StrCat(m.engine_note, m.engine_note.empty() ? "" : "; ",
                                 unarmed_threads_, " thread(s) could not be sampled: ",
                                 first_arm_error_);
  }
  absl::StatusOr<PerfEventSpec> spec =
      profiler_internal::IsTimerEngine(options_.event)
          ? absl::StatusOr<PerfEventSpec>(absl::NotFoundError(""))
          : ParsePerfEvent(options_.event);
  if (spec.ok() && !spec->time_based) {
    m.interval_events =
        options_.interval_events > 0 ? options_.interval_events : spec->default_period;
  } else {
    m.interval = options_.interval;
  }
  m.start_time = start_time_;
  m.end_time = engine_stopped_ ? end_time_ : absl::Now();
  m.dropped_samples = engine_stopped_ ? ring_dropped_at_stop_ : ring_->dropped();
  m.pid = getpid();
  m.command = profiler_internal::ProcessCommand();
  m.transforms_json = options_.transforms_json;
  absl::flat_hash_set<uint64_t> threads_in_profile;
  std::vector<FrameId> stack;
  for (const auto& [key, count] : folded_) {
    stack.clear();
    const uint64_t tid = key[0];
    const uint64_t state = key[1];
    const bool truncated = key[2] != 0;
    if (truncated) {
      stack.push_back(profile.InternFrame(kTruncatedFrameName, FrameKind::kTruncated));
    }
    for (size_t i = key.size(); i > 3; --i) {
      const Symbolizer::Symbol& symbol = symbols_[key[i - 1]];
      stack.push_back(profile.InternFrame(symbol.name, symbol.kind));
    }
    if (state == 1) {
      stack.push_back(profile.InternFrame("[running]", FrameKind::kUser));
    } else if (state > 1) {
      int32_t number = static_cast<int32_t>(static_cast<uint32_t>(state - 2));
      std::string name =
          number < 0 ? std::string("[syscall]")
                     : absl::StrCat("[syscall ", profiler_internal::SyscallName(number), "]");
      stack.push_back(profile.InternFrame(name, FrameKind::kKernel));
    }
    if (options_.per_thread) {
      auto info = threads_.find(static_cast<pid_t>(tid));
      std::string name = info != threads_.end() ? info->second.name : std::string("?");
      FrameId root =
          profile.InternFrame(absl::StrCat("[", name, " tid=", tid, "]"), FrameKind::kThread);
      stack.insert(stack.begin(), root);
    }
    profile.AddStack(stack, count);
  }
  m.threads = static_cast<uint32_t>(seen_threads_.size());
  return profile;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_H_
