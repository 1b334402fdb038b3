// SPDX-License-Identifier: Apache-2.0
// The one translation unit that compiles the embedded profiler for Bazel
// users of //include/flamekit:profiler (see profiler_impl.h). It includes
// the implementation directly rather than defining FLAMEKIT_IMPLEMENTATION,
// which would also compile Profile's definitions here, a second copy of
// what //include/flamekit/profile:profile links in.
#include "flamekit/profiler_impl.h"
