// SPDX-License-Identifier: Apache-2.0
#include "examples/cli/output.h"

#include <math.h>
#include <stdlib.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/write_profile.h"

namespace flamekit {
namespace cli {
namespace {

bool IsCollapsedExtension(absl::string_view ext) {
  return ext == ".txt" || ext == ".collapsed" || ext == ".folded";
}

absl::Status WriteText(absl::string_view path, absl::string_view text,
                       const OutputOptions& options) {
  if (path == "-") {
    if (options.stdout_stream == nullptr) {
      return absl::InternalError("no standard output stream given");
    }
    options.stdout_stream->write(text.data(), static_cast<std::streamsize>(text.size()));
    options.stdout_stream->flush();
    if (!*options.stdout_stream) {
      return absl::UnavailableError("cannot write to standard output");
    }
    return absl::OkStatus();
  }
  return WriteFileAtomically(path, text);
}

}  // namespace

std::string OutputExtension(absl::string_view path) {
  size_t slash = path.rfind('/');
  absl::string_view base = slash == absl::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = base.rfind('.');
  if (dot == absl::string_view::npos || dot == 0) return "";
  return absl::AsciiStrToLower(base.substr(dot));
}

absl::StatusOr<RenderOptions> BuildRenderOptions(const ParsedArgs& args) {
  RenderOptions render;
  render.title = args.Value(kTitleFlag.name);
  render.inverted = args.Has(kInvertedFlag.name);
  render.reverse = args.Has(kReverseFlag.name);
  if (args.Has(kMinwidthFlag.name)) {
    absl::StatusOr<double> value =
        ParsePercentFlag(kMinwidthFlag.name, args.Value(kMinwidthFlag.name));
    if (!value.ok()) return value.status();
    render.minwidth = *value;
  }
  if (args.Has(kFormatFlag.name)) {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(args.Value(kFormatFlag.name));
    if (!format.ok()) return format.status();
    render.format = *format;
  }
  return render;
}

namespace {

// Collapsed text is streamed by collapsed_io (bounded memory for huge
// profiles); every other format is rendered by render/write_profile.h.
bool StreamsCollapsed(absl::string_view path, const RenderOptions& render) {
  if (path == "-") return true;
  if (render.format != OutputFormat::kAuto) return render.format == OutputFormat::kCollapsed;
  return IsCollapsedExtension(OutputExtension(path));
}

}  // namespace

absl::Status CheckOutputFormat(absl::string_view path, bool diff,
                               const RenderOptions& render) {
  if (StreamsCollapsed(path, render)) return absl::OkStatus();
  absl::StatusOr<OutputFormat> format = ResolveFormat(path, render);
  if (!format.ok()) return format.status();
  if (diff && *format == OutputFormat::kPprof) {
    // The same message WriteDiff() gives, before any input is read.
    return RenderDiff(DiffProfile(), OutputFormat::kPprof, render).status();
  }
  return absl::OkStatus();
}

absl::Status WriteOutput(const Profile& profile, absl::string_view path,
                         const OutputOptions& options) {
  if (path == "-") {
    if (options.stdout_stream == nullptr) {
      return absl::InternalError("no standard output stream given");
    }
    return WriteCollapsed(profile, [&](absl::string_view text) {
      return WriteText("-", text, options);
    });
  }
  if (StreamsCollapsed(path, options.render)) return WriteCollapsedFile(profile, path);
  return WriteProfile(profile, path, options.render);
}

std::string DiffFoldedText(const DiffProfile& diff, bool normalize) {
  return RenderDiffCollapsed(diff, normalize);
}

absl::Status WriteDiffOutput(const DiffProfile& diff, absl::string_view path,
                             const OutputOptions& options) {
  if (StreamsCollapsed(path, options.render)) {
    return WriteText(path, DiffFoldedText(diff, options.normalize), options);
  }
  RenderOptions render = options.render;
  render.normalize = options.normalize;
  return WriteDiff(diff, path, render);
}

}  // namespace cli
}  // namespace flamekit
