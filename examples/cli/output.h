// SPDX-License-Identifier: Apache-2.0
// File: output.h
//
// The output step of `flamekit convert` and `flamekit diff`: the format is
// chosen by the output path's extension, in one place, so new writers
// (HTML, SVG, pprof from render/) are wired in here and nowhere else. Main
// thread only; never for signal handlers.
//
//   .txt .collapsed .folded   collapsed text (diff: FlameGraph's
//                             difffolded "stack before after" lines)
//   -                         collapsed text on standard output
//   anything else             Unimplemented "format .html not built yet"
//
// Example:
//
//   FLAMEKIT_RETURN_IF_ERROR(WriteOutput(profile, "out.txt", {}));

#ifndef FLAMEKIT_EXAMPLES_CLI_OUTPUT_H_
#define FLAMEKIT_EXAMPLES_CLI_OUTPUT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "flamekit/profile/diff.h"
#include "flamekit/profile/profile.h"

namespace flamekit {
namespace cli {

struct OutputOptions {
  // Where "-" writes; required for "-".
  std::ostream* stdout_stream = nullptr;
  // diff only: scale `before` counts to the `after` total (rounded).
  bool normalize = false;
};

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
absl::Status CheckOutputFormat(absl::string_view path, bool diff);

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
