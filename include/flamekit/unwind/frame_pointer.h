// SPDX-License-Identifier: Apache-2.0
// File: frame_pointer.h
//
// Walks a thread's frame-pointer chain from the registers a signal handler
// got in its ucontext. Async-signal-safe and fault-free by construction:
// every load is from inside the thread's cached stack bounds, and the walk
// stops at the first frame that breaks the Abseil-style checks (the frame
// pointer must grow, be 8-byte aligned, move by less than kMaxFrameBytes,
// and stay inside the bounds). No allocation, no system call, no lock.
//
// Leaf frames: gcc 12 at -O1+ gives leaf functions no frame even with
// -fno-omit-frame-pointer, so a sample in such a leaf reads the caller's
// frame pointer and the walk skips the leaf's caller. The handler does not
// try to fix that (it would need the leaf's call frame information in
// signal context); it keeps the stack words just above sp
// (CopyStackWords), and the profiler's collector, off the signal path,
// reads the leaf's .eh_frame rule (symbol/eh_frame.h) to pick the return
// address out of them, or for code without one the caller of a system
// call wrapper (syscall_caller.h).
//
// Example:
//
//   flamekit::MachineRegisters regs;
//   flamekit::ReadMachineRegisters(ucontext, &regs);
//   uint64_t frames[flamekit::kMaxStackFrames];
//   flamekit::UnwindResult r = flamekit::UnwindFramePointers(
//       {regs.pc, regs.fp, regs.sp}, bounds, frames, flamekit::kMaxStackFrames);
//   // frames[0..r.frame_count): leaf first; r.truncated if cut at the max.

#ifndef FLAMEKIT_UNWIND_FRAME_POINTER_H_
#define FLAMEKIT_UNWIND_FRAME_POINTER_H_

#include <stddef.h>
#include <stdint.h>

#include "flamekit/unwind/stack_bounds.h"

namespace flamekit {

// Where a walk starts: the leaf's pc and the frame pointer/stack pointer at
// that point.
struct FramePointerStart {
  uint64_t pc = 0;
  uint64_t fp = 0;
  uint64_t sp = 0;
};

struct UnwindResult {
  size_t frame_count = 0;  // entries written to frames[]
  bool truncated = false;  // stopped at max_frames with more frames left
  // UnwindWithCfi() only: the walk ended at the outermost frame (a null
  // return address or frame pointer, as _start and clone leave them), not
  // at a frame it could not pass.
  bool complete = false;
};

// Stack words above the leaf's sp that samples keep (the embedded
// profiler's handler, and the user stack copy of `flamekit record`'s perf
// samples), where a leaf that keeps no frame has its return address; the
// leaf's .eh_frame rule says which word. 16 words reach it for leaves
// whose frame is up to 128 bytes: every glibc system call wrapper (0x28
// bytes), and 94 % of the sp-based rows of libc's .eh_frame (89 % at 8).
inline constexpr size_t kLeafStackWords = 16;

// A frame larger than this ends the walk (as Abseil's kMaxFrameBytes): a
// frame pointer that jumps further is most likely garbage.
inline constexpr uint64_t kMaxFrameBytes = 1 << 20;

// UnwindFramePointers()
//
// Writes the leaf pc and then one return address per frame into
// frames[0..max_frames). The chain ends at a null frame pointer or return
// address, or at a frame that fails the checks; reaching max_frames with a
// valid frame still ahead sets `truncated`. With unknown `bounds` only the
// leaf is written. Async-signal-safe; never faults (reads only inside
// `bounds`).
UnwindResult UnwindFramePointers(const FramePointerStart& start,
                                 const StackBounds& bounds, uint64_t* frames,
                                 size_t max_frames);

// CopyStackWords()
//
// Copies up to `max_words` 8-byte words from [sp, sp + 8 * max_words) into
// out[], stopping at the first word outside `bounds`; returns how many were
// copied (0 for a misaligned sp or unknown bounds). Async-signal-safe;
// never faults.
size_t CopyStackWords(uint64_t sp, const StackBounds& bounds, uint64_t* out,
                      size_t max_words);

// Implementation details follow.

// The walk reads stack words that belong to other frames (saved registers,
// padding): under ASan/TSan those reads would be reported although they are
// inside the stack and intended, so the sanitizers skip this function.
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define FLAMEKIT_UNWIND_NO_SANITIZE \
  __attribute__((no_sanitize("address", "thread", "hwaddress")))
#else
#define FLAMEKIT_UNWIND_NO_SANITIZE
#endif

FLAMEKIT_UNWIND_NO_SANITIZE
inline UnwindResult UnwindFramePointers(const FramePointerStart& start,
                                        const StackBounds& bounds,
                                        uint64_t* frames, size_t max_frames) {
  UnwindResult result;
  if (max_frames == 0) return result;
  frames[0] = start.pc;
  result.frame_count = 1;
  if (!bounds.known()) return result;
  // x86_64 and aarch64 frame records are {saved fp, return address} at fp.
  uint64_t fp = start.fp;
  uint64_t previous = start.sp > 0 ? start.sp - 1 : 0;  // fp must be >= sp
  while (true) {
    if (fp == 0) break;                                  // outermost frame
    if ((fp & 7) != 0) break;                            // misaligned
    if (fp <= previous) break;                           // must grow
    if (fp - previous > kMaxFrameBytes && previous != 0 &&
        result.frame_count > 1) {
      break;                                             // implausible jump
    }
    if (!bounds.Contains(fp, 16)) break;                 // off the stack
    const uint64_t* record = reinterpret_cast<const uint64_t*>(fp);
    uint64_t return_address = record[1];
    uint64_t next_fp = record[0];
    if (return_address == 0) break;
    if (result.frame_count == max_frames) {
      result.truncated = true;
      break;
    }
    frames[result.frame_count++] = return_address;
    previous = fp;
    fp = next_fp;
  }
  return result;
}

FLAMEKIT_UNWIND_NO_SANITIZE
inline size_t CopyStackWords(uint64_t sp, const StackBounds& bounds,
                             uint64_t* out, size_t max_words) {
  if (!bounds.known() || (sp & 7) != 0) return 0;
  const uint64_t* stack = reinterpret_cast<const uint64_t*>(sp);
  size_t n = 0;
  while (n < max_words && bounds.Contains(sp + 8 * n, 8)) {
    out[n] = stack[n];
    ++n;
  }
  return n;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_FRAME_POINTER_H_
