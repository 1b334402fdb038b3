// SPDX-License-Identifier: Apache-2.0
// File: offcpu_switches.h
//
// attach_internal::OffCpuSwitches turns one thread's context switches into
// weighted off-CPU stacks for `record -e wall PID`. Its inputs come from
// one software event per thread (PERF_COUNT_SW_CONTEXT_SWITCHES,
// sample_period 1, attr.context_switch, CLOCK_MONOTONIC timestamps):
//   - the event's sample at switch-out: the thread's stack as it left the
//     CPU (kernel and user frames, built by SampleStacks);
//   - PERF_RECORD_SWITCH out (MISC_SWITCH_OUT_PREEMPT: still runnable) and
//     in: the interval the thread spent off the CPU.
// Each interval becomes one folded sample: the stack, then the state frame
// "[runnable]" (preempted), "[syscall NAME]" (it blocked in a system call:
// syscall_site.h reads which) or "[sleeping]" (blocked elsewhere, or the
// call is unknown), weighted by the interval in units of the cpu-clock interval, so
// on-CPU samples (weight 1 each) and off-CPU time add up to about
// threads x duration. Sub-unit remainders are carried per thread (a 50 us
// futex wait at a 1 ms unit counts 1/20 of a unit on average).
//
// Without kernel sampling (perf_event_paranoid 2 and no CAP_PERFMON) the
// kernel drops the switch-out samples (they are taken in kernel mode) but
// still writes the switch records: intervals are then folded stackless,
// under kNoStackFrameName, and counted (stackless_intervals()) so the
// caller can say so once. An interval open at the start of the capture
// (the thread was already off CPU) has no switch-out: from Start() to its
// first switch-in it is folded under kBeforeCaptureFrameName, as is the
// whole capture of a followed thread with no switch and no on-CPU sample
// (idle throughout); one open at the end is closed by Finish(). Where the
// session read how such a thread waited at the start (SetBefore():
// blocked_threads.h), that time is folded under its user stack and state
// instead ("[syscall epoll_wait]"), or under kBeforeCaptureFrameName with
// that state when no stack could be read.
//
// Thread-compatible: used by the AttachSession's thread only. Not for
// signal handlers (allocates).
//
// Example:
//
//   attach_internal::OffCpuSwitches off(/*unit_ns=*/1000000);
//   off.OnSwitchOutSample(raw, sample.time);     // from the sink
//   off.OnSwitch(record, folder);                // from the sink
//   off.Finish(MonotonicNowNs(), folder);
//   off.AddStacklessTo(profile, per_thread, thread_name);

#ifndef FLAMEKIT_ATTACH_OFFCPU_SWITCHES_H_
#define FLAMEKIT_ATTACH_OFFCPU_SWITCHES_H_

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "flamekit/base/frame_kind.h"
#include "flamekit/collect/frame_name.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/collect/thread_state.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/perf/perf_record.h"
#include "flamekit/profile/profile.h"

namespace flamekit {
namespace attach_internal {

// The frame under off-CPU time whose stack the kernel did not give.
inline constexpr char kNoStackFrameName[] = "[off-CPU, stack needs kernel sampling]";

// The frame under off-CPU time that began before the capture did.
inline constexpr char kBeforeCaptureFrameName[] = "[off-CPU since before the capture]";

// A switch-out sample belongs to the SWITCH_OUT record at most this far
// after it (both are written in the same schedule() call; measured gaps
// are a few microseconds).
inline constexpr uint64_t kSwitchSampleSlackNs = 1000 * 1000;

// MonotonicNowNs()
//
// CLOCK_MONOTONIC in nanoseconds: the clock the switch event stamps with.
inline uint64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// ConfigureSwitchEvent()
//
// *out = `base` (the cpu-clock event of every thread) turned into the
// context-switch event: sample_period 1, PERF_RECORD_SWITCH, CLOCK_MONOTONIC
// stamps, no mmap/comm/task records (the cpu event has them). `kernel`:
// whether kernel sampling is allowed (unset: as `base` says, else as the
// machine allows); without it the samples never come, so only TID|TIME is
// asked for the switch records.
inline void ConfigureSwitchEvent(const PerfEventOptions& base, PerfEventOptions* out,
                                 std::optional<bool> kernel = std::nullopt) {
  *out = base;
  PerfEventSpec spec;
  spec.name = "context-switches";
  spec.type = PERF_TYPE_SOFTWARE;
  spec.config = PERF_COUNT_SW_CONTEXT_SWITCHES;
  spec.time_based = false;
  spec.default_period = 1;
  out->event = spec;
  out->period = PerfPeriod::Count(1);
  out->record_mmap = false;
  out->record_comm = false;
  out->record_task = false;
  out->record_switch = true;
  out->clockid = CLOCK_MONOTONIC;
  const bool allowed =
      kernel.has_value() ? *kernel : !base.exclude_kernel.value_or(DefaultExcludeKernel());
  // Explicit, so a refusal comes back to the caller instead of the silent
  // retry without kernel frames inside OpenPerfEvent().
  out->exclude_kernel = !allowed;
  if (!allowed) {
    out->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
    out->exclude_callchain_user = false;
    out->user_stack_bytes = 0;
    out->sample_regs_user = 0;
  }
}

class OffCpuSwitches {
 public:
  // `unit_ns`: the weight unit (the cpu-clock interval), > 0.
  explicit OffCpuSwitches(uint64_t unit_ns) : unit_ns_(unit_ns == 0 ? 1 : unit_ns) {}

  // OnSwitchOutSample()
  //
  // The stack of a context-switch sample at `time`; kept until the
  // thread's SWITCH_OUT record. Copies what it needs from `raw`.
  // `blocked_state`: the state frame if the switch was not a preemption
  // (a SyscallState() from the code at the user pc, or kSleepingState).
  void OnSwitchOutSample(const RawSample& raw, uint64_t time, StackFolder& folder,
                         ThreadStateKey blocked_state = kSleepingState);

  // OnSwitch()
  //
  // Out: opens the thread's off-CPU interval; in: closes it and folds it
  // into `folder` (or the stackless totals).
  void OnSwitch(const PerfSwitchRecord& record, StackFolder& folder);

  // Start()
  //
  // The capture began at `start_time` (CLOCK_MONOTONIC ns; the events
  // were enabled just before).
  void Start(uint64_t start_time) { start_ns_ = start_time; }

  // SetBefore()
  //
  // How thread `tid` waited when the capture started: its user frames
  // (leaf first; may be empty) and state. Its off-CPU time from Start()
  // to its first switch-in is then folded under them.
  void SetBefore(uint32_t tid, std::vector<uint64_t> pcs, bool truncated, ThreadStateKey state) {
    Before& b = before_at_start_[tid];
    b.pcs = std::move(pcs);
    b.truncated = truncated;
    b.state = state;
  }

  // Finish()
  //
  // Closes every open interval at `end_time` (CLOCK_MONOTONIC ns). Each of
  // `followed` (the threads with a switch event) that neither switched nor
  // has an on-CPU sample in `folder` was off CPU throughout.
  void Finish(uint64_t end_time, StackFolder& folder,
              const std::vector<uint32_t>& followed = {});

  // AddStacklessTo()
  //
  // Adds the stackless off-CPU time: [thread root,] kNoStackFrameName,
  // state frame.
  void AddStacklessTo(Profile& profile, bool per_thread,
                      const std::function<std::string(uint32_t)>& thread_name) const;

  uint64_t intervals() const { return intervals_; }
  uint64_t stackless_intervals() const { return stackless_intervals_; }
  uint64_t off_cpu_ns() const { return off_cpu_ns_; }

 private:
  struct Thread {
    std::vector<uint64_t> pcs;
    std::vector<uint64_t> stack_words;
    size_t user_leaf = 0;
    bool truncated = false;
    bool has_stack = false;
    uint64_t stack_time = 0;
    bool out = false;
    uint64_t out_time = 0;
    ThreadStateKey state = kSleepingState;
    ThreadStateKey blocked_state = kSleepingState;  // from the sample
    uint64_t carry_ns = 0;
    bool seen = false;  // any record of this thread yet
  };
  struct Before {
    std::vector<uint64_t> pcs;
    bool truncated = false;
    ThreadStateKey state = kSleepingState;
  };
  void Close(uint32_t tid, Thread& t, uint64_t end, StackFolder& folder);
  // Off CPU from Start() to `end` with no switch-out seen.
  void AddBefore(uint32_t tid, Thread& t, uint64_t end, StackFolder& folder);

  const uint64_t unit_ns_;
  absl::flat_hash_map<uint32_t, Thread> threads_;
  // (tid, state) -> weight of intervals without a stack.
  absl::flat_hash_map<std::pair<uint32_t, ThreadStateKey>, uint64_t> stackless_;
  // (tid, state) -> weight of off-CPU time that began before the capture
  // and has no stack.
  absl::flat_hash_map<std::pair<uint32_t, ThreadStateKey>, uint64_t> before_;
  // tid -> how it waited at the start (SetBefore()).
  absl::flat_hash_map<uint32_t, Before> before_at_start_;
  uint64_t start_ns_ = 0;
  uint64_t intervals_ = 0;
  uint64_t stackless_intervals_ = 0;
  uint64_t off_cpu_ns_ = 0;
};

// Implementation details follow.

inline void OffCpuSwitches::OnSwitchOutSample(const RawSample& raw, uint64_t time,
                                              StackFolder& folder,
                                              ThreadStateKey blocked_state) {
  Thread& t = threads_[raw.tid];
  t.seen = true;
  // Still "out": the SWITCH_IN was lost (ring full); the thread ran again
  // before this switch, so the old interval ended no later than now.
  if (t.out) Close(raw.tid, t, time, folder);
  t.pcs.assign(raw.pcs.begin(), raw.pcs.end());
  t.stack_words.assign(raw.stack_words.begin(), raw.stack_words.end());
  t.user_leaf = raw.user_leaf;
  t.truncated = raw.truncated;
  t.has_stack = !t.pcs.empty();
  t.stack_time = time;
  t.blocked_state = blocked_state;
}

inline void OffCpuSwitches::OnSwitch(const PerfSwitchRecord& record, StackFolder& folder) {
  Thread& t = threads_[record.tid];
  if (!t.seen && !record.out) AddBefore(record.tid, t, record.time, folder);
  t.seen = true;
  if (record.out) {
    if (t.out) Close(record.tid, t, record.time, folder);
    t.out = true;
    t.out_time = record.time;
    // Only this switch's own sample describes it.
    if (t.has_stack && (record.time < t.stack_time ||
                        record.time - t.stack_time > kSwitchSampleSlackNs)) {
      t.has_stack = false;
    }
    t.state = record.preempt ? kRunnableState
                             : (t.has_stack ? t.blocked_state : kSleepingState);
    return;
  }
  if (t.out) Close(record.tid, t, record.time, folder);
}

inline void OffCpuSwitches::Finish(uint64_t end_time, StackFolder& folder,
                                   const std::vector<uint32_t>& followed) {
  for (auto& [tid, t] : threads_) {
    if (t.out) Close(tid, t, end_time, folder);
  }
  for (uint32_t tid : followed) {
    auto it = threads_.find(tid);
    if ((it != threads_.end() && it->second.seen) || folder.sampled_thread(tid)) continue;
    AddBefore(tid, threads_[tid], end_time, folder);
  }
}

inline void OffCpuSwitches::AddBefore(uint32_t tid, Thread& t, uint64_t end,
                                      StackFolder& folder) {
  if (start_ns_ == 0 || end <= start_ns_) return;
  const uint64_t total = t.carry_ns + (end - start_ns_);
  off_cpu_ns_ += end - start_ns_;
  t.carry_ns = total % unit_ns_;
  const uint64_t weight = total / unit_ns_;
  if (weight == 0) return;
  auto known = before_at_start_.find(tid);
  if (known == before_at_start_.end()) {
    before_[{tid, kSleepingState}] += weight;
    return;
  }
  if (known->second.pcs.empty()) {
    before_[{tid, known->second.state}] += weight;
    return;
  }
  RawSample raw;
  raw.tid = tid;
  raw.pcs = known->second.pcs;
  raw.user_leaf = 0;  // user frames only: the kernel's are not known
  raw.truncated = known->second.truncated;
  raw.state = known->second.state;
  raw.weight = weight;
  folder.Add(raw);
}

inline void OffCpuSwitches::Close(uint32_t tid, Thread& t, uint64_t end, StackFolder& folder) {
  t.out = false;
  const bool has_stack = t.has_stack;
  t.has_stack = false;
  if (end <= t.out_time) return;
  const uint64_t ns = end - t.out_time;
  ++intervals_;
  off_cpu_ns_ += ns;
  const uint64_t total = t.carry_ns + ns;
  const uint64_t weight = total / unit_ns_;
  t.carry_ns = total % unit_ns_;
  if (!has_stack) ++stackless_intervals_;
  if (weight == 0) return;
  if (!has_stack) {
    stackless_[{tid, t.state}] += weight;
    return;
  }
  RawSample raw;
  raw.tid = tid;
  raw.pcs = t.pcs;
  raw.user_leaf = t.user_leaf;
  raw.stack_words = t.stack_words;
  raw.truncated = t.truncated;
  raw.state = t.state;
  raw.weight = weight;
  folder.Add(raw);
}

inline void OffCpuSwitches::AddStacklessTo(
    Profile& profile, bool per_thread,
    const std::function<std::string(uint32_t)>& thread_name) const {
  std::vector<FrameId> stack;
  for (const auto& [key, weight] : stackless_) {
    stack.clear();
    if (per_thread) {
      stack.push_back(profile.InternFrame(
          ThreadFrameName(thread_name ? thread_name(key.first) : "", key.first),
          FrameKind::kThread));
    }
    stack.push_back(profile.InternFrame(kNoStackFrameName, FrameKind::kKernel));
    FrameName state = ThreadStateFrame(key.second);
    stack.push_back(profile.InternFrame(state.name, state.kind));
    profile.AddStack(stack, weight);
  }
  for (const auto& [key, weight] : before_) {
    const uint32_t tid = key.first;
    stack.clear();
    if (per_thread) {
      stack.push_back(profile.InternFrame(ThreadFrameName(thread_name ? thread_name(tid) : "", tid),
                                          FrameKind::kThread));
    }
    stack.push_back(profile.InternFrame(kBeforeCaptureFrameName, FrameKind::kKernel));
    FrameName state = ThreadStateFrame(key.second);
    stack.push_back(profile.InternFrame(state.name, state.kind));
    profile.AddStack(stack, weight);
  }
}

}  // namespace attach_internal
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_OFFCPU_SWITCHES_H_
