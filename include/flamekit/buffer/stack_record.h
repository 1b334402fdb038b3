// SPDX-License-Identifier: Apache-2.0
// File: stack_record.h
//
// StackRecord is one sample as a signal handler captured it: the thread, the
// time, the event weight, and the stack as raw return addresses (leaf first).
// A plain, trivially copyable struct of fixed size so that a handler can fill
// one on its own stack or directly in a StackRing slot with no allocation.
// Async-signal-safe to fill and copy; carries no pointers to owned memory.
//
// Example:
//
//   flamekit::StackRecord record;
//   record.tid = tid;
//   record.frames[0] = pc;
//   record.frame_count = 1;

#ifndef FLAMEKIT_BUFFER_STACK_RECORD_H_
#define FLAMEKIT_BUFFER_STACK_RECORD_H_

#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "flamekit/base/config.h"

namespace flamekit {

// What a thread was doing when it was sampled. The cpu/ctimer/itimer engines
// only sample running threads (kRunning or kUnknown); the wall engine also
// sees threads blocked in a system call.
enum class ThreadState : uint8_t {
  kUnknown = 0,
  kRunning,   // executing user code
  kSyscall,   // blocked in (or about to restart) a system call
};

// The largest number of frames a record holds (FLAMEKIT_MAX_FRAMES).
inline constexpr size_t kMaxStackFrames = FLAMEKIT_MAX_FRAMES;
static_assert(kMaxStackFrames >= 2 && kMaxStackFrames <= 4096,
              "FLAMEKIT_MAX_FRAMES must be in [2, 4096]");

// Flags of StackRecord::flags.
inline constexpr uint8_t kStackRecordTruncated = 1;  // deeper frames were cut
inline constexpr uint8_t kStackRecordNoBounds = 2;   // thread's stack bounds
                                                     // unknown: leaf only

struct StackRecord {
  // Kernel thread id of the sampled thread.
  uint32_t tid = 0;
  // Number of valid entries of frames[], at most kMaxStackFrames.
  uint32_t frame_count = 0;
  // CLOCK_MONOTONIC time of the sample, in nanoseconds.
  uint64_t timestamp_ns = 0;
  // How many events the sample stands for (1 for timers; the sampling
  // period in events for counters is applied by the reader).
  uint64_t weight = 1;
  // The stack pointer at the sample; lets the reader find the thread's stack
  // mapping when its bounds were not known yet (kStackRecordNoBounds).
  uint64_t sp = 0;
  // System call number when state == kSyscall, else -1.
  int32_t syscall_number = -1;
  ThreadState state = ThreadState::kUnknown;
  // kStackRecordTruncated | kStackRecordNoBounds.
  uint8_t flags = 0;
  // How many words of the stack, from the leaf's sp up, follow the frames
  // (frames[frame_count..frame_count + leaf_stack_words)). A leaf without a
  // frame of its own (a system call wrapper) keeps its return address there,
  // and the frame-pointer walk skips its caller; the reader finds it.
  uint16_t leaf_stack_words = 0;
  // Code addresses, leaf first: frames[0] is the interrupted pc, the rest are
  // return addresses (one past the call instruction).
  uint64_t frames[kMaxStackFrames];

  bool truncated() const { return (flags & kStackRecordTruncated) != 0; }
};

static_assert(std::is_trivially_copyable<StackRecord>::value,
              "StackRecord is copied with memcpy from signal handlers");

// Implementation details follow (none: StackRecord is a plain struct).

}  // namespace flamekit

#endif  // FLAMEKIT_BUFFER_STACK_RECORD_H_
