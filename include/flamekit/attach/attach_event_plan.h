// SPDX-License-Identifier: Apache-2.0
// File: attach_event_plan.h
//
// What perf events an AttachSession opens on each thread, decided from its
// AttachOptions before anything is opened: the options checked (PID, ring
// size, stack size, period), the ring grown to hold DWARF samples, the
// sampling event's attributes (callchain, the user-stack copy and registers
// for the rules' walk, mmap/comm/task records, wake-up watermark), and for
// `-e wall` the context-switch event beside it. Pure: no syscall but
// kill(pid, 0) and sysconf(); thread-compatible.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(AttachEventPlan plan, PlanAttachEvents(options));
//   // open plan.sampling (and plan.switches if plan.wall) on every thread

#ifndef FLAMEKIT_ATTACH_ATTACH_EVENT_PLAN_H_
#define FLAMEKIT_ATTACH_ATTACH_EVENT_PLAN_H_

#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include <cstddef>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "flamekit/attach/attach_options.h"
#include "flamekit/attach/offcpu_switches.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/unwind/copied_stack.h"
#include "flamekit/unwind/frame_pointer.h"

namespace flamekit {

struct AttachEventPlan {
  // The options with ring_pages grown for DWARF samples.
  AttachOptions options;
  // The sampling event of every thread (cpu-clock or the one asked for).
  PerfEventOptions sampling;
  // `-e wall`: the context-switch event beside it; its period is `period`.
  bool wall = false;
  PerfEventOptions switches;
  ResolvedPerfPeriod period;
};

namespace attach_internal {

// Bytes of user stack each sample copies (see kLeafStackWords).
inline constexpr uint32_t kUserStackBytes = 8 * kLeafStackWords;

}  // namespace attach_internal

// PlanAttachEvents()
//
// Errors: InvalidArgument for a bad PID, ring size, stack size or period
// (each message says what to give instead), NotFound when no process has
// the PID.
inline absl::StatusOr<AttachEventPlan> PlanAttachEvents(const AttachOptions& options) {
  if (options.pid <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad PID ", options.pid, "; give the PID of a running process"));
  }
  if (options.ring_pages == 0 || (options.ring_pages & (options.ring_pages - 1)) != 0) {
    return absl::InvalidArgumentError("ring_pages must be a power of two");
  }
  const bool rules = options.unwind != AttachUnwind::kFramePointers;
  if (rules && (options.stack_bytes < kMinAttachStackBytes ||
                options.stack_bytes > kMaxAttachStackBytes || options.stack_bytes % 8 != 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stack size ", options.stack_bytes, " bytes: give a multiple of 8 from ",
        kMinAttachStackBytes, " to ", kMaxAttachStackBytes, " (e.g. --stack-size 16k)"));
  }
  if (kill(options.pid, 0) != 0 && errno == ESRCH) {
    return absl::NotFoundError(absl::StrCat(
        "no process ", options.pid, "; check the PID with `ps` or use --name REGEX"));
  }
  AttachEventPlan plan;
  plan.options = options;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (rules) {
    // Each sample now carries stack_bytes: keep room for ~128 of them per
    // thread (at 1 kHz, 128 ms between reads; the watermark wakes us at a
    // quarter; 2 MiB per thread at 8k), whatever ring_pages says for
    // frame-pointer samples. With 32 and a half-full wake-up, a 2-core
    // machine at load 16 lost 8.6 % of a busy thread's samples at 1 kHz
    // (the reader was not scheduled in time).
    size_t want = (static_cast<size_t>(options.stack_bytes) + 512) * 128 / page;
    while (plan.options.ring_pages < want && plan.options.ring_pages < 1024) {
      plan.options.ring_pages *= 2;
    }
  }
  PerfEventOptions& e = plan.sampling;
  e.event = options.event;
  e.period = options.period;
  // Each sample also carries the top of the user stack, where a leaf that
  // keeps no frame has its return address (the folder puts its caller
  // back); for the rules' walk, more of it and the registers to start from.
  e.sample_type = kDefaultPerfSampleType | PERF_SAMPLE_STACK_USER;
  e.user_stack_bytes = attach_internal::kUserStackBytes;
  if (rules) {
    e.sample_type |= PERF_SAMPLE_REGS_USER;
    e.sample_regs_user = kUnwindRegsUserMask;
    e.user_stack_bytes = options.stack_bytes;
    // dwarf: the kernel's user chain would be thrown away; auto compares.
    e.exclude_callchain_user = options.unwind == AttachUnwind::kDwarf;
  }
  e.record_mmap = true;
  e.record_comm = true;
  e.record_task = true;
  e.enable_on_exec = options.launch_mode;
  // Created disabled; Run() enables them (launch mode: the exec does).
  e.disabled = true;
  // Unset: OpenPerfEvent() decides, and retries without kernel frames when
  // the kernel refuses them.
  e.exclude_kernel = options.exclude_kernel;
  // Wake epoll when a ring is half full; the periodic timeout reads the
  // rest. (A wake-up per sample would cost the CLI a syscall per sample.)
  e.wakeup_watermark_bytes =
      static_cast<uint32_t>(plan.options.ring_pages * page / (rules ? 4 : 2));
  // Resolve the period once so a bad one fails here with its own message.
  absl::StatusOr<ResolvedPerfPeriod> period = ResolvePeriod(options.event, options.period);
  if (!period.ok()) return period.status();
  plan.period = *period;
  if (IsWallEvent(options.event)) {
    if (period->is_frequency) {
      return absl::InvalidArgumentError(
          "-e wall weighs off-CPU time in units of the sampling interval: give --interval "
          "(e.g. -i 1ms), not --frequency");
    }
    plan.wall = true;
    attach_internal::ConfigureSwitchEvent(e, &plan.switches);
  }
  return plan;
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_ATTACH_EVENT_PLAN_H_
