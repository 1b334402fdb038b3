// SPDX-License-Identifier: Apache-2.0
// File: self_code_facts.h
//
// SelfCodeFacts answers LeafRepair's questions (unwind/leaf_repair.h) about
// this process's own code: .eh_frame rules and executable mappings from a
// Symbolizer, call instructions and system call sites read from memory
// (process_vm_readv, so an unmapped address is a failed read, never a
// fault). The embedded profiler's collector uses it.
//
// Thread-compatible: called from the collector thread. The Symbolizer is
// shared, so every use takes `mu` and asks `get` for it (nullptr when this
// process's maps cannot be read: then nothing is known). Not for signal
// handlers.
//
// Example:
//
//   SelfCodeFacts facts(&symbol_mu, [&] { return SymbolizerLocked(); });
//   LeafRepair repair(&facts);

#ifndef FLAMEKIT_COLLECT_SELF_CODE_FACTS_H_
#define FLAMEKIT_COLLECT_SELF_CODE_FACTS_H_

#include <stdint.h>

#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "flamekit/symbol/symbolizer.h"
#include "flamekit/unwind/leaf_repair.h"
#include "flamekit/unwind/syscall_caller.h"

namespace flamekit {

class SelfCodeFacts : public CodeFacts {
 public:
  SelfCodeFacts(std::mutex* mu, std::function<Symbolizer*()> get)
      : mu_(mu), get_(std::move(get)) {}

  LeafFrame LeafFrameAt(uint64_t pc) override {
    std::optional<CfaRule> rule;
    {
      std::lock_guard<std::mutex> lock(*mu_);
      if (Symbolizer* symbolizer = get_()) rule = symbolizer->CfaRuleAt(pc);
    }
    LeafFrame frame;
    if (rule && rule->base == CfaRule::Base::kFramePointer) {
      frame.kind = LeafFrame::Kind::kKept;
    } else if (std::optional<uint32_t> slot = rule ? rule->FramelessReturnSlot() : std::nullopt) {
      frame.kind = LeafFrame::Kind::kFrameless;
      frame.slot = *slot;
    }
    return frame;
  }

  bool IsReturnAddress(uint64_t word) override {
    bool executable = false;
    {
      std::lock_guard<std::mutex> lock(*mu_);
      if (Symbolizer* symbolizer = get_()) executable = symbolizer->InExecutableMapping(word);
    }
    return executable && FollowsCallInstruction(word);
  }

  bool IsSyscallSite(uint64_t pc) override { return IsSystemCallSite(pc); }

 private:
  std::mutex* const mu_;
  const std::function<Symbolizer*()> get_;
};

}  // namespace flamekit

#endif  // FLAMEKIT_COLLECT_SELF_CODE_FACTS_H_
