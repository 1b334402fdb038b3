// SPDX-License-Identifier: Apache-2.0
// File: perf_event.h
//
// Opening Linux perf events for sampling: event names ("cpu", "page-faults",
// "cycles", ...) to perf type/config, sampling periods ("10ms", "500us", a
// count, or a frequency), a PerfEventOptions that describes one event on one
// thread, and OpenPerfEvent(), which calls perf_event_open(2) and turns its
// errno into a Status that says what to do.
//
// Thread-safety: every function here is thread-compatible and may be called
// from any ordinary thread; none is async-signal-safe (they allocate and
// build Status messages). The descriptors they return are plain fds: the
// caller mmaps them (see perf_ring.h) or enables them with ioctl().
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(PerfEventSpec event, ParsePerfEvent("cpu"));
//   PerfEventOptions options;
//   options.event = event;
//   options.period = PerfPeriod::Interval(absl::Milliseconds(1));
//   options.tid = 1234;                     // one thread of the target
//   FLAMEKIT_ASSIGN_OR_RETURN(ScopedFd fd, OpenPerfEvent(options));
//   // mmap it with PerfRing::Map(fd.get(), ...), then
//   // ioctl(fd.get(), PERF_EVENT_IOC_ENABLE, 0) if options.disabled.

#ifndef FLAMEKIT_PERF_PERF_EVENT_H_
#define FLAMEKIT_PERF_PERF_EVENT_H_

#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/base/scoped_fd.h"

namespace flamekit {

// PerfEventSpec
//
// One named perf event: what perf_event_attr.type/config it is, whether
// its period is a time (the software clocks) or a count of events, and
// whether it needs a hardware PMU (absent on most VMs).
struct PerfEventSpec {
  std::string name = "cpu";  // as the user should read it: "cpu", "page-faults"
  uint32_t type = PERF_TYPE_SOFTWARE;
  uint64_t config = PERF_COUNT_SW_CPU_CLOCK;
  bool time_based = true;   // period in nanoseconds of CPU time
  bool hardware = false;    // needs a PMU (PERF_TYPE_HARDWARE / HW_CACHE)
  // The period used when the user gives none: 10 ms for clocks (as
  // async-profiler), a count otherwise.
  uint64_t default_period = 10 * 1000 * 1000;
  std::string description;  // one line for `flamekit list`
};

// ParsePerfEvent()
//
// Parses an event name: "cpu" (= "cpu-clock"), "task-clock",
// "page-faults" ("faults"), "minor-faults", "major-faults",
// "context-switches" ("cs"), "cpu-migrations", "cycles", "instructions",
// "cache-references", "cache-misses", "branches", "branch-misses". Case
// does not matter. An unknown name gives InvalidArgument listing the known
// ones. Parsing does not check that the machine has the event: opening it
// does (see OpenPerfEvent()).
absl::StatusOr<PerfEventSpec> ParsePerfEvent(absl::string_view name);

// KnownPerfEvents()
//
// Every event ParsePerfEvent() accepts, by its canonical name, in the order
// `flamekit list` shows them.
const std::vector<PerfEventSpec>& KnownPerfEvents();

// PerfPeriod
//
// How often to sample: every `interval` of CPU time (clock events), every
// `count` events, or `frequency_hz` times per second (the kernel adjusts
// the period). Exactly one is set; an all-zero PerfPeriod means "the
// event's default_period".
struct PerfPeriod {
  absl::Duration interval = absl::ZeroDuration();
  uint64_t count = 0;
  uint64_t frequency_hz = 0;

  static PerfPeriod Interval(absl::Duration d) { return PerfPeriod{d, 0, 0}; }
  static PerfPeriod Count(uint64_t n) { return PerfPeriod{absl::ZeroDuration(), n, 0}; }
  static PerfPeriod Frequency(uint64_t hz) { return PerfPeriod{absl::ZeroDuration(), 0, hz}; }
  bool is_default() const {
    return interval == absl::ZeroDuration() && count == 0 && frequency_hz == 0;
  }
};

// ParsePerfInterval()
//
// Parses an `-i/--interval` value: a duration with a unit ("10ms", "500us",
// "250000ns", "1s", "1.5ms") or a plain positive count ("100000"). Zero,
// negative, empty or malformed values give InvalidArgument with an example
// of a good one. A duration below 10 us is refused (the kernel would spend
// all its time in the sampling interrupt).
absl::StatusOr<PerfPeriod> ParsePerfInterval(absl::string_view text);

// ParsePerfFrequency()
//
// Parses a `-F/--frequency` value in Hz ("999", "1000", "4k"): a positive
// integer no larger than the kernel's perf_event_max_sample_rate.
absl::StatusOr<PerfPeriod> ParsePerfFrequency(absl::string_view text);

// ResolvePeriod()
//
// Checks that `period` fits `event` (a duration only for clock events; a
// bare count for a clock event is taken as nanoseconds) and returns the
// value for perf_event_attr: {sample_period or sample_freq, is_frequency}.
struct ResolvedPerfPeriod {
  uint64_t value = 0;
  bool is_frequency = false;
};
absl::StatusOr<ResolvedPerfPeriod> ResolvePeriod(const PerfEventSpec& event,
                                                 const PerfPeriod& period);

// The sample layout flamekit reads (perf_ring.h parses exactly these, in the
// kernel's order: IP, TID, TIME, CALLCHAIN).
inline constexpr uint64_t kDefaultPerfSampleType =
    PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_CALLCHAIN;

// PerfEventOptions
//
// One event on one thread (or process) and CPU. Defaults: cpu-clock every
// 10 ms, the calling thread, any CPU, IP|TID|TIME|CALLCHAIN, no side-band
// records, enabled at once, no inherit.
struct PerfEventOptions {
  PerfEventSpec event;
  PerfPeriod period;
  // Thread (or process) id to follow; 0 = the calling thread. With
  // `cpu` = -1 the event follows the thread on every CPU.
  pid_t tid = 0;
  int cpu = -1;
  uint64_t sample_type = kDefaultPerfSampleType;
  // Whether to leave kernel frames out. Unset: decided by
  // DefaultExcludeKernel() (perf_event_paranoid and capabilities), and if
  // the kernel still refuses a kernel-including event with EACCES/EPERM,
  // OpenPerfEvent() retries once without kernel frames.
  std::optional<bool> exclude_kernel;
  // Side-band records, for symbolizing and thread tracking: mmap/mmap2 for
  // executable mappings made during the capture, comm for thread names,
  // task for PERF_RECORD_FORK/EXIT.
  bool record_mmap = false;
  bool record_comm = false;
  bool record_task = false;
  // Start disabled (enable with ioctl PERF_EVENT_IOC_ENABLE), and/or
  // enable at the next exec of the target (launch mode).
  bool disabled = false;
  bool enable_on_exec = false;
  // Also count in threads the target creates later. Off by default: with
  // inherit the children's samples go to their own (unmapped) contexts in
  // per-thread rings, so flamekit opens one event per thread instead.
  bool inherit = false;
  // Wake a poll()er after this many bytes are in the ring (0 = after every
  // sample, which costs a wake-up each).
  uint32_t wakeup_watermark_bytes = 0;
  // The kernel's callchain depth (0 = the kernel's default, 127).
  uint16_t max_callchain = 0;
  // Leave the user part out of the callchain (the in-process `cpu` engine
  // unwinds user frames itself and asks the kernel for its own only).
  bool exclude_callchain_user = false;
  // With PERF_SAMPLE_STACK_USER in sample_type: how many bytes of the user
  // stack, from its stack pointer up, each sample copies (a multiple of 8).
  uint32_t user_stack_bytes = 0;
  // With PERF_SAMPLE_REGS_USER in sample_type: which user registers each
  // sample carries (bits of asm/perf_regs.h's PERF_REG_X86_*).
  uint64_t sample_regs_user = 0;
  // PERF_RECORD_SWITCH side-band records (attr.context_switch): when the
  // followed thread goes off and back on a CPU (the wall engine's off-CPU
  // intervals). Allowed at perf_event_paranoid 2 on one's own threads.
  bool record_switch = false;
  // Timestamps (PERF_SAMPLE_TIME, sample_id_all) from this clock
  // (attr.use_clockid), e.g. CLOCK_MONOTONIC to compare them with
  // clock_gettime(); -1 = perf's own clock.
  int clockid = -1;
};

// PerfEventParanoid()
//
// The value of /proc/sys/kernel/perf_event_paranoid, or NotFound when the
// file does not exist (no perf events in this kernel).
absl::StatusOr<int> PerfEventParanoid();

// HasPerfmonCapability()
//
// Whether this process has CAP_PERFMON or CAP_SYS_ADMIN in its effective
// set. (In a user namespace this can be true and still not be enough; see
// PerfEventOptions::exclude_kernel.)
bool HasPerfmonCapability();

// DefaultExcludeKernel()
//
// True when kernel samples would be refused: perf_event_paranoid >= 2
// without CAP_PERFMON/CAP_SYS_ADMIN, or the paranoid file is unreadable.
bool DefaultExcludeKernel();

// MakePerfEventAttr()
//
// The perf_event_attr OpenPerfEvent() passes to the kernel, with
// exclude_kernel resolved. Fails on a period that does not fit the event.
absl::StatusOr<perf_event_attr> MakePerfEventAttr(const PerfEventOptions& options);

// OpenPerfEvent()
//
// Opens the event (O_CLOEXEC). Errors, each saying what to do:
//   EACCES/EPERM   -> PermissionDenied naming perf_event_paranoid's value
//                     and the fix (lower it, or CAP_PERFMON/CAP_SYS_ADMIN)
//   ESRCH          -> NotFound "no process PID"
//   ENOENT/ENODEV/EOPNOTSUPP on a hardware event
//                  -> FailedPrecondition "not available on this machine: no PMU"
//   ENOSYS, other ENOENT/ENODEV
//                  -> FailedPrecondition "perf events unavailable here; use
//                     the timer engines (itimer, ctimer)"
//   EMFILE/ENFILE  -> ResourceExhausted "raise ulimit -n"
//   EINVAL         -> InvalidArgument (e.g. frequency above the kernel max)
absl::StatusOr<ScopedFd> OpenPerfEvent(const PerfEventOptions& options);

// PerfEventOpenError()
//
// The Status OpenPerfEvent() returns for `error_number` (exposed so tests
// and callers that call the syscall themselves give the same messages).
absl::Status PerfEventOpenError(int error_number, const PerfEventOptions& options);

// KnownPerfEventNames()
//
// The names ParsePerfEvent() takes, comma-separated, for error messages.
std::string KnownPerfEventNames();

// Implementation details follow.

namespace perf_internal {

inline PerfEventSpec MakeSpec(absl::string_view name, uint32_t type, uint64_t config,
                              bool time_based, bool hardware, uint64_t default_period,
                              absl::string_view description) {
  PerfEventSpec spec;
  spec.name = std::string(name);
  spec.type = type;
  spec.config = config;
  spec.time_based = time_based;
  spec.hardware = hardware;
  spec.default_period = default_period;
  spec.description = std::string(description);
  return spec;
}

inline uint64_t HwCacheConfig(uint64_t cache, uint64_t op, uint64_t result) {
  return cache | (op << 8) | (result << 16);
}

inline std::string KnownEventNames() {
  std::vector<std::string> names;
  for (const PerfEventSpec& spec : KnownPerfEvents()) names.push_back(spec.name);
  return absl::StrJoin(names, ", ");
}

inline std::string TargetName(const PerfEventOptions& options) {
  if (options.tid == 0) return "this process";
  return absl::StrCat("process/thread ", options.tid);
}

}  // namespace perf_internal

inline std::string KnownPerfEventNames() { return perf_internal::KnownEventNames(); }

inline const std::vector<PerfEventSpec>& KnownPerfEvents() {
  using perf_internal::HwCacheConfig;
  using perf_internal::MakeSpec;
  static const std::vector<PerfEventSpec>* const kEvents = new std::vector<PerfEventSpec>{
      MakeSpec("cpu", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK, true, false, 10000000,
               "CPU time (cpu-clock), sampled every interval of on-CPU time"),
      MakeSpec("task-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, true, false,
               10000000, "CPU time of the task (task-clock)"),
      MakeSpec("page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS, false, false, 1,
               "page faults, where memory is first touched"),
      MakeSpec("minor-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MIN, false, false,
               1, "minor page faults (no I/O)"),
      MakeSpec("major-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS_MAJ, false, false,
               1, "major page faults (read from disk)"),
      MakeSpec("context-switches", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES, false,
               false, 1, "context switches: where threads block or are preempted"),
      MakeSpec("cpu-migrations", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS, false, false,
               1, "moves of a thread from one CPU to another"),
      MakeSpec("cycles", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES, false, true, 10000000,
               "CPU cycles (hardware PMU)"),
      MakeSpec("instructions", PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, false, true,
               10000000, "retired instructions (hardware PMU)"),
      MakeSpec("cache-references", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_REFERENCES, false,
               true, 100000, "last-level cache accesses (hardware PMU)"),
      MakeSpec("cache-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES, false, true,
               10000, "last-level cache misses (hardware PMU)"),
      MakeSpec("branches", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_INSTRUCTIONS, false, true,
               1000000, "retired branch instructions (hardware PMU)"),
      MakeSpec("branch-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_BRANCH_MISSES, false, true,
               10000, "mispredicted branches (hardware PMU)"),
      MakeSpec("L1-dcache-load-misses", PERF_TYPE_HW_CACHE,
               HwCacheConfig(PERF_COUNT_HW_CACHE_L1D, PERF_COUNT_HW_CACHE_OP_READ,
                             PERF_COUNT_HW_CACHE_RESULT_MISS),
               false, true, 10000, "L1 data cache load misses (hardware PMU)"),
  };
  return *kEvents;
}

inline absl::StatusOr<PerfEventSpec> ParsePerfEvent(absl::string_view name) {
  std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (key == "cpu-clock") key = "cpu";
  if (key == "faults") key = "page-faults";
  if (key == "cs") key = "context-switches";
  if (key == "migrations") key = "cpu-migrations";
  if (key == "cpu-cycles") key = "cycles";
  if (key == "branch-instructions") key = "branches";
  for (const PerfEventSpec& spec : KnownPerfEvents()) {
    if (absl::AsciiStrToLower(spec.name) == key) return spec;
  }
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no event given; use one of: ", perf_internal::KnownEventNames()));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown event '", name,
                                                 "'; use one of: ",
                                                 perf_internal::KnownEventNames(),
                                                 " (`flamekit list` shows which this machine has)"));
}

inline absl::StatusOr<PerfPeriod> ParsePerfInterval(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad interval '", text, "': ", why,
        "; give a duration such as 10ms, 500us or 1s, or a positive event count such as 10000"));
  };
  if (t.empty()) return bad("empty");
  uint64_t count = 0;
  if (absl::SimpleAtoi(t, &count)) {
    if (count == 0) return bad("must be positive");
    return PerfPeriod::Count(count);
  }
  if (t[0] == '-') return bad("must be positive");
  absl::Duration d;
  if (!absl::ParseDuration(t, &d)) return bad("not a duration or a count");
  if (d <= absl::ZeroDuration()) return bad("must be positive");
  if (d < absl::Microseconds(10)) return bad("shorter than 10us");
  return PerfPeriod::Interval(d);
}

inline absl::StatusOr<PerfPeriod> ParsePerfFrequency(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  uint64_t multiplier = 1;
  if (!t.empty() && (t.back() == 'k' || t.back() == 'K')) {
    multiplier = 1000;
    t.remove_suffix(1);
  }
  uint64_t hz = 0;
  if (!absl::SimpleAtoi(t, &hz) || hz == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad frequency '", text, "'; give a positive number of samples per second, e.g. 99 or 999"));
  }
  hz *= multiplier;
  absl::StatusOr<int64_t> max_rate =
      ReadIntFile("/proc/sys/kernel/perf_event_max_sample_rate");
  if (max_rate.ok() && *max_rate > 0 && hz > static_cast<uint64_t>(*max_rate)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "frequency ", hz, " Hz is above this kernel's limit of ", *max_rate,
        " (/proc/sys/kernel/perf_event_max_sample_rate); ask for less, e.g. -F 999"));
  }
  return PerfPeriod::Frequency(hz);
}

inline absl::StatusOr<ResolvedPerfPeriod> ResolvePeriod(const PerfEventSpec& event,
                                                        const PerfPeriod& period) {
  ResolvedPerfPeriod out;
  if (period.frequency_hz > 0) {
    out.value = period.frequency_hz;
    out.is_frequency = true;
  } else if (period.interval > absl::ZeroDuration()) {
    if (!event.time_based) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event '", event.name, "' counts events, not time: give -i a count such as ",
          event.default_period, " instead of ", absl::FormatDuration(period.interval)));
    }
    out.value = static_cast<uint64_t>(absl::ToInt64Nanoseconds(period.interval));
  } else if (period.count > 0) {
    out.value = period.count;  // for clock events: nanoseconds
  } else {
    out.value = event.default_period;
  }
  if (out.value == 0) return absl::InvalidArgumentError("the sampling period must be positive");
  return out;
}

inline absl::StatusOr<int> PerfEventParanoid() {
  absl::StatusOr<int64_t> value =
      ReadIntFile("/proc/sys/kernel/perf_event_paranoid");
  if (!value.ok()) {
    return absl::NotFoundError(absl::StrCat(
        "cannot read /proc/sys/kernel/perf_event_paranoid (", value.status().message(),
        "): this kernel may have no perf events"));
  }
  return static_cast<int>(*value);
}

inline bool HasPerfmonCapability() {
  absl::StatusOr<std::string> status = ReadSmallFile("/proc/self/status", 1 << 16);
  if (!status.ok()) return false;
  absl::string_view text = *status;
  size_t pos = text.find("CapEff:");
  if (pos == absl::string_view::npos) return false;
  absl::string_view rest = text.substr(pos + 7);
  rest = rest.substr(0, rest.find('\n'));
  uint64_t caps = 0;
  if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(rest), &caps)) return false;
  constexpr int kCapSysAdmin = 21;
  constexpr int kCapPerfmon = 38;
  return (caps & (uint64_t{1} << kCapSysAdmin)) != 0 ||
         (caps & (uint64_t{1} << kCapPerfmon)) != 0;
}

inline bool DefaultExcludeKernel() {
  absl::StatusOr<int> paranoid = PerfEventParanoid();
  if (!paranoid.ok()) return true;
  if (*paranoid < 2) return false;
  return !HasPerfmonCapability();
}

inline absl::StatusOr<perf_event_attr> MakePerfEventAttr(const PerfEventOptions& options) {
  absl::StatusOr<ResolvedPerfPeriod> period = ResolvePeriod(options.event, options.period);
  if (!period.ok()) return period.status();
  perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = options.event.type;
  attr.config = options.event.config;
  if (period->is_frequency) {
    attr.freq = 1;
    attr.sample_freq = period->value;
  } else {
    attr.sample_period = period->value;
  }
  attr.sample_type = options.sample_type;
  attr.disabled = options.disabled ? 1 : 0;
  attr.enable_on_exec = options.enable_on_exec ? 1 : 0;
  attr.inherit = options.inherit ? 1 : 0;
  bool exclude_kernel = options.exclude_kernel.has_value() ? *options.exclude_kernel
                                                           : DefaultExcludeKernel();
  attr.exclude_kernel = exclude_kernel ? 1 : 0;
  attr.exclude_hv = 1;
  if (exclude_kernel) attr.exclude_callchain_kernel = 1;
  attr.mmap = options.record_mmap ? 1 : 0;
  attr.mmap2 = options.record_mmap ? 1 : 0;
  attr.comm = options.record_comm ? 1 : 0;
  attr.task = options.record_task ? 1 : 0;
  attr.sample_id_all = 1;  // side-band records carry TID/TIME too
  attr.context_switch = options.record_switch ? 1 : 0;
  if (options.clockid >= 0) {
    attr.use_clockid = 1;
    attr.clockid = options.clockid;
  }
  if (options.wakeup_watermark_bytes > 0) {
    attr.watermark = 1;
    attr.wakeup_watermark = options.wakeup_watermark_bytes;
  } else {
    attr.wakeup_events = 1;
  }
  if (options.max_callchain > 0) attr.sample_max_stack = options.max_callchain;
  if (options.exclude_callchain_user) attr.exclude_callchain_user = 1;
  if (options.sample_type & PERF_SAMPLE_STACK_USER) {
    if (options.user_stack_bytes == 0 || options.user_stack_bytes % 8 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "user_stack_bytes must be a positive multiple of 8 with PERF_SAMPLE_STACK_USER, not ",
          options.user_stack_bytes));
    }
    attr.sample_stack_user = options.user_stack_bytes;
  }
  if (options.sample_type & PERF_SAMPLE_REGS_USER) {
    if (options.sample_regs_user == 0) {
      return absl::InvalidArgumentError(
          "sample_regs_user must name at least one register with PERF_SAMPLE_REGS_USER");
    }
    attr.sample_regs_user = options.sample_regs_user;
  }
  return attr;
}

inline absl::Status PerfEventOpenError(int error_number, const PerfEventOptions& options) {
  const std::string what = absl::StrCat("perf_event_open(event=", options.event.name,
                                        ", ", perf_internal::TargetName(options), ")");
  const std::string err = absl::StrCat(strerror(error_number), " (errno ", error_number, ")");
  switch (error_number) {
    case EACCES:
    case EPERM: {
      absl::StatusOr<int> paranoid = PerfEventParanoid();
      std::string level = paranoid.ok() ? absl::StrCat(*paranoid) : std::string("unknown");
      return absl::PermissionDeniedError(absl::StrCat(
          what, ": ", err, ": perf_event_paranoid is ", level,
          "; to allow it, lower it (sysctl kernel.perf_event_paranoid=1, or -1 for kernel "
          "frames and all processes) or run with CAP_PERFMON or CAP_SYS_ADMIN; profiling "
          "another user's process also needs CAP_SYS_PTRACE or the same user"));
    }
    case ESRCH:
      return absl::NotFoundError(absl::StrCat(
          what, ": no process ", options.tid,
          " (it does not exist or has exited); check the PID with `ps` or use --name"));
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(absl::StrCat(
          what, ": ", err,
          ": too many open files (one perf event per thread); raise ulimit -n"));
    case ENOENT:
    case ENODEV:
    case EOPNOTSUPP:
      if (options.event.hardware) {
        return absl::FailedPreconditionError(absl::StrCat(
            what, ": ", err, ": event '", options.event.name,
            "' is not available on this machine: no PMU (hardware counters are "
            "missing, e.g. in most VMs); use a software event such as cpu, "
            "page-faults or context-switches"));
      }
      [[fallthrough]];
    case ENOSYS:
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": ", err,
          ": perf events unavailable here; use the timer engines (itimer, ctimer) "
          "of the embedded profiler instead"));
    case EINVAL:
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": ", err,
          ": the kernel refused these settings; try a lower frequency or a longer "
          "interval (see /proc/sys/kernel/perf_event_max_sample_rate) or another event"));
    case EBUSY:
      return absl::UnavailableError(absl::StrCat(
          what, ": ", err, ": the counter is in use by another tool; try again later"));
    case E2BIG:
      return absl::InternalError(absl::StrCat(
          what, ": ", err, ": this kernel does not know this perf_event_attr size"));
    default:
      return absl::ErrnoToStatus(error_number, what);
  }
}

inline absl::StatusOr<ScopedFd> OpenPerfEvent(const PerfEventOptions& options) {
  absl::StatusOr<perf_event_attr> attr = MakePerfEventAttr(options);
  if (!attr.ok()) return attr.status();
  auto open_once = [&](perf_event_attr* a) {
    return static_cast<int>(syscall(SYS_perf_event_open, a, options.tid, options.cpu,
                                    /*group_fd=*/-1, PERF_FLAG_FD_CLOEXEC));
  };
  int fd = open_once(&*attr);
  if (fd < 0 && (errno == EACCES || errno == EPERM) && !options.exclude_kernel.has_value() &&
      attr->exclude_kernel == 0) {
    // We guessed kernel frames were allowed (e.g. root in a user namespace,
    // whose capabilities do not count for perf): retry without them.
    attr->exclude_kernel = 1;
    attr->exclude_callchain_kernel = 1;
    fd = open_once(&*attr);
  }
  if (fd < 0) return PerfEventOpenError(errno, options);
  return ScopedFd(fd);
}

}  // namespace flamekit

#endif  // FLAMEKIT_PERF_PERF_EVENT_H_
