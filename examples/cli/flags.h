// SPDX-License-Identifier: Apache-2.0
// File: flags.h
//
// A small command-line parser for subcommands, by hand rather than with
// absl flags: absl flags are process-global (one set for all commands) and
// exit the process on errors, while each subcommand here has its own flags
// and reports a mistake as a Status its caller turns into a friendly usage
// message and exit code 2. Main thread only.
//
// Accepted forms: `--name value`, `--name=value`, `-f value` (a flag's
// short alias), boolean `--name`; `--` ends the flags; a lone `-` is a
// positional argument (standard input/output). `-h`/`--help` set help.
//
// Example:
//
//   const FlagSpec kFlags[] = {{"--output", "-f", true}, {"--threads", "", false}};
//   absl::StatusOr<ParsedArgs> args = ParseArgs(argv, kFlags);
//   if (!args.ok()) return UsageError(command, args.status().message(), io);
//   std::string output = args->Value("--output");

#ifndef FLAMEKIT_EXAMPLES_CLI_FLAGS_H_
#define FLAMEKIT_EXAMPLES_CLI_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace flamekit {
namespace cli {

struct FlagSpec {
  const char* name;        // "--output"
  const char* short_name;  // "-f", or "" for none
  bool takes_value;        // false: a boolean switch
};

struct ParsedArgs {
  std::vector<std::string> positional;
  // Canonical (long) flag name -> value ("" for switches).
  std::map<std::string, std::string> flags;
  bool help = false;

  bool Has(absl::string_view name) const;
  // The value of a flag, or `fallback` when it was not given.
  std::string Value(absl::string_view name, absl::string_view fallback = "") const;
};

// ParseArgs()
//
// InvalidArgument with a message for the user on an unknown flag, a
// missing value, a value given to a switch, or a flag given twice.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs);

// ParsePositiveInt()
//
// `text` as an integer in [1, max]; InvalidArgument naming `flag` if not.
absl::StatusOr<int64_t> ParsePositiveInt(absl::string_view flag,
                                         absl::string_view text, int64_t max);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_FLAGS_H_
