// SPDX-License-Identifier: Apache-2.0
// File: ucontext_regs.h
//
// Reads the program counter, frame pointer and stack pointer of the code a
// signal interrupted from the handler's `ucontext_t` (x86_64 and aarch64),
// and tells whether that code was inside a system call (and with which
// arguments). Every function here
// is async-signal-safe: plain loads, no calls, no system calls.
//
// Example:
//
//   void OnSignal(int, siginfo_t*, void* ucontext) {
//     flamekit::MachineRegisters regs;
//     if (!flamekit::ReadMachineRegisters(ucontext, &regs)) return;
//     // regs.pc, regs.fp, regs.sp
//   }

#ifndef FLAMEKIT_UNWIND_UCONTEXT_REGS_H_
#define FLAMEKIT_UNWIND_UCONTEXT_REGS_H_

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ucontext.h>

namespace flamekit {

struct MachineRegisters {
  uint64_t pc = 0;  // the interrupted instruction
  uint64_t fp = 0;  // frame pointer (rbp / x29)
  uint64_t sp = 0;  // stack pointer (rsp / sp)
};

// Whether this build knows the register layout of the machine. On other
// architectures ReadMachineRegisters() returns false and samples are dropped.
#if defined(__x86_64__) || defined(__aarch64__)
inline constexpr bool kHaveMachineRegisters = true;
#else
inline constexpr bool kHaveMachineRegisters = false;
#endif

// ReadMachineRegisters()
//
// Fills `regs` from the `ucontext` argument of an SA_SIGINFO handler.
// Returns false on a null context or an unsupported architecture.
// Async-signal-safe.
bool ReadMachineRegisters(const void* ucontext, MachineRegisters* regs);

// InterruptedSystemCall()
//
// True when the signal arrived while the thread was blocked in a system call
// (the kernel rewound it to restart the call after the handler, or made it
// return EINTR); *syscall_number then holds the call's number. A call that
// returned EINTR has lost it from the registers: on x86_64 it is read from a
// `mov $NR, %eax` just before the call (as libc's wrappers do), else it is
// -1. *restarting (when given) says which: true when pc was rewound onto the
// call to restart it. A running thread gives false. Reads code bytes around
// pc (at most 7 before it), never crossing a page boundary.
// Async-signal-safe.
bool InterruptedSystemCall(const void* ucontext, int32_t* syscall_number,
                           bool* restarting = nullptr);

// SystemCallArguments()
//
// The six argument registers of a system call the signal interrupted
// (InterruptedSystemCall() said so; `restarting` is whether it gave the
// call's number). Returns a mask of the arguments that still hold what the
// call was made with: all six, except on aarch64 for a call that returned
// EINTR, whose x0 holds the result. Async-signal-safe.
uint32_t SystemCallArguments(const void* ucontext, bool restarting, uint64_t args[6]);

// Implementation details follow.

inline uint32_t SystemCallArguments(const void* ucontext, bool restarting, uint64_t args[6]) {
  for (int i = 0; i < 6; ++i) args[i] = 0;
  if (ucontext == nullptr) return 0;
  const ucontext_t* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  // The kernel keeps rdi, rsi, rdx, r10, r8, r9 across a call (only rax,
  // rcx and r11 change), restarted or not.
  (void)restarting;
  const greg_t* g = uc->uc_mcontext.gregs;
  args[0] = static_cast<uint64_t>(g[REG_RDI]);
  args[1] = static_cast<uint64_t>(g[REG_RSI]);
  args[2] = static_cast<uint64_t>(g[REG_RDX]);
  args[3] = static_cast<uint64_t>(g[REG_R10]);
  args[4] = static_cast<uint64_t>(g[REG_R8]);
  args[5] = static_cast<uint64_t>(g[REG_R9]);
  return 0x3f;
#elif defined(__aarch64__)
  for (int i = 0; i < 6; ++i) args[i] = static_cast<uint64_t>(uc->uc_mcontext.regs[i]);
  // A restarted call has x0 put back to its first argument.
  return restarting ? 0x3f : 0x3e;
#else
  (void)uc;
  (void)restarting;
  return 0;
#endif
}

inline bool ReadMachineRegisters(const void* ucontext, MachineRegisters* regs) {
  if (ucontext == nullptr) return false;
  const ucontext_t* uc = static_cast<const ucontext_t*>(ucontext);
#if defined(__x86_64__)
  regs->pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  regs->fp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RBP]);
  regs->sp = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RSP]);
  return true;
#elif defined(__aarch64__)
  regs->pc = static_cast<uint64_t>(uc->uc_mcontext.pc);
  regs->fp = static_cast<uint64_t>(uc->uc_mcontext.regs[29]);
  regs->sp = static_cast<uint64_t>(uc->uc_mcontext.sp);
  return true;
#else
  (void)uc;
  (void)regs;
  return false;
#endif
}

inline bool InterruptedSystemCall(const void* ucontext, int32_t* syscall_number,
                                  bool* restarting) {
  *syscall_number = -1;
  bool restart_unused = false;
  if (restarting == nullptr) restarting = &restart_unused;
  *restarting = false;
  if (ucontext == nullptr) return false;
  const ucontext_t* uc = static_cast<const ucontext_t*>(ucontext);
  constexpr uint64_t kPageMask = 4095;
#if defined(__x86_64__)
  // `syscall` is 0f 05. With SA_RESTART the kernel sets rip back onto it
  // and rax to the call number (orig_rax) before building the signal frame;
  // a call that is not restarted returns -EINTR with rip just past it.
  const uint64_t pc = static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RIP]);
  const int64_t rax = static_cast<int64_t>(uc->uc_mcontext.gregs[REG_RAX]);
  if (pc == 0) return false;
  if ((pc & kPageMask) <= kPageMask - 1) {
    const volatile uint8_t* code = reinterpret_cast<const volatile uint8_t*>(pc);
    if (code[0] == 0x0f && code[1] == 0x05 && rax >= 0 && rax < 1024) {
      *syscall_number = static_cast<int32_t>(rax);
      *restarting = true;
      return true;
    }
  }
  if ((pc & kPageMask) >= 2 && rax == -EINTR) {
    const volatile uint8_t* code = reinterpret_cast<const volatile uint8_t*>(pc - 2);
    if (code[0] != 0x0f || code[1] != 0x05) return false;
    // The number is gone from rax, but libc's wrappers load it just before
    // the call (`mov $NR, %eax`: b8 + 32-bit immediate); read it from there
    // when those bytes are on the same page.
    if ((pc & kPageMask) >= 7) {
      const volatile uint8_t* mov = reinterpret_cast<const volatile uint8_t*>(pc - 7);
      if (mov[0] == 0xb8) {
        const uint32_t number = static_cast<uint32_t>(mov[1]) |
                                static_cast<uint32_t>(mov[2]) << 8 |
                                static_cast<uint32_t>(mov[3]) << 16 |
                                static_cast<uint32_t>(mov[4]) << 24;
        if (number < 1024) *syscall_number = static_cast<int32_t>(number);
      }
    }
    return true;
  }
  return false;
#elif defined(__aarch64__)
  // `svc #0` is 0xd4000001; x8 holds the call number, x0 the result.
  const uint64_t pc = static_cast<uint64_t>(uc->uc_mcontext.pc);
  if (pc == 0 || (pc & 3) != 0) return false;
  const volatile uint32_t* code = reinterpret_cast<const volatile uint32_t*>(pc);
  if ((pc & kPageMask) <= kPageMask - 3 && code[0] == 0xd4000001u) {
    *syscall_number = static_cast<int32_t>(uc->uc_mcontext.regs[8]);
    *restarting = true;
    return true;
  }
  if ((pc & kPageMask) >= 4 &&
      static_cast<int64_t>(uc->uc_mcontext.regs[0]) == -EINTR &&
      code[-1] == 0xd4000001u) {
    return true;
  }
  return false;
#else
  (void)uc;
  (void)kPageMask;
  return false;
#endif
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_UCONTEXT_REGS_H_
