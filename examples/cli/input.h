// SPDX-License-Identifier: Apache-2.0
// File: input.h
//
// The input half shared by `convert` and `diff`: read a profile (collapsed
// text for now), build the transform list from --transforms, --include and
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
    "                        instead of failing\n";

// LoadProfile()
//
// Reads a collapsed file ("-" is standard input). With `lenient`, warns on
// io.err about skipped lines.
absl::StatusOr<Profile> LoadProfile(absl::string_view path, bool lenient,
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
