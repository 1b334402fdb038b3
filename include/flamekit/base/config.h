// SPDX-License-Identifier: Apache-2.0
// File: config.h
//
// Compile-time tunables of flamekit. Each can be overridden with -D on the
// compiler command line (or `defines` in Bazel) before any flamekit header is
// included. Being macros, they are the same in signal handlers and in
// ordinary code; nothing here has run-time state.

#ifndef FLAMEKIT_BASE_CONFIG_H_
#define FLAMEKIT_BASE_CONFIG_H_

// Deepest stack a sample records; deeper stacks are cut and marked truncated.
#ifndef FLAMEKIT_MAX_FRAMES
#define FLAMEKIT_MAX_FRAMES 128
#endif

// How long Kallsyms::Shared() hands out a table it loaded before reading
// /proc/kallsyms again (kernel modules loaded since are missing until then).
#ifndef FLAMEKIT_KALLSYMS_SHARED_MAX_AGE_SECONDS
#define FLAMEKIT_KALLSYMS_SHARED_MAX_AGE_SECONDS 60
#endif

#endif  // FLAMEKIT_BASE_CONFIG_H_
