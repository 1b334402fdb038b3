// SPDX-License-Identifier: Apache-2.0
//
// flamekit diff BASE NEW -f OUTPUT: per-stack before/after counts of two
// profiles, for differential flame graphs.

#include <string>

#include "absl/strings/str_cat.h"
#include "examples/cli/command.h"
#include "examples/cli/flags.h"
#include "examples/cli/input.h"
#include "examples/cli/output.h"
#include "flamekit/profile/diff.h"

namespace flamekit {
namespace cli {
namespace {

constexpr FlagSpec kNormalizeFlag = {"--normalize", "-n", false};

constexpr char kDetails[] =
    "Reads two profiles (any format below, e.g. two `record` or `watch` .html\n"
    "captures; '-' reads standard input for one of them), matches their stacks and writes, for every stack of either, its\n"
    "samples before (BASE) and after (NEW). OUTPUT's extension names the\n"
    "format: .html for an interactive diff graph (growth red, shrink blue),\n"
    ".svg, or .txt, .collapsed, .folded for FlameGraph's difffolded text\n"
    "('frame;frame BEFORE AFTER' a line, which flamegraph.pl draws as a\n"
    "differential flame graph); '-' writes the text to standard output.\n\n"
    "Flags:\n"
    "  -f, --output OUTPUT   where to write (required)\n"
    "  -n, --normalize       scale BEFORE counts so both sides have the same\n"
    "                        total (compare shapes of captures of different\n"
    "                        lengths)\n"
    "The filters and transforms below apply to both profiles. Both must have\n"
    "sampled the same event (the pages and pprof files say which).\n";

int Run(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const std::string* const details =
      new std::string(absl::StrCat(kDetails, kRenderFlagsHelp, kInputFlagsHelp, "\n",
                                   kInputFormatsHelp));
  static const Command command = {
      "diff", "Compare two profiles stack by stack (before/after counts)",
      "flamekit diff BASE NEW -f OUTPUT [--normalize] [--include RE] "
      "[--exclude RE] [--transforms FILE.json] [--threads] [--lenient] "
      "[--sample-type NAME] "
      "[--format F] [--title T] [--minwidth PCT] [--inverted] [--reverse]",
      details->c_str(),
      {kOutputFlag,  kNormalizeFlag, kIncludeFlag, kExcludeFlag,
       kTransformsFlag, kThreadsFlag, kLenientFlag, kSampleTypeFlag,
       kTitleFlag,   kMinwidthFlag,  kInvertedFlag, kReverseFlag,
       kFormatFlag},
      &Run};
  return command;
}

int Run(const ParsedArgs& args, CommandIo& io) {
  const Command& command = Self();
  if (args.positional.size() != 2) {
    return UsageError(command,
                      absl::StrCat("expected two profiles, BASE and NEW; got ",
                                   args.positional.size()),
                      io);
  }
  if (args.positional[0] == "-" && args.positional[1] == "-") {
    return UsageError(command, "only one of BASE and NEW can be '-' (standard input)", io);
  }
  if (!args.Has(kOutputFlag.name) || args.Value(kOutputFlag.name).empty()) {
    return UsageError(command, "missing -f OUTPUT", io);
  }
  const std::string output = args.Value(kOutputFlag.name);
  absl::StatusOr<RenderOptions> render = BuildRenderOptions(args);
  if (!render.ok()) return UsageError(command, render.status().message(), io);
  absl::Status format = CheckOutputFormat(output, /*diff=*/true, *render);
  if (!format.ok()) return ExitCode(command, format, io);
  absl::StatusOr<TransformList> transforms = BuildTransforms(args);
  if (!transforms.ok()) return ExitCode(command, transforms.status(), io);
  const bool threads = args.Has(kThreadsFlag.name);
  Profile sides[2];
  for (int i = 0; i < 2; ++i) {
    const std::string& path = args.positional[static_cast<size_t>(i)];
    absl::StatusOr<Profile> loaded = LoadProfile(path, args, io);
    if (!loaded.ok()) return ExitCode(command, loaded.status(), io);
    sides[i] = PrepareProfile(*loaded, *transforms, threads, path, io);
  }
  if (sides[0].metadata().event != sides[1].metadata().event) {
    return ExitCode(command,
                    absl::InvalidArgumentError(absl::StrCat(
                        "BASE sampled '", sides[0].metadata().event, "' but NEW '",
                        sides[1].metadata().event,
                        "'; compare profiles of the same event")),
                    io);
  }
  if (sides[0].total_samples() == 0 && sides[1].total_samples() == 0) {
    return ExitCode(command,
                    absl::FailedPreconditionError(
                        "no samples left in either profile after the filters and "
                        "transforms; loosen --include, --exclude or the transform list"),
                    io);
  }
  DiffProfile diff = ComputeDiff(sides[0], sides[1]);
  OutputOptions options;
  options.render = *render;
  options.stdout_stream = &io.out;
  options.normalize = args.Has(kNormalizeFlag.name);
  absl::Status written = WriteDiffOutput(diff, output, options);
  if (!written.ok()) return ExitCode(command, written, io);
  if (output != "-") {
    io.err << "wrote " << output << ": " << diff.stacks.size() << " stacks, "
           << diff.total_before << " samples before, " << diff.total_after
           << " after" << (options.normalize ? " (before normalized)" : "") << "\n";
  }
  return kExitOk;
}

}  // namespace

Command DiffCommand() { return Self(); }

}  // namespace cli
}  // namespace flamekit
