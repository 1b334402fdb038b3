// SPDX-License-Identifier: Apache-2.0
// File: frame_name.h
//
// FrameName: what a symbolizer says of one code address, in the form the
// middle stage (StackFolder) stores and every source's symbolizer answers.
// A plain value type; thread-compatible, not for signal handlers.

#ifndef FLAMEKIT_COLLECT_FRAME_NAME_H_
#define FLAMEKIT_COLLECT_FRAME_NAME_H_

#include <string>

#include "flamekit/base/frame_kind.h"

namespace flamekit {

struct FrameName {
  std::string name;
  FrameKind kind = FrameKind::kUnknown;
};

}  // namespace flamekit

#endif  // FLAMEKIT_COLLECT_FRAME_NAME_H_
