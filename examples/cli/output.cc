// SPDX-License-Identifier: Apache-2.0
#include "examples/cli/output.h"

#include <math.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/profile/collapsed_io.h"

namespace flamekit {
namespace cli {
namespace {

bool IsCollapsedExtension(absl::string_view ext) {
  return ext == ".txt" || ext == ".collapsed" || ext == ".folded";
}

absl::Status Unsupported(absl::string_view path, absl::string_view what) {
  std::string ext = OutputExtension(path);
  if (ext.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot tell the output format of '", path, "': give the file an "
        "extension such as .txt (collapsed ", what, ")"));
  }
  return absl::UnimplementedError(absl::StrCat(
      "format ", ext, " not built yet; write collapsed ", what,
      " to a .txt, .collapsed or .folded file"));
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

absl::Status CheckOutputFormat(absl::string_view path, bool diff) {
  if (path == "-" || IsCollapsedExtension(OutputExtension(path))) {
    return absl::OkStatus();
  }
  // Keep in step with WriteOutput() and WriteDiffOutput().
  return Unsupported(path, diff ? "diff text" : "text");
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
  const std::string ext = OutputExtension(path);
  if (IsCollapsedExtension(ext)) return WriteCollapsedFile(profile, path);
  // New formats go here, e.g.:
  //   if (ext == ".html") return WriteFlameGraphHtmlFile(profile, path, ...);
  return Unsupported(path, "text");
}

std::string DiffFoldedText(const DiffProfile& diff, bool normalize) {
  std::vector<std::string> texts(diff.frames.frame_count());
  for (size_t i = 0; i < texts.size(); ++i) {
    texts[i] = CollapsedFrameText(diff.frames.frame(static_cast<FrameId>(i)));
  }
  std::string out;
  for (const DiffStack& s : diff.stacks) {
    for (size_t i = 0; i < s.frames.size(); ++i) {
      if (i) out += ';';
      out += texts[s.frames[i]];
    }
    uint64_t before = s.before;
    if (normalize) before = static_cast<uint64_t>(llround(diff.NormalizedBefore(s)));
    absl::StrAppend(&out, " ", before, " ", s.after, "\n");
  }
  return out;
}

absl::Status WriteDiffOutput(const DiffProfile& diff, absl::string_view path,
                             const OutputOptions& options) {
  if (path == "-" || IsCollapsedExtension(OutputExtension(path))) {
    return WriteText(path, DiffFoldedText(diff, options.normalize), options);
  }
  // New formats go here, e.g.:
  //   if (ext == ".html") return WriteDiffFlameGraphHtmlFile(diff, path, ...);
  return Unsupported(path, "diff text");
}

}  // namespace cli
}  // namespace flamekit
