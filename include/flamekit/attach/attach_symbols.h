// SPDX-License-Identifier: Apache-2.0
// File: attach_symbols.h
//
// AttachSymbols is the interface an AttachSession names the target's code
// addresses through (attach/target_symbols.h adapts flamekit::Symbolizer;
// tests may supply their own).
//
// Thread-safety: an AttachSession calls Lookup(), OnMmap(), OnExec() and
// Warm() from its symbol worker thread, and the frame questions
// (FramelessReturnSlot(), IsCode(), ForgetFrameRules(), FrameRules(),
// NoteFrameMmap()) from its own thread: implementations keep separate state for the two
// groups (or lock). Not for signal handlers.
//
// Example:
//
//   class FixedSymbols : public flamekit::AttachSymbols {
//     Name Lookup(uint64_t address, bool kernel) override { return {"f", FrameKind::kNative}; }
//   };

#ifndef FLAMEKIT_ATTACH_ATTACH_SYMBOLS_H_
#define FLAMEKIT_ATTACH_ATTACH_SYMBOLS_H_

#include <stdint.h>

#include <optional>

#include "flamekit/collect/frame_name.h"
#include "flamekit/perf/perf_record.h"
#include "flamekit/unwind/cfi_table.h"

namespace flamekit {

// AttachSymbols
//
// Names the target's code addresses for an AttachSession. The session calls
// it from its own thread only, caches every answer per address, and tells it
// about mappings that appear during the capture (MMAP2) and about exec (the
// old mappings are then gone). attach/target_symbols.h adapts
// flamekit::Symbolizer; tests may supply their own.
class AttachSymbols {
 public:
  virtual ~AttachSymbols() = default;
  using Name = FrameName;
  // `address` is already adjusted: a return address minus one, so it falls
  // inside the calling instruction. `kernel` comes from the callchain's
  // context markers.
  virtual Name Lookup(uint64_t address, bool kernel) = 0;
  virtual void OnMmap(const PerfMmapRecord& record) { (void)record; }
  virtual void OnExec() {}
  // Called before sampling starts: load what the first lookups would
  // (e.g. kallsyms), so sampling is not held up by it.
  virtual void Warm(bool kernel_frames) { (void)kernel_frames; }

  // The two calls below come from the session's own thread, while the
  // calls above may be running on its symbol worker: implementations keep
  // separate state for them (or lock).
  //
  // FramelessReturnSlot()
  //
  // For a sampled user pc: when the function there keeps no frame at that
  // instruction (a gcc -O2 leaf, a prologue or epilogue), so that the
  // kernel's frame-pointer callchain skipped its caller, the index of the
  // 8-byte word of the user stack, counted from the sampled stack pointer,
  // that holds its return address; nullopt when it has a frame or that
  // cannot be told. IsCode() tells whether an address is the target's
  // executable code. ForgetFrameRules() drops what was learnt (an exec).
  virtual std::optional<uint32_t> FramelessReturnSlot(uint64_t pc) {
    (void)pc;
    return std::nullopt;
  }
  virtual bool IsCode(uint64_t address) {
    (void)address;
    return false;
  }
  virtual void ForgetFrameRules() {}

  // FrameRules()
  //
  // The .eh_frame rules of the target's files that WantFrameRulesAt() asked
  // for, as one table for UnwindCopiedStack() (--unwind dwarf/auto);
  // nullptr when there are none. The pointer stays valid until the next FrameRules(),
  // NoteFrameMmap() or ForgetFrameRules() call. NoteFrameMmap() tells about
  // a mapping that appeared (its rules are added on a later FrameRules()).
  virtual const CfiTable* FrameRules() { return nullptr; }
  virtual void NoteFrameMmap(const PerfMmapRecord& record) { (void)record; }

  // WantFrameRulesAt()
  //
  // FrameRules() covers only the files walks reach (building rules for
  // every mapped file was half of a capture's CPU): asks for the file
  // mapped at `pc` to be covered too. True when it was not (the next
  // FrameRules() then includes it, and a walk that stopped at `pc` is worth
  // retrying); false when it already was, or `pc` is in no file.
  virtual bool WantFrameRulesAt(uint64_t pc) {
    (void)pc;
    return false;
  }
};

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_ATTACH_SYMBOLS_H_
