// SPDX-License-Identifier: Apache-2.0
// File: svg.h
//
// A standalone SVG flame graph in the manner of flamegraph.pl: one <g> per
// frame with a <title> tooltip, an embedded script for click-to-zoom and
// search (Ctrl+F), and frames narrower than 0.1 pixel (or options.minwidth)
// pruned. Opens in a browser (interactive) and in image viewers (static).
// The exact stacks ride along in <metadata id="fk-stacks">
// (profile/embedded_stacks.h), so `flamekit convert/diff` read it back.
// Rendered from templates/flame_graph.svg.mustache. Pure functions of const
// inputs: safe from many threads; never from a signal handler.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string svg,
//                             flamekit::RenderFlameGraphSvg(profile, {}));

#ifndef FLAMEKIT_RENDER_SVG_H_
#define FLAMEKIT_RENDER_SVG_H_

#include <stdint.h>
#include <stdio.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "flamekit/profile/embedded_stacks.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/flame_tree.h"
#include "flamekit/render/page_template.h"
#include "flamekit/render/render_options.h"
#include "kainjow/mustache.hpp"

namespace flamekit {

// RenderFlameGraphSvg()
//
// The SVG of `profile`, honouring options.title, minwidth, inverted and
// reverse.
absl::StatusOr<std::string> RenderFlameGraphSvg(const Profile& profile,
                                                const RenderOptions& options = {});

// Image width in pixels, as flamegraph.pl's default.
inline constexpr int kSvgWidth = 1200;

namespace render_internal {

// Renders `tree` as SVG; a diff tree gets red/blue colours by change.
absl::StatusOr<std::string> RenderSvgFromTree(const FlameTree& tree,
                                              absl::string_view title,
                                              const ProfileMetadata& metadata,
                                              const RenderOptions& options,
                                              absl::string_view stacks_text = {});

// A stable pseudo-random value in [0, 1) from a frame name.
double NameHash(absl::string_view name);

// The fill colour of a frame of `kind` (flamegraph.pl-like palettes).
std::string KindFill(FrameKind kind, double v);

}  // namespace render_internal

// Implementation details follow.

namespace render_internal {

inline double NameHash(absl::string_view name) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < name.size() && i < 64; ++i) {
    h ^= static_cast<unsigned char>(name[i]);
    h *= 16777619u;
  }
  return static_cast<double>(h) / 4294967296.0;
}

inline std::string KindFill(FrameKind kind, double v) {
  int r, g, b;
  switch (kind) {
    case FrameKind::kUser:  // warm orange-red, as flamegraph.pl's "hot"
      r = 205 + static_cast<int>(50 * v); g = 80 + static_cast<int>(110 * v); b = 40;
      break;
    case FrameKind::kLibrary:  // yellow
      r = 210 + static_cast<int>(40 * v); g = 190 + static_cast<int>(40 * v); b = 60;
      break;
    case FrameKind::kKernel:  // blue-grey
      r = 90 + static_cast<int>(50 * v); g = 150 + static_cast<int>(50 * v); b = 205;
      break;
    case FrameKind::kJit:  // green
      r = 60 + static_cast<int>(60 * v); g = 180 + static_cast<int>(50 * v); b = 70;
      break;
    case FrameKind::kInlined:  // teal
      r = 60; g = 180 + static_cast<int>(40 * v); b = 170 + static_cast<int>(40 * v);
      break;
    case FrameKind::kThread:  // lavender
      r = 170 + static_cast<int>(30 * v); g = 160; b = 215;
      break;
    case FrameKind::kMarker:  // light grey, one shade: a label, not code
      r = g = b = 215;
      break;
    case FrameKind::kTruncated:
    case FrameKind::kUnknown:
    default:  // grey
      r = g = b = 165 + static_cast<int>(30 * v);
      break;
  }
  return absl::StrCat("rgb(", r, ",", g, ",", b, ")");
}

inline absl::StatusOr<std::string> RenderSvgFromTree(const FlameTree& tree,
                                                     absl::string_view title,
                                                     const ProfileMetadata& metadata,
                                                     const RenderOptions& options,
                                                     absl::string_view stacks_text) {
  constexpr double kPad = 10;
  constexpr int kRow = 16;
  constexpr int kHeader = 72;
  constexpr int kFooter = 30;
  const double usable = kSvgWidth - 2 * kPad;
  const int rows = static_cast<int>(tree.max_depth) + 1;
  const int height = kHeader + rows * kRow + kFooter;
  const double total = static_cast<double>(tree.total);
  const double px_per_sample = total > 0 ? usable / total : 0;
  const double scale_before =
      tree.diff && tree.total_before > 0 && options.normalize
          ? total / static_cast<double>(tree.total_before)
          : 1.0;
  double max_delta = 1;
  if (tree.diff) {
    for (const FlameTree::Node& node : tree.nodes) {
      max_delta = std::max(max_delta, std::fabs(static_cast<double>(node.total) -
                                                static_cast<double>(node.before) * scale_before));
    }
  }
  auto y_of = [&](int level) {
    return options.inverted ? kHeader + level * kRow : kHeader + (rows - 1 - level) * kRow;
  };
  auto fill_of = [&](const FlameTree::Node& node) -> std::string {
    if (!tree.diff) {
      return KindFill(tree.kinds[node.name], NameHash(tree.names[node.name]));
    }
    double after = static_cast<double>(node.total);
    double before = static_cast<double>(node.before) * scale_before;
    double delta = after - before;
    double big = std::max(after, before);
    if (big <= 0 || std::fabs(delta) / big < 0.005) return "rgb(225,225,225)";
    double s = std::min(1.0, std::sqrt(std::fabs(delta) / max_delta));
    int strong = 255;
    int weak = static_cast<int>(220 - 170 * s);
    return delta > 0 ? absl::StrCat("rgb(", strong, ",", weak, ",", weak, ")")
                     : absl::StrCat("rgb(", weak, ",", weak, ",", strong, ")");
  };
  std::string frames;
  frames.reserve(tree.nodes.size() * 200);
  auto emit = [&](double x, double w, int level, absl::string_view name,
                  const std::string& tooltip, const std::string& fill) {
    const int y = y_of(level);
    // Lean on purpose (a big profile keeps ~100k frames): the script reads
    // x and width back from the rect, and adds a <text> only when zooming
    // makes room for one.
    absl::StrAppendFormat(&frames, "<g fk-d=\"%d\"><title>", level);
    AppendXmlEscaped(&frames, tooltip);
    absl::StrAppendFormat(&frames,
                          "</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
                          "fill=\"%s\"/>",
                          x, y, std::max(w - 0.5, 0.1), kRow - 1, fill);
    // Verdana 12px averages about 7 pixels a character.
    const int fit = static_cast<int>((w - 6) / 7.0);
    if (fit >= 3) {
      absl::StrAppendFormat(&frames, "<text x=\"%.2f\" y=\"%.1f\">", x + 3, y + 11.5);
      if (static_cast<int>(name.size()) <= fit) {
        AppendXmlEscaped(&frames, name);
      } else {
        // Cut on a UTF-8 boundary.
        size_t cut = static_cast<size_t>(std::max(fit - 2, 0));
        while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
        AppendXmlEscaped(&frames, name.substr(0, cut));
        frames.append("..");
      }
      frames.append("</text>");
    }
    frames.append("</g>\n");
  };
  auto percent = [&](double n) { return total > 0 ? 100.0 * n / total : 0.0; };
  std::string all_tooltip =
      tree.diff ? absl::StrFormat("all (%s samples, base %s)", FormatSampleCount(tree.total),
                                  FormatSampleCount(tree.total_before))
                : absl::StrFormat("all (%s samples, 100%%)", FormatSampleCount(tree.total));
  emit(kPad, usable, 0, "all", all_tooltip, "rgb(215,215,222)");
  std::vector<double> next(tree.max_depth + 2, 0.0);
  for (size_t i = 0; i < tree.nodes.size();) {
    const FlameTree::Node& node = tree.nodes[i];
    const double x = next[node.depth];
    const double w = static_cast<double>(node.total) * px_per_sample;
    next[node.depth] += w;
    next[node.depth + 1] = x;
    if (w < 0.1) {  // flamegraph.pl's default --minwidth: invisible anyway
      i = SubtreeEnd(tree, i);
      continue;
    }
    const std::string& name = tree.names[node.name];
    std::string tooltip;
    if (tree.diff) {
      double before = static_cast<double>(node.before) * scale_before;
      double delta = static_cast<double>(node.total) - before;
      tooltip = absl::StrFormat("%s (before %s, after %s, delta %+.0f = %+.2f%%)", name,
                                FormatSampleCount(static_cast<uint64_t>(std::llround(before))),
                                FormatSampleCount(node.total), delta, percent(delta));
    } else {
      tooltip = absl::StrFormat("%s (%s samples, %.2f%%)", name,
                                FormatSampleCount(node.total),
                                percent(static_cast<double>(node.total)));
    }
    emit(kPad + x, w, static_cast<int>(node.depth) + 1, name, tooltip, fill_of(node));
    ++i;
  }

  std::string title_xml;
  AppendXmlEscaped(&title_xml, title);
  std::string meta_line;
  for (const MetaItem& item : MetadataLine(metadata, tree.total)) {
    if (!meta_line.empty()) meta_line.append("  \xC2\xB7  ");
    absl::StrAppend(&meta_line, item.label, ": ", item.value);
  }
  if (tree.diff) {
    absl::StrAppend(&meta_line, "  \xC2\xB7  red: grew, blue: shrank",
                    options.normalize ? " (base normalized)" : " (raw counts)");
  }
  std::string meta_xml;
  AppendXmlEscaped(&meta_xml, meta_line);

  kainjow::mustache::data data;
  data.set("width", absl::StrCat(kSvgWidth));
  data.set("height", absl::StrCat(height));
  data.set("center", absl::StrCat(kSvgWidth / 2));
  data.set("search_x", absl::StrCat(kSvgWidth - 10));
  data.set("matched_y", absl::StrCat(height - 10));
  data.set("details_y", absl::StrCat(height - 10));
  data.set("inverted", options.inverted ? "true" : "false");
  data.set("title_xml", title_xml);
  data.set("meta_xml", meta_xml);
  if (tree.total < 1000) data.set("few_samples", true);
  data.set("frames_svg", std::move(frames));
  if (!stacks_text.empty()) data.set("stacks_text", std::string(stacks_text));
  return RenderTemplate("flame_graph.svg.mustache", data, options);
}

}  // namespace render_internal

inline absl::StatusOr<std::string> RenderFlameGraphSvg(const Profile& profile,
                                                       const RenderOptions& options) {
  FlameTree tree = BuildFlameTree(profile, options);
  std::string title = !options.title.empty()              ? options.title
                      : !profile.metadata().title.empty() ? profile.metadata().title
                                                          : std::string("Flame graph");
  return render_internal::RenderSvgFromTree(tree, title, profile.metadata(), options,
                                            EncodeEmbeddedStacks(profile));
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_SVG_H_
