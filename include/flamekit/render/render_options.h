// SPDX-License-Identifier: Apache-2.0
// File: render_options.h
//
// RenderOptions: what every flamekit renderer (HTML flame graph, diff graph,
// SVG, pprof, collapsed text) is told, and the output formats chosen by a
// file's extension. Plain values and pure functions: safe to use from any
// thread; never from a signal handler (they allocate).
//
// Example:
//
//   flamekit::RenderOptions options;
//   options.title = "checkout service, after the fix";
//   options.minwidth = 0.05;  // prune frames under 0.05 % of the samples
//   FLAMEKIT_ASSIGN_OR_RETURN(flamekit::OutputFormat format,
//                             flamekit::FormatFromPath("flame.svg"));

#ifndef FLAMEKIT_RENDER_RENDER_OPTIONS_H_
#define FLAMEKIT_RENDER_RENDER_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace flamekit {

enum class OutputFormat {
  kAuto = 0,   // by the output path's extension
  kHtml,       // .html: interactive canvas flame graph (or diff graph)
  kSvg,        // .svg: standalone SVG with flamegraph.pl-style zoom/search
  kCollapsed,  // .txt, .collapsed: FlameGraph's collapsed stacks
  kPprof,      // .pb.gz, .pprof: gzipped profile.proto
};

// OutputFormatName()
//
// "html", "svg", "collapsed", "pprof" (or "auto").
absl::string_view OutputFormatName(OutputFormat format);

struct RenderOptions {
  // Shown as the page title; empty means the profile's metadata.title, and
  // when that is empty too, "Flame graph" (or "Diff graph").
  std::string title;
  // Prune frames narrower than this percentage of all samples (0 keeps
  // every frame). The SVG also drops frames narrower than 0.1 pixel, as
  // flamegraph.pl does, because nobody can see them.
  double minwidth = 0.0;
  // Icicle view: root at the top (the HTML page opens this way; the SVG is
  // drawn this way).
  bool inverted = false;
  // Reversed view: stacks turned leaf first, so the callers of the hottest
  // leaves are merged.
  bool reverse = false;
  // kAuto picks by the path's extension.
  OutputFormat format = OutputFormat::kAuto;
  // Read the *.mustache templates from this directory instead of the copies
  // embedded at build time (for editing templates without rebuilding).
  std::string templates_dir;
  // Diff graphs only: scale the base profile to the new one's sample total
  // before comparing (the page can still switch to raw counts).
  bool normalize = true;
};

// FormatFromPath()
//
// The format for `path` by its extension: .html/.htm, .svg, .txt/.collapsed,
// .pb.gz/.pprof. InvalidArgument naming the accepted extensions otherwise.
absl::StatusOr<OutputFormat> FormatFromPath(absl::string_view path);

// ParseOutputFormat()
//
// The format named by a --format flag: "html", "svg", "collapsed" (or
// "txt"), "pprof" (or "pb.gz").
absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name);

// Implementation details follow.

inline absl::string_view OutputFormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kAuto: return "auto";
    case OutputFormat::kHtml: return "html";
    case OutputFormat::kSvg: return "svg";
    case OutputFormat::kCollapsed: return "collapsed";
    case OutputFormat::kPprof: return "pprof";
  }
  return "auto";
}

inline absl::StatusOr<OutputFormat> FormatFromPath(absl::string_view path) {
  std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".html") || absl::EndsWith(lower, ".htm")) {
    return OutputFormat::kHtml;
  }
  if (absl::EndsWith(lower, ".svg")) return OutputFormat::kSvg;
  if (absl::EndsWith(lower, ".txt") || absl::EndsWith(lower, ".collapsed")) {
    return OutputFormat::kCollapsed;
  }
  if (absl::EndsWith(lower, ".pb.gz") || absl::EndsWith(lower, ".pprof")) {
    return OutputFormat::kPprof;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot tell the output format of \"", path,
      "\": name it .html, .svg, .txt, .collapsed, .pb.gz or .pprof, or give "
      "the format explicitly (--format=html|svg|collapsed|pprof)"));
}

inline absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "html" || lower == "htm") return OutputFormat::kHtml;
  if (lower == "svg") return OutputFormat::kSvg;
  if (lower == "collapsed" || lower == "txt" || lower == "folded") {
    return OutputFormat::kCollapsed;
  }
  if (lower == "pprof" || lower == "pb.gz" || lower == "pb") {
    return OutputFormat::kPprof;
  }
  if (lower == "auto" || lower.empty()) return OutputFormat::kAuto;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown output format \"", name,
      "\": use html, svg, collapsed (txt) or pprof"));
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_RENDER_OPTIONS_H_
