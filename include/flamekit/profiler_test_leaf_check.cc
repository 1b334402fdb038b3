// SPDX-License-Identifier: Apache-2.0
#include <memory>
#include <optional>
#include <string>

#include "flamekit/profiler_test_leaf.h"
#include "flamekit/symbol/symbolizer.h"

namespace flamekit {
namespace leaf_test {

bool LeafHasNoFrame(std::string* why) {
  absl::StatusOr<std::unique_ptr<Symbolizer>> symbolizer = Symbolizer::ForSelf();
  if (!symbolizer.ok()) {
    *why = std::string(symbolizer.status().message());
    return false;
  }
  const uint64_t entry = reinterpret_cast<uint64_t>(&FramelessLeaf);
  std::optional<CfaRule> rule = (*symbolizer)->CfaRuleAt(entry);
  if (!rule) {
    *why = "no .eh_frame rule covers FramelessLeaf";
    return false;
  }
  // Its loop, past any prologue.
  rule = (*symbolizer)->CfaRuleAt(entry + (rule->function_end - rule->function_start) / 2);
  if (!rule || rule->base != CfaRule::Base::kStackPointer) {
    *why = "the compiler gave FramelessLeaf a frame: the walk needs no help";
    return false;
  }
  return true;
}

}  // namespace leaf_test
}  // namespace flamekit
