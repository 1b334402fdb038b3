// SPDX-License-Identifier: Apache-2.0
// File: diff_graph.h
//
// Differential flame graphs from a DiffProfile (profile/diff.h): the HTML
// page (templates/flame_graph.html.mustache in diff mode: frames as wide as
// in the new profile, red where they grew and blue where they shrank, with
// intensity by the size of the change, tooltips with before/after/delta and
// a normalized/raw toggle), the SVG, and FlameGraph's "difffolded" text
// ("stack before after"). Pure functions of const inputs: safe from many
// threads at once; never from a signal handler.
//
// Example:
//
//   flamekit::DiffProfile diff = flamekit::ComputeDiff(before, after);
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string html,
//                             flamekit::RenderDiffGraphHtml(diff, {}));

#ifndef FLAMEKIT_RENDER_DIFF_GRAPH_H_
#define FLAMEKIT_RENDER_DIFF_GRAPH_H_

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "flamekit/profile/diff.h"
#include "flamekit/render/collapsed.h"
#include "flamekit/render/flame_graph.h"
#include "flamekit/render/flame_tree.h"
#include "flamekit/render/render_options.h"
#include "flamekit/render/svg.h"

namespace flamekit {

// BuildDiffTree()
//
// The merged tree of `diff`: Node::total the new profile's samples,
// Node::before the base's; options.reverse and minwidth apply.
FlameTree BuildDiffTree(const DiffProfile& diff, const RenderOptions& options);

// RenderDiffGraphHtml()
//
// The diff page. options.normalize picks the view it opens in (normalized
// scales the base to the new profile's total); the page can switch.
absl::StatusOr<std::string> RenderDiffGraphHtml(const DiffProfile& diff,
                                                const RenderOptions& options = {});

// RenderDiffGraphSvg()
//
// The diff as a static SVG coloured by change (normalized unless
// options.normalize is false).
absl::StatusOr<std::string> RenderDiffGraphSvg(const DiffProfile& diff,
                                               const RenderOptions& options = {});

// RenderDiffCollapsed()
//
// FlameGraph's difffolded text: "a;b;c BEFORE AFTER" a line, raw counts,
// sorted by frame names.
std::string RenderDiffCollapsed(const DiffProfile& diff, bool normalize = false);

// Implementation details follow.

namespace render_internal {

inline std::string DiffTitle(const DiffProfile& diff, const RenderOptions& options) {
  if (!options.title.empty()) return options.title;
  const std::string& base = diff.base_metadata.title;
  const std::string& next = diff.frames.metadata().title;
  if (!base.empty() && !next.empty() && base != next) {
    return absl::StrCat("Diff: ", base, " \xE2\x86\x92 ", next);
  }
  if (!next.empty()) return absl::StrCat("Diff: ", next);
  return "Diff graph";
}

}  // namespace render_internal

inline FlameTree BuildDiffTree(const DiffProfile& diff, const RenderOptions& options) {
  std::vector<FlameStackRef> stacks;
  stacks.reserve(diff.stacks.size());
  for (const DiffStack& s : diff.stacks) {
    stacks.push_back(FlameStackRef{absl::MakeConstSpan(s.frames), s.after, s.before});
  }
  return BuildFlameTree(diff.frames, std::move(stacks), options.reverse, options.minwidth,
                        /*diff=*/true);
}

inline absl::StatusOr<std::string> RenderDiffGraphHtml(const DiffProfile& diff,
                                                       const RenderOptions& options) {
  RenderOptions tree_options = options;
  tree_options.reverse = false;  // the page reverses itself
  FlameTree tree = BuildDiffTree(diff, tree_options);
  render_internal::GraphPage page;
  page.title = render_internal::DiffTitle(diff, options);
  page.metadata = &diff.frames.metadata();
  page.base_metadata = &diff.base_metadata;
  page.normalize = options.normalize;
  return render_internal::RenderGraphHtml(tree, page, options);
}

inline absl::StatusOr<std::string> RenderDiffGraphSvg(const DiffProfile& diff,
                                                      const RenderOptions& options) {
  FlameTree tree = BuildDiffTree(diff, options);
  return render_internal::RenderSvgFromTree(tree, render_internal::DiffTitle(diff, options),
                                            diff.frames.metadata(), options);
}

inline std::string RenderDiffCollapsed(const DiffProfile& diff, bool normalize) {
  // diff.stacks are already in SortedStackIndices() order (diff.h).
  std::string out;
  for (const DiffStack& s : diff.stacks) {
    if (s.frames.empty()) continue;
    render_internal::AppendCollapsedStack(diff.frames, s.frames, &out);
    out.push_back(' ');
    // Normalized: BEFORE scaled to the AFTER total, rounded (what
    // flamegraph.pl's difffolded input expects: whole counts).
    render_internal::AppendUint(
        &out, normalize ? static_cast<uint64_t>(std::llround(diff.NormalizedBefore(s)))
                        : s.before);
    out.push_back(' ');
    render_internal::AppendUint(&out, s.after);
    out.push_back('\n');
  }
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_DIFF_GRAPH_H_
