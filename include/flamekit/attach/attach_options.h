// SPDX-License-Identifier: Apache-2.0
// File: attach_options.h
//
// What an AttachSession is asked to do (AttachOptions), what it reports
// while it runs (AttachProgress) and why it stopped (AttachStopReason).
// Plain values: thread-compatible, no signal-safety concerns except
// `stop`, which a signal handler may set.
//
// Example:
//
//   flamekit::AttachOptions options;
//   options.pid = 1234;
//   options.duration = absl::Seconds(30);

#ifndef FLAMEKIT_ATTACH_ATTACH_OPTIONS_H_
#define FLAMEKIT_ATTACH_ATTACH_OPTIONS_H_

#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {

// Why Run() returned.
enum class AttachStopReason {
  kNotStopped = 0,
  kDuration,       // the requested duration passed
  kStopRequested,  // *options.stop became true (Ctrl-C)
  kTargetExited,   // the target process exited
};
absl::string_view AttachStopReasonName(AttachStopReason reason);

// How user stacks are walked (`record --unwind`).
enum class AttachUnwind {
  // The kernel's frame-pointer callchain (plus the frameless-leaf repair):
  // cheap, and right for code built with frame pointers.
  kFramePointers,
  // Each sample copies the top of the user stack and its registers; the
  // session steps the copy with the .eh_frame rules of the target's files
  // (unwind/copied_stack.h). Needed for Debian's binaries.
  kDwarf,
  // Both; per sample the rules' walk where it reaches the outermost frame
  // or gets further than the frame-pointer chain (a file without frame
  // pointers), else the chain.
  kAuto,
};
absl::string_view AttachUnwindName(AttachUnwind unwind);

// Bytes of user stack a sample copies for kDwarf/kAuto by default: perf's
// default. Measured here (share of rule walks reaching the outermost frame,
// README "Profile a running process"): redis-server 99.6 % at 8k (100 % at
// 16k), xz 100 % from 2k, Debian's python3 in json 97.6 % at 8k (99.2 % at
// 16k, 99.1 % at 4k: noise of ~200 samples). 16k doubles the bytes the
// kernel copies and the rings hold per sample.
inline constexpr uint32_t kDefaultAttachStackBytes = 8192;
// Limits of --stack-size: the kernel takes at most 65528 (u16, 8-aligned).
inline constexpr uint32_t kMinAttachStackBytes = 512;
inline constexpr uint32_t kMaxAttachStackBytes = 65528;

// WallEventSpec(), IsWallEvent()
//
// `record -e wall`: wall-clock time by PID. On-CPU time comes from the
// cpu-clock event (this spec's type and config, so its period rules apply;
// each sample weighs 1 interval), off-CPU time from a context-switch event
// per thread (offcpu_switches.h), in units of the same interval.
PerfEventSpec WallEventSpec();
inline bool IsWallEvent(const PerfEventSpec& spec) { return spec.name == "wall"; }

// AttachProgress
//
// What the session has done so far; passed to on_progress and kept in
// stats().
struct AttachProgress {
  absl::Duration elapsed = absl::ZeroDuration();
  absl::Duration duration = absl::InfiniteDuration();  // as requested
  uint64_t samples = 0;
  uint64_t lost_samples = 0;     // PERF_RECORD_LOST totals
  uint64_t throttles = 0;        // PERF_RECORD_THROTTLE: the kernel slowed sampling
  uint32_t threads_followed = 0; // threads an event was opened on
  uint32_t threads_now = 0;      // of those, still open
  uint32_t threads_missed = 0;   // threads that exited before we could open them
  uint32_t threads_failed = 0;   // threads whose event could not be opened
  std::string thread_error;      // why, for the last of those
  uint64_t mmaps = 0;            // executable mappings reported during the capture
  // --unwind dwarf/auto: samples whose user stack the rules walked, and of
  // those, walks that reached the outermost frame; the rest are marked
  // "[truncated]" (copy too short, or a frame no rule passes).
  uint64_t rule_walks = 0;
  uint64_t rule_walks_complete = 0;
  uint64_t chain_walks = 0;      // samples that kept the kernel's fp chain
  AttachStopReason stop_reason = AttachStopReason::kNotStopped;
  // What the capture could not have on this machine (e.g. -e wall without
  // kernel sampling has no off-CPU stacks); the caller prints it once.
  std::string note;
};

struct AttachOptions {
  // The process to profile (its threads are found in /proc/PID/task).
  pid_t pid = 0;
  PerfEventSpec event;  // cpu-clock
  PerfPeriod period;    // the event's default when unset
  // Stop after this long; InfiniteDuration() = until stopped or the target
  // exits.
  absl::Duration duration = absl::InfiniteDuration();
  // Add a synthetic root frame per thread, FrameKind::kThread named
  // ThreadFrameName() "name tid=N" (the collapsed writer shows it as
  // "[name tid=N]").
  bool split_threads = false;
  // Data pages per thread ring (a power of two). Halved, down to 1, when
  // the locked-memory budget refuses a ring. 32: a sample with its user
  // stack copy (kUserStackBytes) is ~260 bytes, so 128 KiB hold ~0.25 s of
  // a thread at 2 kHz; with 16 pages a loaded 2-core machine lost 121 of
  // 15,115 samples (0.8 %) before the CLI drained.
  size_t ring_pages = 32;
  // How often to rescan /proc/PID/task for threads the FORK records missed,
  // and the longest wait in epoll.
  absl::Duration thread_scan_interval = absl::Milliseconds(100);
  // on_progress is called about this often from Run()'s thread.
  absl::Duration progress_interval = absl::Milliseconds(250);
  std::function<void(const AttachProgress&)> on_progress;
  // Set (by a SIGINT handler, another thread, ...) to stop Run() soon.
  const std::atomic<bool>* stop = nullptr;
  // Launch mode: the target is a child that has not exec'd yet; the events
  // start at its exec (enable_on_exec) and the symbols are reset then.
  bool launch_mode = false;
  // Leave kernel frames out (unset: as the machine allows).
  std::optional<bool> exclude_kernel;
  // How user stacks are walked, and how many bytes of stack each sample
  // copies for the rules (a multiple of 8 within the limits above).
  AttachUnwind unwind = AttachUnwind::kAuto;
  uint32_t stack_bytes = kDefaultAttachStackBytes;
};

// Implementation details follow.

inline PerfEventSpec WallEventSpec() {
  PerfEventSpec spec;  // cpu-clock
  spec.name = "wall";
  spec.description =
      "wall-clock time: on-CPU (cpu-clock) plus off-CPU from context switches, by PID";
  return spec;
}

inline absl::string_view AttachStopReasonName(AttachStopReason reason) {
  switch (reason) {
    case AttachStopReason::kNotStopped: return "running";
    case AttachStopReason::kDuration: return "duration reached";
    case AttachStopReason::kStopRequested: return "stopped by request";
    case AttachStopReason::kTargetExited: return "target exited";
  }
  return "unknown";
}

inline absl::string_view AttachUnwindName(AttachUnwind unwind) {
  switch (unwind) {
    case AttachUnwind::kFramePointers: return "fp";
    case AttachUnwind::kDwarf: return "dwarf";
    case AttachUnwind::kAuto: return "auto";
  }
  return "unknown";
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_ATTACH_OPTIONS_H_
