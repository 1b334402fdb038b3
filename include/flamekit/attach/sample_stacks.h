// SPDX-License-Identifier: Apache-2.0
// File: sample_stacks.h
//
// attach_internal::SampleStacks turns one perf sample of another process
// into the middle stage's RawSample (collect/stack_folder.h): the kernel
// frames of its callchain, then the user frames, walked one of three ways
// (AttachUnwind): the kernel's frame-pointer chain, the .eh_frame rules
// stepping the sample's copy of the user stack (unwind/copied_stack.h,
// the embedded profiler's walker), or per sample whichever of the two
// gets further (auto). A rules walk that stops before the outermost frame
// marks the stack truncated; addresses that cannot be user code in a user
// context (zero, non-canonical such as bit 62/63 set, kernel addresses)
// end the chain there and mark it truncated too. Nothing is invented: a
// thread's identity travels in RawSample::tid, never as an address.
//
// Thread-compatible: one SampleStacks per session thread; the RawSample's
// spans point into its buffers until the next Build(). Not for signal
// handlers (it grows vectors on first use).
//
// Example:
//
//   attach_internal::SampleStacks stacks(AttachUnwind::kAuto);
//   RawSample raw;
//   if (stacks.Build(sample, symbols->FrameRules(), &raw, &progress)) folder.Add(raw);

#ifndef FLAMEKIT_ATTACH_SAMPLE_STACKS_H_
#define FLAMEKIT_ATTACH_SAMPLE_STACKS_H_

#include <linux/perf_event.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "flamekit/attach/attach_options.h"
#include "flamekit/base/config.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/perf/perf_record.h"
#include "flamekit/unwind/cfi_table.h"
#include "flamekit/unwind/copied_stack.h"
#include "flamekit/unwind/frame_pointer.h"

namespace flamekit {
namespace attach_internal {

// Highest user-space address on x86-64 (47-bit user half). A "user" frame
// above it is garbage from a frame-pointer walk through code without frame
// pointers (e.g. 0x6418ec8348d38948: instruction bytes read as an address).
inline constexpr uint64_t kMaxUserAddress = 0x00007fffffffffffULL;
// Lowest kernel address (the canonical upper half).
inline constexpr uint64_t kMinKernelAddress = 0xffff800000000000ULL;

class SampleStacks {
 public:
  explicit SampleStacks(AttachUnwind unwind) : unwind_(unwind) {}

  // Build()
  //
  // Fills *raw from `sample` (leaf first). `rules` may be null (no rules
  // yet: the chain is used). Counts the walk taken in *progress. False
  // when the sample has no frame at all.
  bool Build(const PerfSample& sample, const CfiTable* rules, RawSample* raw,
             AttachProgress* progress);

 private:
  // Appends the user part of the kernel's chain from callchain index `i`;
  // returns whether it stopped at a garbage address.
  bool AppendChainUser(absl::Span<const uint64_t> callchain, size_t i);

  const AttachUnwind unwind_;
  std::vector<uint64_t> pcs_;
  std::vector<uint64_t> stack_words_;
  uint64_t walked_[FLAMEKIT_MAX_FRAMES];
};

// Implementation details follow.

inline bool SampleStacks::AppendChainUser(absl::Span<const uint64_t> callchain, size_t i) {
  for (; i < callchain.size(); ++i) {
    const uint64_t address = callchain[i];
    if (address >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      // Only one user context follows the kernel's; another marker here
      // (a guest context) is not ours.
      return true;
    }
    if (address == 0 || address > kMaxUserAddress) return true;
    if (pcs_.size() + 1 >= static_cast<size_t>(FLAMEKIT_MAX_FRAMES)) return true;
    pcs_.push_back(address);
  }
  return false;
}

inline bool SampleStacks::Build(const PerfSample& sample, const CfiTable* rules,
                                RawSample* raw, AttachProgress* progress) {
  raw->tid = sample.tid;
  raw->truncated = false;
  pcs_.clear();
  // 1. The kernel's frames (leaf first), up to the user context marker.
  const absl::Span<const uint64_t> chain = sample.callchain;
  size_t i = 0;
  bool kernel_context = false;
  bool user_marker = false;
  for (; i < chain.size(); ++i) {
    const uint64_t address = chain[i];
    if (address >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      if (address == static_cast<uint64_t>(PERF_CONTEXT_USER)) {
        user_marker = true;
        ++i;
        break;
      }
      kernel_context = address == static_cast<uint64_t>(PERF_CONTEXT_KERNEL);
      continue;
    }
    // Only kernel addresses count as kernel frames.
    if (!kernel_context || address < kMinKernelAddress) continue;
    if (pcs_.size() + 1 >= static_cast<size_t>(FLAMEKIT_MAX_FRAMES)) {
      raw->truncated = true;
      break;
    }
    pcs_.push_back(address);
  }
  const size_t user_leaf = pcs_.size();
  // 2. The user frames.
  const bool have_regs = sample.regs_user.size() == 3 && sample.regs_user_abi != 0;
  const bool try_rules = unwind_ != AttachUnwind::kFramePointers && have_regs;
  UnwindResult walk;
  if (try_rules) {
    // regs_user in bit order of kUnwindRegsUserMask: bp, sp, ip.
    const FramePointerStart start{sample.regs_user[2], sample.regs_user[0], sample.regs_user[1]};
    const size_t room = static_cast<size_t>(FLAMEKIT_MAX_FRAMES) - 1 - user_leaf;
    walk = UnwindCopiedStack(rules, start, sample.user_stack.data(), sample.user_stack.size(),
                             walked_, std::min(room, sizeof(walked_) / sizeof(walked_[0])));
    if (start.pc == 0 || start.pc > kMaxUserAddress) walk.frame_count = 0;
  }
  bool chain_garbage = false;
  bool use_rules = false;
  if (unwind_ == AttachUnwind::kDwarf) {
    use_rules = walk.frame_count > 0;
  } else if (unwind_ == AttachUnwind::kAuto && walk.frame_count > 0) {
    // The chain's user part, to compare depths (its leaf repair adds at
    // most one frame, counted below).
    chain_garbage = user_marker && AppendChainUser(chain, i);
    const size_t chain_frames = pcs_.size() - user_leaf;
    use_rules = walk.complete || walk.frame_count > chain_frames + 1;
    if (use_rules) pcs_.resize(user_leaf);
  } else if (user_marker) {
    chain_garbage = AppendChainUser(chain, i);
  }
  if (use_rules) {
    pcs_.insert(pcs_.end(), walked_, walked_ + walk.frame_count);
    raw->truncated = raw->truncated || !walk.complete;
    ++progress->rule_walks;
    if (walk.complete) ++progress->rule_walks_complete;
  } else {
    raw->truncated = raw->truncated || chain_garbage;
    ++progress->chain_walks;
  }
  if (pcs_.empty() && sample.ip != 0 &&
      (sample.ip <= kMaxUserAddress || sample.ip >= kMinKernelAddress)) {
    pcs_.push_back(sample.ip);
  }
  if (pcs_.empty()) return false;
  raw->pcs = pcs_;
  // No user frames: nothing for the leaf repair.
  raw->user_leaf = std::min(user_leaf, pcs_.size());
  // The chain walked the user stack by frame pointers: from a leaf that
  // keeps no frame it went straight to the caller's caller, and the copy's
  // first words hold the missing return address. The rules' walk needs no
  // repair (it steps the leaf by its own rule).
  stack_words_.clear();
  if (!use_rules && !sample.user_stack.empty()) {
    const size_t words = std::min<size_t>(sample.user_stack.size() / 8, kLeafStackWords);
    stack_words_.resize(words);
    memcpy(stack_words_.data(), sample.user_stack.data(), words * 8);
  }
  raw->stack_words = stack_words_;
  return true;
}

}  // namespace attach_internal
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_SAMPLE_STACKS_H_
