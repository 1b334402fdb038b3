// SPDX-License-Identifier: Apache-2.0
// File: collapsed.h
//
// Collapsed stacks, FlameGraph's folded text ("main;Work;leaf 42" a line,
// root first, kind suffixes _[k] _[j] _[i]), as written for .txt and
// .collapsed outputs, and FlameGraph's "difffolded" form ("stack before
// after") for diffs. Pure functions of const inputs: safe from many threads;
// never from a signal handler (they allocate).
//
// Example:
//
//   std::string text = flamekit::RenderCollapsed(profile);

#ifndef FLAMEKIT_RENDER_COLLAPSED_H_
#define FLAMEKIT_RENDER_COLLAPSED_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/flame_tree.h"

namespace flamekit {

// RenderCollapsed()
//
// One line per distinct stack, sorted by frame names (deterministic), each
// frame spelled by profile/collapsed_io.h's CollapsedFrameText() (kind
// suffixes, thread brackets; ';' and newlines, which the format cannot
// hold, become ':' and ' ').
std::string RenderCollapsed(const Profile& profile);

namespace render_internal {

// Appends "a;b;c" for `frames` of `profile`.
void AppendCollapsedStack(const Profile& profile, absl::Span<const FrameId> frames,
                          std::string* out);

}  // namespace render_internal

// Implementation details follow.

namespace render_internal {

inline void AppendCollapsedStack(const Profile& profile,
                                 absl::Span<const FrameId> frames, std::string* out) {
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i != 0) out->push_back(';');
    // The pipeline's spelling (suffixes, [thread] brackets, ';' -> ':'), so
    // ReadCollapsedFile() reads back what we write.
    out->append(CollapsedFrameText(profile.frame(frames[i])));
  }
}

}  // namespace render_internal

inline std::string RenderCollapsed(const Profile& profile) {
  // The pipeline's writer: one spelling of collapsed text in the project.
  return ToCollapsedString(profile);
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_COLLAPSED_H_
