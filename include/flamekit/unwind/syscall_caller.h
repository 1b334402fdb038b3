// SPDX-License-Identifier: Apache-2.0
// File: syscall_caller.h
//
// The caller of a system call wrapper, which the frame-pointer walk skips.
// glibc's wrappers (read, poll, futex waits, ...) set up no frame, so a
// sample taken in one (every sample of a thread blocked in the kernel, and
// the cpu engine's kernel-time samples) reads the caller's frame pointer and
// loses the caller itself: "main;poll" where the code said
// "main;EventLoop::Run;poll". The wrapper's return address is still on the
// stack, within a few words of sp (0x28 bytes in glibc 2.36's cancellable
// path), and the sample keeps those words (StackRecord::leaf_stack_words).
// These helpers tell, off the signal path, whether the leaf is a system
// call site and which of the words is a return address.
//
// Thread-compatible; not for signal handlers (process_vm_readv on this
// process, so that an address that is not mapped any more is a failed read,
// never a fault).
//
// Example (the profiler's collector):
//
//   if (IsSystemCallSite(leaf_pc)) {
//     for (uint64_t word : words) {
//       if (IsExecutable(word) && FollowsCallInstruction(word)) { caller = word; break; }
//     }
//   }

#ifndef FLAMEKIT_UNWIND_SYSCALL_CALLER_H_
#define FLAMEKIT_UNWIND_SYSCALL_CALLER_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <unistd.h>

namespace flamekit {

// ReadOwnMemory()
//
// Copies n bytes at `address` of this process into `out`; false when any
// of them is not mapped readable.
bool ReadOwnMemory(uint64_t address, void* out, size_t n);

// IsSystemCallSite()
//
// Whether `pc` is where a thread stops in a system call: just after a
// `syscall` instruction, or on it (a call the kernel set up to restart).
// x86-64 only; false elsewhere.
bool IsSystemCallSite(uint64_t pc);

// FollowsCallInstruction()
//
// Whether the bytes before `address` end with an x86-64 call (e8 rel32;
// ff /2 with a register, [register], disp8, disp32 or rip-relative
// operand), as they do before every return address.
bool FollowsCallInstruction(uint64_t address);

// Implementation details follow.

inline bool ReadOwnMemory(uint64_t address, void* out, size_t n) {
  struct iovec local = {out, n};
  struct iovec remote = {reinterpret_cast<void*>(address), n};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n);
}

inline bool IsSystemCallSite(uint64_t pc) {
#if defined(__x86_64__)
  if (pc < 2) return false;
  uint8_t before[2];
  if (ReadOwnMemory(pc - 2, before, 2) && before[0] == 0x0f && before[1] == 0x05) return true;
  uint8_t at[2];
  return ReadOwnMemory(pc, at, 2) && at[0] == 0x0f && at[1] == 0x05;
#else
  (void)pc;
  return false;
#endif
}

inline bool FollowsCallInstruction(uint64_t address) {
#if defined(__x86_64__)
  if (address < 7) return false;
  uint8_t b[7];  // b[7 - k] is the byte k before address
  if (!ReadOwnMemory(address - 7, b, 7)) return false;
  auto call_indirect = [](uint8_t modrm) { return (modrm & 0x38) == 0x10; };  // reg = 2
  if (b[2] == 0xe8) return true;                                       // call rel32
  if (b[5] == 0xff && call_indirect(b[6]) && (b[6] >> 6) == 3) return true;  // call *%reg
  if (b[5] == 0xff && call_indirect(b[6]) && (b[6] >> 6) == 0 && (b[6] & 7) != 4 &&
      (b[6] & 7) != 5) {
    return true;                                                        // call *(%reg)
  }
  if (b[4] == 0xff && call_indirect(b[5]) && (b[5] >> 6) == 1) return true;  // disp8
  if (b[1] == 0xff && call_indirect(b[2]) && ((b[2] >> 6) == 2 || (b[2] & 0xc7) == 0x05)) {
    return true;                                                        // disp32 / rip
  }
  if (b[0] == 0xff && call_indirect(b[1]) && (b[1] >> 6) == 2 && (b[1] & 7) == 4) {
    return true;                                                        // SIB + disp32
  }
  return false;
#else
  (void)address;
  return false;
#endif
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_SYSCALL_CALLER_H_
