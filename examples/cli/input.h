// SPDX-License-Identifier: Apache-2.0
// File: input.h
//
// The input half shared by `convert` and `diff`: read a profile (collapsed
// text, perf script, pprof, flamekit's HTML/SVG pages), build the transform list from --transforms, --include and
// --exclude, merge or keep per-thread roots (--threads), apply. Main thread
// only.

#ifndef FLAMEKIT_EXAMPLES_CLI_INPUT_H_
#define FLAMEKIT_EXAMPLES_CLI_INPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "examples/cli/command.h"
#include "examples/cli/flags.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profile/transform.h"

namespace flamekit {
namespace cli {

// The flags every profile-reading command takes; commands list these in
// their FlagSpec arrays and their help.
inline constexpr FlagSpec kIncludeFlag = {"--include", "", true};
inline constexpr FlagSpec kExcludeFlag = {"--exclude", "", true};
inline constexpr FlagSpec kTransformsFlag = {"--transforms", "", true};
inline constexpr FlagSpec kThreadsFlag = {"--threads", "", false};
inline constexpr FlagSpec kLenientFlag = {"--lenient", "", false};
inline constexpr FlagSpec kOutputFlag = {"--output", "-f", true};
inline constexpr FlagSpec kSampleTypeFlag = {"--sample-type", "", true};

inline constexpr char kInputFlagsHelp[] =
    "  --include RE          keep only stacks with a frame matching RE (RE2)\n"
    "  --exclude RE          drop stacks with a frame matching RE\n"
    "  --transforms FILE     apply the JSON transform list in FILE first, e.g.\n"
    "                        [{\"replace\": \"std::__1::\", \"with\": \"std::\"},\n"
    "                         {\"hide\": \"^__libc\"}, {\"max_depth\": 40}]\n"
    "  --threads             keep one root frame per thread (when the input has\n"
    "                        them, e.g. \"[worker tid=12]\"); without it threads\n"
    "                        are merged\n"
    "  --lenient             skip malformed input lines (and say how many)\n"
    "                        instead of failing\n"
    "  --sample-type NAME    pprof input: the sample type to keep (e.g. cpu,\n"
    "                        alloc_space); default 'samples' when present, else\n"
    "                        the file's default; the choice is printed\n";

// What the reading commands accept, for their help texts.
inline constexpr char kInputFormatsHelp[] =
    "Inputs are told apart by content, not by name: collapsed stacks\n"
    "('frame;frame;frame COUNT' a line, as FlameGraph, async-profiler and\n"
    "flamekit write them), `perf script` output (with or without -g), pprof\n"
    "(.pb.gz/.pprof from flamekit, Go and other tools; gzipped or raw), and\n"
    "flamekit's own .html and .svg flame graphs (record, watch, convert), which\n"
    "carry their exact stacks. Gzipped text is read too. Pages and pprof files\n"
    "are read whole, up to 256 MiB (and 256 MiB once decompressed).\n";

// LoadProfile()
//
// Reads a profile in any format (profile/read_profile.h; "-" is standard
// input) with --lenient and --sample-type from `args`. Says on io.err what
// was skipped and which pprof sample type was kept.
absl::StatusOr<Profile> LoadProfile(absl::string_view path, const ParsedArgs& args,
                                    CommandIo& io);

// BuildTransforms()
//
// --transforms FILE, then --include RE (a filter), then --exclude RE (a
// remove), as one list. Errors name the flag or file.
absl::StatusOr<TransformList> BuildTransforms(const ParsedArgs& args);

// BuildTransformList()
//
// The same from values: the transform file (when not empty), then each
// include as a filter and each exclude as a remove.
absl::StatusOr<TransformList> BuildTransformList(absl::string_view transforms_path,
                                                 absl::Span<const std::string> includes,
                                                 absl::Span<const std::string> excludes);

// PrepareProfile()
//
// Merges thread roots unless --threads (noting on io.err when --threads
// was asked of an input without threads), then applies `transforms`.
Profile PrepareProfile(const Profile& profile, const TransformList& transforms,
                       bool threads, absl::string_view input_name, CommandIo& io);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_INPUT_H_
