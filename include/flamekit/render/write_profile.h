// SPDX-License-Identifier: Apache-2.0
// File: write_profile.h
//
// The one entry point the CLI, the embedded profiler and the UI use to turn
// a Profile into a file: WriteProfile() picks the format by the path's
// extension (.html .svg .txt .collapsed .pb.gz .pprof) or
// RenderOptions::format, renders in memory and writes through
// AtomicFileWriter, so the file is complete or absent. RenderProfile() is
// the in-memory form (what the UI serves). Safe to call from many threads
// at once for different paths; never from a signal handler.
//
// Example:
//
//   flamekit::RenderOptions options;
//   options.title = "before the fix";
//   FLAMEKIT_RETURN_IF_ERROR(flamekit::WriteProfile(profile, "cpu.html", options));

#ifndef FLAMEKIT_RENDER_WRITE_PROFILE_H_
#define FLAMEKIT_RENDER_WRITE_PROFILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/profile/diff.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/collapsed.h"
#include "flamekit/render/diff_graph.h"
#include "flamekit/render/flame_graph.h"
#include "flamekit/render/pprof.h"
#include "flamekit/render/render_options.h"
#include "flamekit/render/svg.h"

namespace flamekit {

// ResolveFormat()
//
// options.format, or the format `path`'s extension names when that is kAuto.
absl::StatusOr<OutputFormat> ResolveFormat(absl::string_view path,
                                           const RenderOptions& options);

// RenderProfile()
//
// The bytes of `profile` in `format` (not kAuto).
absl::StatusOr<std::string> RenderProfile(const Profile& profile, OutputFormat format,
                                          const RenderOptions& options = {});

// WriteProfile()
//
// Renders `profile` and writes it to `path` atomically. InvalidArgument for
// an unknown extension (with the list of known ones); the file-system errors
// of AtomicFileWriter (directory missing, no space, permission) otherwise.
absl::Status WriteProfile(const Profile& profile, absl::string_view path,
                          const RenderOptions& options = {});

// RenderDiff()
//
// The bytes of `diff` in `format`: html (diff graph), svg, collapsed
// (difffolded "stack before after"). pprof has no diff form:
// InvalidArgument saying to write both profiles and use -diff_base.
absl::StatusOr<std::string> RenderDiff(const DiffProfile& diff, OutputFormat format,
                                       const RenderOptions& options = {});

// WriteDiff()
//
// Renders `diff` by `path`'s extension (or options.format) and writes it
// atomically.
absl::Status WriteDiff(const DiffProfile& diff, absl::string_view path,
                       const RenderOptions& options = {});

// Implementation details follow.

inline absl::StatusOr<OutputFormat> ResolveFormat(absl::string_view path,
                                                  const RenderOptions& options) {
  if (options.format != OutputFormat::kAuto) return options.format;
  return FormatFromPath(path);
}

inline absl::StatusOr<std::string> RenderProfile(const Profile& profile,
                                                 OutputFormat format,
                                                 const RenderOptions& options) {
  switch (format) {
    case OutputFormat::kHtml: return RenderFlameGraphHtml(profile, options);
    case OutputFormat::kSvg: return RenderFlameGraphSvg(profile, options);
    case OutputFormat::kCollapsed: return RenderCollapsed(profile);
    case OutputFormat::kPprof: return RenderPprof(profile);
    case OutputFormat::kAuto: break;
  }
  return absl::InvalidArgumentError(
      "RenderProfile needs a concrete format: html, svg, collapsed or pprof");
}

inline absl::Status WriteProfile(const Profile& profile, absl::string_view path,
                                 const RenderOptions& options) {
  absl::StatusOr<OutputFormat> format = ResolveFormat(path, options);
  if (!format.ok()) return format.status();
  absl::StatusOr<std::string> bytes = RenderProfile(profile, *format, options);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

inline absl::StatusOr<std::string> RenderDiff(const DiffProfile& diff, OutputFormat format,
                                              const RenderOptions& options) {
  switch (format) {
    case OutputFormat::kHtml: return RenderDiffGraphHtml(diff, options);
    case OutputFormat::kSvg: return RenderDiffGraphSvg(diff, options);
    case OutputFormat::kCollapsed: return RenderDiffCollapsed(diff, options.normalize);
    case OutputFormat::kPprof:
      return absl::InvalidArgumentError(
          "a diff cannot be written as pprof: write both profiles as .pb.gz and compare "
          "them with `go tool pprof -diff_base=BASE.pb.gz NEW.pb.gz`, or choose .html, "
          ".svg or .collapsed");
    case OutputFormat::kAuto: break;
  }
  return absl::InvalidArgumentError(
      "RenderDiff needs a concrete format: html, svg or collapsed");
}

inline absl::Status WriteDiff(const DiffProfile& diff, absl::string_view path,
                              const RenderOptions& options) {
  absl::StatusOr<OutputFormat> format = ResolveFormat(path, options);
  if (!format.ok()) return format.status();
  absl::StatusOr<std::string> bytes = RenderDiff(diff, *format, options);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_WRITE_PROFILE_H_
