// SPDX-License-Identifier: Apache-2.0
// File: flame_graph.h
//
// The interactive HTML flame graph: one self-contained page (no network)
// drawn on a <canvas>, rendered from templates/flame_graph.html.mustache.
// Frames travel as compact JSON (a name table plus the prefix tree in
// preorder) inside <script type="application/json">, escaped so no frame
// name can end the script or become markup. The exact stacks ride along in
// <script id="fk-stacks" type="text/plain"> (profile/embedded_stacks.h), so
// `flamekit convert/diff` read the page back without loss. Pure functions of const inputs:
// callable from many threads at once; never from a signal handler.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string html,
//                             flamekit::RenderFlameGraphHtml(profile, {}));
//   // or straight to a file, by extension: WriteProfile() in write_profile.h

#ifndef FLAMEKIT_RENDER_FLAME_GRAPH_H_
#define FLAMEKIT_RENDER_FLAME_GRAPH_H_

#include <stdint.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/profile/embedded_stacks.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/flame_tree.h"
#include "flamekit/render/page_template.h"
#include "flamekit/render/render_options.h"
#include "kainjow/mustache.hpp"

namespace flamekit {

// RenderFlameGraphHtml()
//
// The page for `profile` with options.title, minwidth, inverted and
// reverse (the page opens in that view; the others are a click away).
absl::StatusOr<std::string> RenderFlameGraphHtml(const Profile& profile,
                                                 const RenderOptions& options = {});

// Below a thousand samples a flame graph mostly shows noise; the page says so.
inline constexpr uint64_t kFewSamplesWarningThreshold = 1000;

namespace render_internal {

// What a flame or diff page needs beyond the tree.
struct GraphPage {
  std::string title;
  const ProfileMetadata* metadata = nullptr;       // the (new) profile's
  const ProfileMetadata* base_metadata = nullptr;  // diff only
  bool normalize = true;                           // diff only
  // The profile's exact stacks (profile/embedded_stacks.h), so convert and
  // diff can read the page back; empty for diff pages.
  std::string stacks_text;
};

// Renders the HTML page of `tree` (a diff page when tree.diff).
absl::StatusOr<std::string> RenderGraphHtml(const FlameTree& tree,
                                            const GraphPage& page,
                                            const RenderOptions& options);

}  // namespace render_internal

// Implementation details follow.

namespace render_internal {

inline absl::StatusOr<std::string> RenderGraphHtml(const FlameTree& tree,
                                                   const GraphPage& page,
                                                   const RenderOptions& options) {
  const ProfileMetadata& metadata = *page.metadata;
  std::string json;
  json.append("{\"v\":1,\"diff\":");
  json.append(tree.diff ? "true" : "false");
  json.append(",\"title\":");
  AppendJsonString(&json, page.title);
  json.append(",\"total\":");
  AppendUint(&json, tree.total);
  if (tree.diff) {
    json.append(",\"total_before\":");
    AppendUint(&json, tree.total_before);
    json.append(",\"normalize\":");
    json.append(page.normalize ? "true" : "false");
  }
  json.append(",\"inverted\":");
  json.append(options.inverted ? "true" : "false");
  json.append(",\"reverse\":");
  json.append(options.reverse ? "true" : "false");
  json.append(",\"minwidth\":");
  json.append(absl::StrCat(options.minwidth));
  json.append(",\"pruned\":");
  AppendUint(&json, tree.pruned_nodes);
  json.append(",\"transforms\":");
  AppendJsonString(&json, metadata.transforms_json);
  json.append(",\"tree\":");
  AppendFlameTreeJson(tree, &json);
  json.push_back('}');

  kainjow::mustache::data data;
  data.set("title", page.title);
  data.set("meta", MetaItemsData(MetadataLine(metadata, tree.total)));
  if (page.base_metadata != nullptr) {
    data.set("base_meta", MetaItemsData(MetadataLine(*page.base_metadata,
                                                     tree.total_before)));
  }
  data.set("samples", FormatSampleCount(tree.total));
  if (tree.total < kFewSamplesWarningThreshold ||
      (tree.diff && tree.total_before < kFewSamplesWarningThreshold)) {
    data.set("few_samples", true);
  }
  if (!metadata.engine_note.empty()) data.set("engine_note", metadata.engine_note);
  if (tree.diff) data.set("diff", true);
  if (tree.pruned_nodes > 0) {
    data.set("pruned", absl::StrCat(FormatSampleCount(tree.pruned_nodes),
                                    " frames narrower than ", options.minwidth,
                                    "% left out"));
  }
  data.set("frames_json", std::move(json));
  if (!page.stacks_text.empty()) data.set("stacks_text", page.stacks_text);
  return RenderTemplate("flame_graph.html.mustache", data, options);
}

}  // namespace render_internal

inline absl::StatusOr<std::string> RenderFlameGraphHtml(const Profile& profile,
                                                        const RenderOptions& options) {
  RenderOptions tree_options = options;
  // The page builds the reversed view itself, so it can switch back.
  tree_options.reverse = false;
  FlameTree tree = BuildFlameTree(profile, tree_options);
  render_internal::GraphPage page;
  page.title = !options.title.empty()            ? options.title
               : !profile.metadata().title.empty() ? profile.metadata().title
                                                   : std::string("Flame graph");
  page.metadata = &profile.metadata();
  page.stacks_text = EncodeEmbeddedStacks(profile);
  return render_internal::RenderGraphHtml(tree, page, options);
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_FLAME_GRAPH_H_
