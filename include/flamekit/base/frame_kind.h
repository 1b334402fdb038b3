// SPDX-License-Identifier: Apache-2.0
// File: frame_kind.h
//
// FrameKind says where a frame's code lives. It sits in base/ because every
// stage speaks it: symbol/ answers a name with a kind, collect/ folds them,
// profile/ stores them, render/ colours by them. Plain constants and one
// constexpr-able switch: safe from any thread and from signal handlers.
//
// Example:
//
//   if (symbol.kind == flamekit::FrameKind::kKernel) ...;
//   absl::string_view legend = flamekit::FrameKindName(kind);  // "kernel"

#ifndef FLAMEKIT_BASE_FRAME_KIND_H_
#define FLAMEKIT_BASE_FRAME_KIND_H_

#include <stdint.h>

#include "absl/strings/string_view.h"

namespace flamekit {

// FrameKind
//
// Renderers colour by it and the collapsed format carries it as
// FlameGraph's suffix annotations.
enum class FrameKind : uint8_t {
  kUser = 0,   // the main executable (or code whose mapping is unknown)
  kLibrary,    // a shared library
  kKernel,     // the kernel                        collapsed suffix "_[k]"
  kJit,        // JIT code named by a perf map file collapsed suffix "_[j]"
  kInlined,    // an inlined function               collapsed suffix "_[i]"
  kThread,     // synthetic root naming a thread (per-thread split)
  kTruncated,  // synthetic marker: deeper frames were cut here
  kUnknown,    // an address with no symbol, e.g. "libfoo.so+0x1a2b"
  kMarker,     // synthetic label over a part of a profile, not code, e.g.
               // "[look-back before trigger]" (collapsed text reads it back
               // as kUser: the format has no annotation for it)
};
inline constexpr int kFrameKindCount = 9;

// FrameKindName()
//
// A short lowercase name ("user", "library", "kernel", ...) for legends,
// JSON and tests.
absl::string_view FrameKindName(FrameKind kind);

// Implementation details follow.

inline absl::string_view FrameKindName(FrameKind kind) {
  switch (kind) {
    case FrameKind::kUser: return "user";
    case FrameKind::kLibrary: return "library";
    case FrameKind::kKernel: return "kernel";
    case FrameKind::kJit: return "jit";
    case FrameKind::kInlined: return "inlined";
    case FrameKind::kThread: return "thread";
    case FrameKind::kTruncated: return "truncated";
    case FrameKind::kUnknown: return "unknown";
    case FrameKind::kMarker: return "marker";
  }
  return "unknown";
}

}  // namespace flamekit

#endif  // FLAMEKIT_BASE_FRAME_KIND_H_
