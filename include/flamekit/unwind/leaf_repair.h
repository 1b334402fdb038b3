// SPDX-License-Identifier: Apache-2.0
// File: leaf_repair.h
//
// LeafRepair puts back the caller that a frame-pointer walk skips when the
// sampled function keeps no frame at the sampled instruction: gcc's leaf
// functions at -O2 (they get none even with -fno-omit-frame-pointer),
// prologues and epilogues, libc's system call wrappers. rbp then still holds
// the caller's frame pointer, so the walk goes from the leaf straight to the
// caller's caller. The missing return address is on the stack, a few words
// above sp; every source keeps those words with its samples (the embedded
// profiler's StackRecord, attach mode's PERF_SAMPLE_STACK_USER copy).
//
// Where to look is a question about the code, answered through CodeFacts:
// the embedded profiler answers from its own Symbolizer and memory
// (collect/self_code_facts.h), attach mode from the target's files. Both
// back-ends use this one repair, so they agree on every stack.
//
// Thread-compatible: one LeafRepair per collector thread; it caches
// answers per address (bounded). Not for signal handlers (it allocates).
//
// Example:
//
//   LeafRepair repair(&facts);
//   uint64_t caller = repair.MissingCaller(leaf_pc, walked_caller, words);
//   if (caller != 0) ...  // insert it after the leaf

#ifndef FLAMEKIT_UNWIND_LEAF_REPAIR_H_
#define FLAMEKIT_UNWIND_LEAF_REPAIR_H_

#include <stdint.h>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace flamekit {

// CodeFacts
//
// What LeafRepair needs to know about the code at an address. Implementations
// may be slow (ELF parsing, reading memory); LeafRepair caches every answer.
class CodeFacts {
 public:
  virtual ~CodeFacts() = default;

  // The frame of the function at `pc`, from its .eh_frame rule.
  struct LeafFrame {
    enum class Kind {
      kKept,       // rbp is this function's: the walk saw its caller
      kFrameless,  // no frame here: the return address is stack word `slot`
      kUnknown,    // no usable rule
    };
    Kind kind = Kind::kUnknown;
    uint32_t slot = 0;  // with kFrameless: 8-byte words counted from sp
  };
  virtual LeafFrame LeafFrameAt(uint64_t pc) = 0;

  // Whether `word` can be a return address: it lies in executable code (and,
  // where the code can be read, just after a call instruction).
  virtual bool IsReturnAddress(uint64_t word) = 0;

  // Whether `pc` is a system call site (just after a `syscall`). Code with no
  // rule that stops there is a libc wrapper whose own return address is the
  // first return address above sp. False where the code cannot be read.
  virtual bool IsSyscallSite(uint64_t pc) {
    (void)pc;
    return false;
  }
};

class LeafRepair {
 public:
  // `facts` must outlive the LeafRepair.
  explicit LeafRepair(CodeFacts* facts) : facts_(facts) {}

  // MissingCaller()
  //
  // The return address into the caller of the function at `leaf_pc` when a
  // frame-pointer walk skipped it; 0 when nothing is missing or it cannot be
  // told. `walked_caller` is the return address the walk found next (0 if
  // none), `stack_words` the words the sample kept, from sp up.
  uint64_t MissingCaller(uint64_t leaf_pc, uint64_t walked_caller,
                         absl::Span<const uint64_t> stack_words);

  // Forget()
  //
  // Drops every cached answer: the code changed (an exec).
  void Forget();

 private:
  // A libc wrapper with no rule: the first return address above sp.
  uint64_t WrapperCaller(uint64_t leaf_pc, uint64_t walked_caller,
                         absl::Span<const uint64_t> stack_words);
  bool IsReturnAddress(uint64_t word);

  // Answers about code do not change while it is mapped; the bound keeps a
  // long session from growing a cache for ever.
  static constexpr size_t kMaxCached = 65536;

  CodeFacts* const facts_;
  absl::flat_hash_map<uint64_t, CodeFacts::LeafFrame> leaf_frames_;
  absl::flat_hash_map<uint64_t, bool> syscall_sites_;
  absl::flat_hash_map<uint64_t, bool> return_addresses_;
};

// Implementation details follow.

inline uint64_t LeafRepair::MissingCaller(uint64_t leaf_pc, uint64_t walked_caller,
                                          absl::Span<const uint64_t> stack_words) {
  if (stack_words.empty()) return 0;
  if (leaf_frames_.size() > kMaxCached) leaf_frames_.clear();
  auto frame = leaf_frames_.find(leaf_pc);
  if (frame == leaf_frames_.end()) {
    frame = leaf_frames_.emplace(leaf_pc, facts_->LeafFrameAt(leaf_pc)).first;
  }
  switch (frame->second.kind) {
    case CodeFacts::LeafFrame::Kind::kKept:
      return 0;
    case CodeFacts::LeafFrame::Kind::kUnknown:
      return WrapperCaller(leaf_pc, walked_caller, stack_words);
    case CodeFacts::LeafFrame::Kind::kFrameless:
      break;
  }
  // A frame larger than the words kept: the caller stays missing.
  if (frame->second.slot >= stack_words.size()) return 0;
  const uint64_t word = stack_words[frame->second.slot];
  return IsReturnAddress(word) ? word : 0;
}

inline uint64_t LeafRepair::WrapperCaller(uint64_t leaf_pc, uint64_t walked_caller,
                                          absl::Span<const uint64_t> stack_words) {
  if (syscall_sites_.size() > kMaxCached) syscall_sites_.clear();
  auto site = syscall_sites_.find(leaf_pc);
  if (site == syscall_sites_.end()) {
    site = syscall_sites_.emplace(leaf_pc, facts_->IsSyscallSite(leaf_pc)).first;
  }
  if (!site->second) return 0;
  for (uint64_t word : stack_words) {
    // The first return address above sp is the wrapper's own: when the walk
    // already has it (the wrapper did keep a frame), nothing is missing.
    if (IsReturnAddress(word)) return word == walked_caller ? 0 : word;
  }
  return 0;
}

inline bool LeafRepair::IsReturnAddress(uint64_t word) {
  // Below the first page, or a kernel address: never user code.
  if (word < 4096 || (word >> 63) != 0) return false;
  if (return_addresses_.size() > kMaxCached) return_addresses_.clear();
  auto known = return_addresses_.find(word);
  if (known != return_addresses_.end()) return known->second;
  return return_addresses_.emplace(word, facts_->IsReturnAddress(word)).first->second;
}

inline void LeafRepair::Forget() {
  leaf_frames_.clear();
  syscall_sites_.clear();
  return_addresses_.clear();
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_LEAF_REPAIR_H_
