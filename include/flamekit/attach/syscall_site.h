// SPDX-License-Identifier: Apache-2.0
// File: syscall_site.h
//
// Which system call a thread blocked in, for `record -e wall`'s state frame
// ("[syscall read]", "[syscall clock_nanosleep]", "[syscall futex]"). perf
// gives no syscall number at a context switch (the user registers hold
// -ENOSYS in rax, and orig_rax is not a sample register), so this reads the
// code before the thread's user pc: a thread blocked in a system call has
// its pc right after the `syscall` instruction (0f 05), and libc's wrappers
// load the number just before it (`mov $NR,%eax` = b8 NR, or `xor
// %eax,%eax` = 31 c0 for read). glibc 2.36 on x86-64: 439 of its 526
// syscall sites match one of the two. Anything else: SyscallState(-1)
// ("[syscall]") when the pc follows a syscall, kSleepingState otherwise.
//
// Thread-compatible: one SyscallSites per session thread. The code is
// read from the target with process_vm_readv (needs the same access as
// ptrace: the same user, or CAP_SYS_PTRACE; otherwise every state is
// kSleepingState) and cached per pc. Not for signal handlers.
//
// Example:
//
//   attach_internal::SyscallSites sites(pid);
//   ThreadStateKey state = sites.StateAt(user_pc);

#ifndef FLAMEKIT_ATTACH_SYSCALL_SITE_H_
#define FLAMEKIT_ATTACH_SYSCALL_SITE_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <optional>

#include "absl/container/flat_hash_map.h"
#include "flamekit/collect/thread_state.h"

namespace flamekit {
namespace attach_internal {

// Bytes read before a pc (the longest pattern: b8 imm32 0f 05).
inline constexpr size_t kSyscallSiteBytes = 7;

// DecodeSyscallSite()
//
// `code` holds the kSyscallSiteBytes bytes that end at the pc. nullopt:
// not after a syscall instruction; -1: a syscall whose number is not
// loaded by one of the two patterns; else the number.
std::optional<int32_t> DecodeSyscallSite(const uint8_t (&code)[kSyscallSiteBytes]);

class SyscallSites {
 public:
  explicit SyscallSites(pid_t pid) : pid_(pid) {}

  // StateAt()
  //
  // The state of a thread that blocked (not preempted) with its user pc
  // at `pc`.
  ThreadStateKey StateAt(uint64_t pc);

  // The target exec'd: its code changed.
  void Forget() { cache_.clear(); }

 private:
  const pid_t pid_;
  absl::flat_hash_map<uint64_t, ThreadStateKey> cache_;
};

// Implementation details follow.

inline std::optional<int32_t> DecodeSyscallSite(const uint8_t (&code)[kSyscallSiteBytes]) {
  const size_t n = kSyscallSiteBytes;
  if (code[n - 2] != 0x0f || code[n - 1] != 0x05) return std::nullopt;
  if (code[n - 4] == 0x31 && code[n - 3] == 0xc0) return 0;  // xor %eax,%eax
  if (code[n - 7] == 0xb8) {                                  // mov $imm32,%eax
    uint32_t number;
    memcpy(&number, &code[n - 6], sizeof(number));
    if (number < 4096) return static_cast<int32_t>(number);
  }
  return -1;
}

inline ThreadStateKey SyscallSites::StateAt(uint64_t pc) {
#if defined(__x86_64__)
  auto it = cache_.find(pc);
  if (it != cache_.end()) return it->second;
  ThreadStateKey state = kSleepingState;
  uint8_t code[kSyscallSiteBytes];
  if (pc > kSyscallSiteBytes) {
    iovec local{code, sizeof(code)};
    iovec remote{reinterpret_cast<void*>(pc - kSyscallSiteBytes), sizeof(code)};
    if (process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof(code))) {
      if (std::optional<int32_t> number = DecodeSyscallSite(code)) state = SyscallState(*number);
    }
  }
  cache_.emplace(pc, state);
  return state;
#else
  (void)pc;
  return kSleepingState;
#endif
}

}  // namespace attach_internal
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_SYSCALL_SITE_H_
