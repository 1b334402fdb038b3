// SPDX-License-Identifier: Apache-2.0
// File: copied_stack.h
//
// UnwindCopiedStack() walks another thread's user stack from a copy of its
// top (a perf sample's PERF_SAMPLE_STACK_USER bytes, with the sample's
// rip/rsp/rbp from PERF_SAMPLE_REGS_USER) with the .eh_frame rules of a
// CfiTable: the same walker as the embedded profiler's (UnwindWithCfi()),
// reading each stack word from the copy. A frame whose rule needs a word
// past the copy, or that no rule and no frame record passes, ends the walk;
// the result then says it is not `complete` and the caller marks the stack
// truncated. Nothing is guessed.
//
// Thread and signal safety: as UnwindWithCfi(): no allocation, no lock, no
// system call; every read is inside the copy. The table must not change
// during the call.
//
// Example:
//
//   uint64_t frames[128];
//   UnwindResult r = UnwindCopiedStack(&table, {ip, bp, sp}, copy.data(), copy.size(),
//                                      frames, 128);
//   if (!r.complete) { /* mark the stack truncated */ }

#ifndef FLAMEKIT_UNWIND_COPIED_STACK_H_
#define FLAMEKIT_UNWIND_COPIED_STACK_H_

#include <stddef.h>
#include <stdint.h>

#include "flamekit/unwind/cfi_table.h"
#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/stack_bounds.h"

namespace flamekit {

// x86-64 registers in perf's numbering (asm/perf_regs.h: PERF_REG_X86_BP,
// _SP, _IP), and the sample_regs_user mask that asks for them; a sample's
// regs_user lists them in bit order: bp, sp, ip.
inline constexpr int kPerfRegX86Bp = 6;
inline constexpr int kPerfRegX86Sp = 7;
inline constexpr int kPerfRegX86Ip = 8;
inline constexpr uint64_t kUnwindRegsUserMask =
    (uint64_t{1} << kPerfRegX86Bp) | (uint64_t{1} << kPerfRegX86Sp) |
    (uint64_t{1} << kPerfRegX86Ip);

// UnwindCopiedStack()
//
// Writes start.pc and then one return address per frame into
// frames[0..max_frames), stepping by `table`'s rules (a null table: frame
// records only). `copy` holds `copy_bytes` bytes of the stack from
// start.sp up (8-byte aligned). Async-signal-safe.
UnwindResult UnwindCopiedStack(const CfiTable* table, const FramePointerStart& start,
                               const uint8_t* copy, size_t copy_bytes, uint64_t* frames,
                               size_t max_frames);

// Implementation details follow.

inline UnwindResult UnwindCopiedStack(const CfiTable* table, const FramePointerStart& start,
                                      const uint8_t* copy, size_t copy_bytes, uint64_t* frames,
                                      size_t max_frames) {
  StackBounds bounds;
  // An empty copy leaves the bounds unknown: the leaf alone.
  if (copy != nullptr && copy_bytes >= 8 && start.sp + copy_bytes > start.sp) {
    bounds.low = start.sp;
    bounds.high = start.sp + (copy_bytes & ~size_t{7});
  }
  // Unsigned wrap-around makes `address + offset` land in the copy.
  const uint64_t offset = reinterpret_cast<uint64_t>(copy) - start.sp;
  return UnwindWithCfi(start, bounds, table, frames, max_frames, offset);
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_COPIED_STACK_H_
