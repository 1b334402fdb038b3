// SPDX-License-Identifier: Apache-2.0
// File: thread_state.h
//
// The thread state a wall-clock sample carries ("running", or blocked in a
// system call), as one 64-bit key the StackFolder folds by, and the leaf
// frame it becomes in a profile ("[running]", "[syscall futex]"). Pure
// functions: safe from any thread; ThreadStateFrame() allocates, so not
// from a signal handler.
//
// Example:
//
//   ThreadStateKey key = SyscallState(202);        // futex
//   FrameName leaf = ThreadStateFrame(key);         // "[syscall futex]"

#ifndef FLAMEKIT_COLLECT_THREAD_STATE_H_
#define FLAMEKIT_COLLECT_THREAD_STATE_H_

#include <stdint.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "flamekit/collect/frame_name.h"

namespace flamekit {

using ThreadStateKey = uint64_t;
inline constexpr ThreadStateKey kNoThreadState = 0;  // the event has no state
inline constexpr ThreadStateKey kRunningState = 1;

// SyscallState()
//
// Blocked in system call `number` (-1: unknown). The number is kept as a
// uint32, so an unknown one stays distinct from running.
inline constexpr ThreadStateKey SyscallState(int32_t number) {
  return 2 + static_cast<uint64_t>(static_cast<uint32_t>(number));
}
// Off CPU without a known system call (attach mode's wall clock, from
// context switches): preempted while runnable, or blocked/sleeping. Above
// every SyscallState() key.
inline constexpr ThreadStateKey kRunnableState = uint64_t{1} << 33;
inline constexpr ThreadStateKey kSleepingState = kRunnableState + 1;
inline constexpr bool IsSyscallState(ThreadStateKey key) {
  return key >= 2 && key < kRunnableState;
}

// SyscallName()
//
// A few x86_64/aarch64 system call names for the state frame; the number
// as text for the others.
std::string SyscallName(int32_t number);

// ThreadStateFrame()
//
// "[running]" (FrameKind::kUser) or "[syscall NAME]" / "[syscall]" /
// "[runnable]" / "[sleeping]" (FrameKind::kKernel).
FrameName ThreadStateFrame(ThreadStateKey key);

// Implementation details follow.

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

inline FrameName ThreadStateFrame(ThreadStateKey key) {
  if (key == kRunnableState) return FrameName{"[runnable]", FrameKind::kKernel};
  if (key == kSleepingState) return FrameName{"[sleeping]", FrameKind::kKernel};
  if (!IsSyscallState(key)) return FrameName{"[running]", FrameKind::kUser};
  const int32_t number = static_cast<int32_t>(static_cast<uint32_t>(key - 2));
  return FrameName{number < 0 ? std::string("[syscall]")
                              : absl::StrCat("[syscall ", SyscallName(number), "]"),
                   FrameKind::kKernel};
}

}  // namespace flamekit

#endif  // FLAMEKIT_COLLECT_THREAD_STATE_H_
