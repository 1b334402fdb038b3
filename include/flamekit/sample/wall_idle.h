// SPDX-License-Identifier: Apache-2.0
// File: wall_idle.h
//
// What lets the wall engine leave idle threads alone. A wall sample of a
// thread blocked in a system call comes out the same for as long as the
// thread stays blocked there, and waking it every interval only to learn
// that again costs a context switch on each side and, for the calls Linux
// never restarts after a handler (poll, epoll_wait, nanosleep, ...), an
// EINTR the application has to loop on. So the handler leaves a mark for
// each sample: where a blocked thread made its call (stack pointer, the
// address of the system call instruction, the call's arguments) and its CPU
// time. Before it signals that thread again, the wall timer thread compares
// the mark with what the kernel says the thread is blocked in now
// (/proc/self/task/TID/syscall) and with its CPU clock: same call site,
// stack pointer and arguments, and hardly any CPU used since, means the
// thread has not moved, and the tick is recorded as one more sample of the
// previous stack instead.
//
// What this cannot see: a thread that, using less than the CPU allowance,
// returned from the call and made the very same call again (same
// arguments, same stack pointer) through different callers. Its ticks go
// to the old callers until it has used the allowance.
//
// The mark is found without a lookup: the wall signal's si_value carries a
// slot number (given to each thread by the timer) and a sequence number
// (so a mark is only trusted when it answers the latest signal).
//
// Thread and signal safety:
//   - WallSignalValue(), IsWallSignalValue(), ParseSyscallSite() are pure.
//   - NoteWallSample() runs in the signal handler: async-signal-safe (one
//     clock_gettime() of the thread's CPU clock when blocked, atomic stores).
//   - ReadWallMark() may run on any thread while the handler writes the
//     mark: a seqlock, a read that overlapped a write returns false.
//   - The marks are one constant-initialized global array: a late signal
//     after the engine stopped writes into memory that is always there. One
//     wall engine runs at a time (it owns its signal's handler).
//
// Example (what wall_clock_sampler.h does):
//
//   // timer thread, per tick and thread:
//   WallIdleMark mark;
//   if (ReadWallMark(slot, &mark) && mark.sequence == last_sequence &&
//       mark.site != 0 && ...) { /* still blocked where it was: no signal */ }
//   QueueSampleSignal(tid, SIGPROF, WallSignalValue(slot, ++last_sequence));

#ifndef FLAMEKIT_SAMPLE_WALL_IDLE_H_
#define FLAMEKIT_SAMPLE_WALL_IDLE_H_

#include <stdint.h>
#include <time.h>

#include <atomic>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "flamekit/unwind/ucontext_regs.h"

namespace flamekit {

// Slots for marks; threads beyond this many are always signalled.
inline constexpr uint32_t kWallIdleSlots = 4096;
inline constexpr uint32_t kNoWallSlot = 0xffff;

// A wall signal's si_value: "fkwl" in the high 32 bits, then the slot, then
// the sequence number.
inline constexpr uint64_t kWallSignalTag = 0x666b776cULL;
inline constexpr uintptr_t WallSignalValue(uint32_t slot, uint16_t sequence) {
  return static_cast<uintptr_t>((kWallSignalTag << 32) | (uint64_t{slot & 0xffff} << 16) |
                                sequence);
}
inline constexpr bool IsWallSignalValue(uintptr_t value) {
  return (static_cast<uint64_t>(value) >> 32) == kWallSignalTag;
}

// What the handler saw at the sample answering signal `sequence`.
struct WallMarkSnapshot {
  uint16_t sequence = 0;
  uint64_t sp = 0;
  uint64_t site = 0;       // address of the system call instruction; 0: running
  uint64_t args_hash = 0;  // SystemCallArgumentsHash() of the call's arguments
  uint32_t args_mask = 0;  // which arguments went into it
  uint64_t cpu_ns = 0;     // the thread's CPU time when the handler ended
};

// A blocked thread as /proc/self/task/TID/syscall shows it.
struct SyscallSite {
  int64_t number = -1;
  uint64_t args[6] = {0, 0, 0, 0, 0, 0};
  uint64_t sp = 0;
  uint64_t site = 0;  // address of the system call instruction
};

// SystemCallArgumentsHash()
//
// Mixes the arguments selected by `mask` (bit i: args[i]). Pure.
uint64_t SystemCallArgumentsHash(const uint64_t args[6], uint32_t mask);

// A clock_gettime() result in nanoseconds. Pure.
inline uint64_t TimespecNanos(const struct timespec& ts) {
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Size of the system call instruction (`syscall`, `svc #0`): the kernel
// reports the address after it, a restarted call's ucontext the address of it.
#if defined(__aarch64__)
inline constexpr uint64_t kSyscallInstructionBytes = 4;
#else
inline constexpr uint64_t kSyscallInstructionBytes = 2;
#endif

// NoteWallSample()
//
// Called by the handler after a wall sample: `signal_value` is the signal's
// si_value, `blocked`/`restarting` what InterruptedSystemCall() said.
void NoteWallSample(uintptr_t signal_value, bool blocked, bool restarting,
                    const MachineRegisters& regs, const void* ucontext);

// ReadWallMark()
//
// Copies slot `slot`'s mark; false when out of range or being written.
bool ReadWallMark(uint32_t slot, WallMarkSnapshot* mark);

// ParseSyscallSite()
//
// Reads /proc/PID/task/TID/syscall's text ("NR ARG1..ARG6 SP PC" while
// blocked in a call, "running" or "-1 SP PC" otherwise): true, with the call
// and where it was made, when blocked in one.
bool ParseSyscallSite(absl::string_view text, SyscallSite* site);

// SameBlockedCall()
//
// Whether the kernel's `now` is the call `mark` saw.
bool SameBlockedCall(const WallMarkSnapshot& mark, const SyscallSite& now);

// Implementation details follow.

namespace sample_internal {

struct alignas(64) WallIdleMark {
  std::atomic<uint32_t> version{0};  // seqlock: odd while the handler writes
  std::atomic<uint32_t> sequence{0};
  std::atomic<uint64_t> sp{0};
  std::atomic<uint64_t> site{0};
  std::atomic<uint64_t> args_hash{0};
  std::atomic<uint32_t> args_mask{0};
  std::atomic<uint64_t> cpu_ns{0};
};

// Constant-initialized: safe in signal context, never freed.
inline WallIdleMark g_wall_marks[kWallIdleSlots];

}  // namespace sample_internal

inline uint64_t SystemCallArgumentsHash(const uint64_t args[6], uint32_t mask) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ mask;
  for (int i = 0; i < 6; ++i) {
    if (((mask >> i) & 1) == 0) continue;
    h ^= args[i] + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ull;
  }
  return h ^ (h >> 31);
}

inline void NoteWallSample(uintptr_t signal_value, bool blocked, bool restarting,
                           const MachineRegisters& regs, const void* ucontext) {
  const uint32_t slot = static_cast<uint32_t>(signal_value >> 16) & 0xffff;
  if (!IsWallSignalValue(signal_value) || slot >= kWallIdleSlots) return;
  uint64_t site = 0;
  uint64_t cpu_ns = 0;
  uint64_t args_hash = 0;
  uint32_t args_mask = 0;
  if (blocked) {
    // A call being restarted has pc rewound onto the instruction; one that
    // returns EINTR has pc just past it.
    site = restarting ? regs.pc : regs.pc - kSyscallInstructionBytes;
    uint64_t args[6];
    args_mask = SystemCallArguments(ucontext, restarting, args);
    args_hash = SystemCallArgumentsHash(args, args_mask);
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) {
      cpu_ns = TimespecNanos(ts);
    } else {
      site = 0;  // no CPU time to compare with: never skip this thread
    }
  }
  sample_internal::WallIdleMark& m = sample_internal::g_wall_marks[slot];
  // Seqlock write: relaxed odd version, release fence, fields, release even.
  // One writer per slot: the thread the slot was given to (a stale signal
  // for a slot's previous owner can interleave; its mark then fails the
  // sequence or the site comparison).
  const uint32_t version = m.version.load(std::memory_order_relaxed);
  m.version.store(version + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  m.sequence.store(static_cast<uint16_t>(signal_value), std::memory_order_relaxed);
  m.sp.store(regs.sp, std::memory_order_relaxed);
  m.site.store(site, std::memory_order_relaxed);
  m.args_hash.store(args_hash, std::memory_order_relaxed);
  m.args_mask.store(args_mask, std::memory_order_relaxed);
  m.cpu_ns.store(cpu_ns, std::memory_order_relaxed);
  m.version.store(version + 2, std::memory_order_release);
}

inline bool ReadWallMark(uint32_t slot, WallMarkSnapshot* mark) {
  if (slot >= kWallIdleSlots) return false;
  const sample_internal::WallIdleMark& m = sample_internal::g_wall_marks[slot];
  // Acquire: pairs with the writer's final release store.
  const uint32_t before = m.version.load(std::memory_order_acquire);
  if (before & 1) return false;
  mark->sequence = static_cast<uint16_t>(m.sequence.load(std::memory_order_relaxed));
  mark->sp = m.sp.load(std::memory_order_relaxed);
  mark->site = m.site.load(std::memory_order_relaxed);
  mark->args_hash = m.args_hash.load(std::memory_order_relaxed);
  mark->args_mask = m.args_mask.load(std::memory_order_relaxed);
  mark->cpu_ns = m.cpu_ns.load(std::memory_order_relaxed);
  // Acquire fence: the field loads above happen before the re-check.
  std::atomic_thread_fence(std::memory_order_acquire);
  return m.version.load(std::memory_order_relaxed) == before;
}

inline bool ParseSyscallSite(absl::string_view text, SyscallSite* site) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  // NR, six arguments, SP, PC.
  if (fields.size() != 9) return false;
  if (!absl::SimpleAtoi(fields[0], &site->number) || site->number < 0) return false;
  auto hex = [](absl::string_view field, uint64_t* out) {
    return absl::ConsumePrefix(&field, "0x") && absl::SimpleHexAtoi(field, out);
  };
  for (int i = 0; i < 6; ++i) {
    if (!hex(fields[1 + i], &site->args[i])) return false;
  }
  uint64_t pc = 0;
  if (!hex(fields[7], &site->sp) || !hex(fields[8], &pc) || pc < kSyscallInstructionBytes) {
    return false;
  }
  site->site = pc - kSyscallInstructionBytes;
  return true;
}

inline bool SameBlockedCall(const WallMarkSnapshot& mark, const SyscallSite& now) {
  return mark.site != 0 && now.site == mark.site && now.sp == mark.sp &&
         SystemCallArgumentsHash(now.args, mark.args_mask) == mark.args_hash;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_WALL_IDLE_H_
