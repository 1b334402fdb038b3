// SPDX-License-Identifier: Apache-2.0
// File: ui_codecs.h
//
// The conversions the UI's profile store uses, on flamekit's own renderers:
// a Profile to the flame graph page (render/flame_graph.h), to collapsed
// text and back (profile/collapsed_io.h), and two profiles to a diff graph
// (profile/diff.h + render/diff_graph.h). Pure functions of their
// arguments: safe from any ordinary thread, never from a signal handler
// (they allocate).
//
// Example:
//
//   ProfileStoreCodecs codecs = DefaultUiCodecs();
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string html, codecs.render_html(profile));

#ifndef FLAMEKIT_UI_UI_CODECS_H_
#define FLAMEKIT_UI_UI_CODECS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/profile/diff.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/diff_graph.h"
#include "flamekit/render/flame_graph.h"
#include "flamekit/render/render_options.h"
#include "flamekit/ui/profile_store.h"

namespace flamekit {

// DefaultUiCodecs()
//
// The codecs ServeUi() uses unless UiOptions gives others: the canvas HTML
// flame graph, FlameGraph's collapsed text.
ProfileStoreCodecs DefaultUiCodecs();

// RenderUiFlameGraph()
//
// The flame graph page of `profile`, titled `title` (empty: the profile's
// own title, else "<event> profile").
absl::StatusOr<std::string> RenderUiFlameGraph(const Profile& profile, absl::string_view title);

// RenderUiDiff()
//
// The diff graph page of `base` -> `next` (normalized view first).
absl::StatusOr<std::string> RenderUiDiff(const Profile& base, const Profile& next);

// Implementation details follow.

inline absl::StatusOr<std::string> RenderUiFlameGraph(const Profile& profile,
                                                      absl::string_view title) {
  RenderOptions options;
  options.title = std::string(title);
  if (options.title.empty() && profile.metadata().title.empty()) {
    options.title = absl::StrCat(profile.metadata().event, " profile");
  }
  return RenderFlameGraphHtml(profile, options);
}

inline ProfileStoreCodecs DefaultUiCodecs() {
  ProfileStoreCodecs codecs;
  codecs.render_html = [](const Profile& profile) { return RenderUiFlameGraph(profile, ""); };
  codecs.write_collapsed = [](const Profile& profile) { return ToCollapsedString(profile); };
  codecs.read_collapsed = [](absl::string_view text) {
    return ParseCollapsed(text, "stored profile");
  };
  return codecs;
}

inline absl::StatusOr<std::string> RenderUiDiff(const Profile& base, const Profile& next) {
  RenderOptions options;
  options.title = absl::StrCat("Diff: ", base.metadata().title.empty() ? "base" : base.metadata().title,
                               " \u2192 ", next.metadata().title.empty() ? "new" : next.metadata().title);
  options.normalize = true;
  return RenderDiffGraphHtml(ComputeDiff(base, next), options);
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_CODECS_H_
