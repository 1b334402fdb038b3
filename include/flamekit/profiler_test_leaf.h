// SPDX-License-Identifier: Apache-2.0
// File: profiler_test_leaf.h
//
// A workload for profiler_leaf_test, compiled with -O2 (see BUILD.bazel):
// gcc 12 then gives FramelessLeaf() no frame even with
// -fno-omit-frame-pointer, so a frame-pointer walk from a sample inside it
// skips its caller. Each caller spins for `cpu_seconds` of this thread's
// CPU time. Thread-compatible (no shared state).

#ifndef FLAMEKIT_PROFILER_TEST_LEAF_H_
#define FLAMEKIT_PROFILER_TEST_LEAF_H_

#include <stdint.h>

#include <string>

namespace flamekit {
namespace leaf_test {

// A pure arithmetic loop with no calls and no stack use.
uint64_t FramelessLeaf(uint64_t rounds);

// Two callers, so a test can tell that each sample names the right one.
uint64_t FirstCallerOfTheLeaf(double cpu_seconds);
uint64_t SecondCallerOfTheLeaf(double cpu_seconds);

// Whether this build really gave FramelessLeaf() no frame (what the tests
// are about), told by its .eh_frame rule in the middle of its code; false,
// with the reason in *why, when it has one or that cannot be told. In
// profiler_test_leaf_check (it needs the symbolizer).
bool LeafHasNoFrame(std::string* why);

}  // namespace leaf_test
}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_TEST_LEAF_H_
