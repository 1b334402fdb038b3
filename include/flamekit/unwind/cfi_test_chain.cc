// SPDX-License-Identifier: Apache-2.0
#include "flamekit/unwind/cfi_test_chain.h"

namespace flamekit {
namespace cfi_test {

// Each level keeps some state across the call (so it has a frame of its
// own to describe in .eh_frame) and adds to the result after it (so the
// call is not a tail call, which would leave no return address).

__attribute__((noinline)) uint64_t ChainInner(uint64_t work, ChainBottom at_bottom) {
  volatile uint64_t local[4] = {work, work + 1, work + 2, work + 3};
  uint64_t r = at_bottom(work);
  return r + local[0] + local[3];
}

__attribute__((noinline)) uint64_t ChainMiddle(uint64_t work, ChainBottom at_bottom) {
  volatile uint64_t local[8] = {work};
  uint64_t r = ChainInner(work + 1, at_bottom);
  return r * 3 + local[0];
}

__attribute__((noinline)) uint64_t ChainOuter(uint64_t work, ChainBottom at_bottom) {
  volatile uint64_t local[2] = {work};
  uint64_t r = ChainMiddle(work + 1, at_bottom);
  return r ^ local[0];
}

}  // namespace cfi_test
}  // namespace flamekit
