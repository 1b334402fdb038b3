// SPDX-License-Identifier: Apache-2.0
// The one translation unit that compiles the embedded profiler for Bazel
// users of //include/flamekit:profiler (see profiler_impl.h).
#define FLAMEKIT_IMPLEMENTATION
#include "flamekit/profiler.h"
