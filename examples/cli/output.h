// SPDX-License-Identifier: Apache-2.0
// File: output.h
//
// The output step of `flamekit convert` and `flamekit diff`: the format is
// chosen by the output path's extension, in one place, so new writers
// (HTML, SVG, pprof from render/) are wired in here and nowhere else. Main
// thread only; never for signal handlers.
//
//   .txt .collapsed .folded   collapsed text, streamed (diff: FlameGraph's
//                             difffolded "stack before after" lines)
//   -                         collapsed text on standard output
//   .html .svg .pb.gz .pprof  render/write_profile.h (flame graph, diff
//                             graph, SVG, pprof), or --format for any path
//
// Example:
//
//   FLAMEKIT_RETURN_IF_ERROR(WriteOutput(profile, "out.txt", {}));

#ifndef FLAMEKIT_EXAMPLES_CLI_OUTPUT_H_
#define FLAMEKIT_EXAMPLES_CLI_OUTPUT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "examples/cli/flags.h"
#include "flamekit/profile/diff.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/render_options.h"

namespace flamekit {
namespace cli {

struct OutputOptions {
  // Where "-" writes; required for "-".
  std::ostream* stdout_stream = nullptr;
  // diff only: scale `before` counts to the `after` total (rounded).
  bool normalize = false;
  // Title, pruning, views and an explicit format, for the rendered formats.
  RenderOptions render;
};

// The flags every command that writes a rendered output accepts, and their
// help text.
inline constexpr FlagSpec kTitleFlag = {"--title", "", true};
inline constexpr FlagSpec kMinwidthFlag = {"--minwidth", "", true};
inline constexpr FlagSpec kInvertedFlag = {"--inverted", "", false};
inline constexpr FlagSpec kReverseFlag = {"--reverse", "", false};
inline constexpr FlagSpec kFormatFlag = {"--format", "", true};
inline constexpr char kRenderFlagsHelp[] =
    "  --format FORMAT       html, svg, collapsed or pprof, whatever OUTPUT's\n"
    "                        extension (default: by extension)\n"
    "  --title TEXT          title of the flame graph\n"
    "  --minwidth PERCENT    prune frames narrower than this share of samples\n"
    "  --inverted            icicle view (root at the top)\n"
    "  --reverse             callers of the hottest leaves merged (leaf first)\n";

// BuildRenderOptions()
//
// RenderOptions from the flags above; InvalidArgument for a bad --minwidth
// or --format.
absl::StatusOr<RenderOptions> BuildRenderOptions(const ParsedArgs& args);

// OutputExtension()
//
// The extension of `path` with its dot (".txt"), lowercased, or "" when
// the file name has none.
std::string OutputExtension(absl::string_view path);

// CheckOutputFormat()
//
// OK when WriteOutput() (or WriteDiffOutput() when `diff`) can write `path`'s
// format; the same error it would return otherwise. Lets a command fail
// before reading a large input.
absl::Status CheckOutputFormat(absl::string_view path, bool diff,
                               const RenderOptions& render = {});

// WriteOutput()
//
// Writes `profile` to `path` in the format its extension names; the file
// is complete or absent.
absl::Status WriteOutput(const Profile& profile, absl::string_view path,
                         const OutputOptions& options);

// WriteDiffOutput()
//
// Writes `diff` to `path` in the format its extension names.
absl::Status WriteDiffOutput(const DiffProfile& diff, absl::string_view path,
                             const OutputOptions& options);

// DiffFoldedText()
//
// FlameGraph's difffolded text: "frame;frame BEFORE AFTER" a line, stacks in
// DiffProfile order; with `normalize`, BEFORE is scaled to the AFTER total
// and rounded to the nearest integer.
std::string DiffFoldedText(const DiffProfile& diff, bool normalize);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_OUTPUT_H_
