// SPDX-License-Identifier: Apache-2.0
// File: record_output.h
//
// FullRecordOutput(): the RecordOutput hooks of `flamekit record` with the
// pipeline's pieces: --include/--exclude/--transforms through
// profile/transform.h (RE2), and the file written atomically in the format
// its extension names. Kept apart from record_cli.h so that only binaries
// that want RE2 and the renderers link them.
//
// Thread-safety: the hooks are called from RunRecord()'s thread; they
// share no state. Not for signal handlers.
//
// Example:
//
//   return flamekit::RunRecord(argc - 1, argv + 1, flamekit::FullRecordOutput());

#ifndef FLAMEKIT_ATTACH_RECORD_OUTPUT_H_
#define FLAMEKIT_ATTACH_RECORD_OUTPUT_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/attach/record_cli.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profile/transform.h"
#include "flamekit/render/render_options.h"
#include "flamekit/render/write_profile.h"

namespace flamekit {

// RecordRenderOptions()
//
// --title, --minwidth, --inverted as the renderers take them.
RenderOptions RecordRenderOptions(const RecordFlags& flags);

// RecordTransforms()
//
// The transform list the flags ask for: --transforms FILE first, then each
// --include as a filter and each --exclude as a remove.
absl::StatusOr<TransformList> RecordTransforms(const RecordFlags& flags);

// FullRecordOutput()
//
// Hooks for RunRecord() with transforms and every output format this build
// has.
RecordOutput FullRecordOutput();

// Implementation details follow.

inline absl::StatusOr<TransformList> RecordTransforms(const RecordFlags& flags) {
  TransformList list;
  if (!flags.transforms_path.empty()) {
    absl::StatusOr<TransformList> file = TransformList::ReadFile(flags.transforms_path);
    if (!file.ok()) return file.status();
    list.Append(*file);
  }
  for (const std::string& re : flags.includes) {
    absl::StatusOr<Transform> t = Transform::Filter(re);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--include '", re, "': ",
                                                     t.status().message()));
    }
    list.Add(*std::move(t));
  }
  for (const std::string& re : flags.excludes) {
    absl::StatusOr<Transform> t = Transform::Remove(re);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--exclude '", re, "': ",
                                                     t.status().message()));
    }
    list.Add(*std::move(t));
  }
  return list;
}

inline RenderOptions RecordRenderOptions(const RecordFlags& flags) {
  RenderOptions options;
  options.title = flags.title;
  options.minwidth = flags.minwidth;
  options.inverted = flags.inverted;
  return options;
}

inline RecordOutput FullRecordOutput() {
  RecordOutput out;
  out.validate = [](const RecordFlags& flags, absl::string_view path) -> absl::Status {
    absl::StatusOr<OutputFormat> format = FormatFromPath(path);
    if (!format.ok()) return format.status();
    absl::StatusOr<TransformList> list = RecordTransforms(flags);
    return list.status();
  };
  out.transform = [](const RecordFlags& flags, Profile& profile) -> absl::Status {
    absl::StatusOr<TransformList> list = RecordTransforms(flags);
    if (!list.ok()) return list.status();
    if (!list->empty()) profile = ApplyTransforms(profile, *list);
    return absl::OkStatus();
  };
  out.write = [](const RecordFlags& flags, const Profile& profile,
                 absl::string_view path) -> absl::Status {
    // Collapsed text through the pipeline's writer, whose output reads back
    // into the same profile (thread roots in brackets, kind suffixes).
    absl::StatusOr<OutputFormat> format = FormatFromPath(path);
    if (format.ok() && *format == OutputFormat::kCollapsed) {
      return WriteCollapsedFile(profile, path);
    }
    return WriteProfile(profile, path, RecordRenderOptions(flags));
  };
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_RECORD_OUTPUT_H_
