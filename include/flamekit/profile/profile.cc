// SPDX-License-Identifier: Apache-2.0
// The one translation unit that compiles Profile for Bazel users of
// //include/flamekit/profile:profile (see profile_impl.h).
#include "flamekit/profile/profile_impl.h"
