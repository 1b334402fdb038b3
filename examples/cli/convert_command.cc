// SPDX-License-Identifier: Apache-2.0
//
// flamekit convert INPUT... -f OUTPUT: read a profile (several are merged),
// transform it, write it in the format the output's extension names.

#include <string>

#include "absl/strings/str_cat.h"
#include "examples/cli/command.h"
#include "examples/cli/flags.h"
#include "examples/cli/input.h"
#include "examples/cli/output.h"
#include "flamekit/profile/hot_functions.h"

namespace flamekit {
namespace cli {
namespace {

constexpr FlagSpec kTopFlag = {"--top", "", true};

constexpr char kDetails[] =
    "Reads INPUT (any format below; '-' reads standard input) and writes\n"
    "OUTPUT in the format its extension\n"
    "names: .html (interactive flame graph), .svg, .pb.gz or .pprof (pprof),\n"
    ".txt, .collapsed or .folded (collapsed text; '-' for standard\n"
    "output). Several INPUTs are merged into one profile (their samples\n"
    "add up).\n\n"
    "Flags:\n"
    "  -f, --output OUTPUT   where to write (required)\n"
    "  --top N               also print the N hottest functions (self and total)\n";

int Run(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const std::string* const details =
      new std::string(absl::StrCat(kDetails, kRenderFlagsHelp, kInputFlagsHelp, "\n",
                                   kInputFormatsHelp));
  static const Command command = {
      "convert",
      "Convert a profile to another format, filtering and transforming stacks",
      "flamekit convert INPUT... -f OUTPUT [--include RE] [--exclude RE] "
      "[--transforms FILE.json] [--threads] [--lenient] [--sample-type NAME] [--top N] "
      "[--format F] [--title T] [--minwidth PCT] [--inverted] [--reverse]",
      details->c_str(),
      {kOutputFlag,  kIncludeFlag, kExcludeFlag, kTransformsFlag,
       kThreadsFlag, kLenientFlag, kTopFlag, kSampleTypeFlag,     kTitleFlag,
       kMinwidthFlag, kInvertedFlag, kReverseFlag, kFormatFlag},
      &Run};
  return command;
}

int Run(const ParsedArgs& args, CommandIo& io) {
  const Command& command = Self();
  if (args.positional.empty()) return UsageError(command, "missing INPUT", io);
  int stdin_inputs = 0;
  for (const std::string& p : args.positional) stdin_inputs += p == "-";
  if (stdin_inputs > 1) {
    return UsageError(command, "standard input ('-') can be read only once", io);
  }
  if (!args.Has(kOutputFlag.name) || args.Value(kOutputFlag.name).empty()) {
    return UsageError(command, "missing -f OUTPUT", io);
  }
  int64_t top = 0;
  if (args.Has(kTopFlag.name)) {
    absl::StatusOr<int64_t> n = ParsePositiveInt("--top", args.Value(kTopFlag.name), 100000);
    if (!n.ok()) return UsageError(command, n.status().message(), io);
    top = *n;
  }
  const std::string input = args.positional.size() == 1
                                ? args.positional[0]
                                : absl::StrCat(args.positional.size(), " inputs");
  const std::string output = args.Value(kOutputFlag.name);

  // Transforms first: a bad regex should not wait for a large input.
  absl::StatusOr<RenderOptions> render = BuildRenderOptions(args);
  if (!render.ok()) return UsageError(command, render.status().message(), io);
  absl::Status format = CheckOutputFormat(output, /*diff=*/false, *render);
  if (!format.ok()) return ExitCode(command, format, io);
  absl::StatusOr<TransformList> transforms = BuildTransforms(args);
  if (!transforms.ok()) return ExitCode(command, transforms.status(), io);
  absl::StatusOr<Profile> loaded =
      LoadProfile(args.positional[0], args, io);
  if (!loaded.ok()) return ExitCode(command, loaded.status(), io);
  for (size_t i = 1; i < args.positional.size(); ++i) {
    absl::StatusOr<Profile> more =
        LoadProfile(args.positional[i], args, io);
    if (!more.ok()) return ExitCode(command, more.status(), io);
    absl::StatusOr<Profile> merged = MergeProfiles(*loaded, *more);
    if (!merged.ok()) {
      return ExitCode(command,
                      absl::Status(merged.status().code(),
                                   absl::StrCat(args.positional[i], ": ",
                                                merged.status().message())),
                      io);
    }
    loaded = *std::move(merged);
  }
  Profile profile =
      PrepareProfile(*loaded, *transforms, args.Has(kThreadsFlag.name), input, io);
  if (profile.total_samples() == 0) {
    return ExitCode(command,
                    absl::FailedPreconditionError(absl::StrCat(
                        "no samples left after the filters and transforms (",
                        loaded->total_samples(), " before); loosen --include, "
                        "--exclude or the transform list")),
                    io);
  }
  OutputOptions options;
  options.render = *render;
  options.stdout_stream = &io.out;
  absl::Status written = WriteOutput(profile, output, options);
  if (!written.ok()) return ExitCode(command, written, io);
  if (output != "-") {
    io.err << "wrote " << output << ": " << profile.stack_count() << " stacks, "
           << profile.total_samples() << " samples\n";
  }
  if (top > 0) {
    io.out << FormatHotFunctions(profile,
                                 ComputeHotFunctions(profile, static_cast<size_t>(top)));
  }
  return kExitOk;
}

}  // namespace

Command ConvertCommand() { return Self(); }

}  // namespace cli
}  // namespace flamekit
