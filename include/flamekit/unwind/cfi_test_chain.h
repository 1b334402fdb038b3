// SPDX-License-Identifier: Apache-2.0
// File: cfi_test_chain.h
//
// A call chain built without frame pointers (-O2 -fomit-frame-pointer, see
// BUILD.bazel), as Debian builds its libraries: ChainOuter() calls
// ChainMiddle() calls ChainInner() calls `at_bottom`. A frame-pointer walk
// from inside it skips all three; a CFI walk finds them. Test-only;
// thread-compatible.

#ifndef FLAMEKIT_UNWIND_CFI_TEST_CHAIN_H_
#define FLAMEKIT_UNWIND_CFI_TEST_CHAIN_H_

#include <stdint.h>

namespace flamekit {
namespace cfi_test {

using ChainBottom = uint64_t (*)(uint64_t);

uint64_t ChainOuter(uint64_t work, ChainBottom at_bottom);
uint64_t ChainMiddle(uint64_t work, ChainBottom at_bottom);
uint64_t ChainInner(uint64_t work, ChainBottom at_bottom);

}  // namespace cfi_test
}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_CFI_TEST_CHAIN_H_
