// SPDX-License-Identifier: Apache-2.0
// File: flags.h
//
// The one command-line parser of `flamekit` and the value helpers every
// command shares (durations, sizes, intervals, percentages, PIDs), by hand
// rather than with absl flags: absl flags are process-global (one set for
// all commands) and exit the process on errors, while each subcommand here
// has its own flags and reports a mistake as a Status its caller turns into
// a one-line usage message and exit code 2. RunCli() parses every command's
// arguments with ParseArgs() against the command's FlagSpecs, so a command
// never sees raw argv. Main thread only.
//
// Accepted forms: `--name value`, `--name=value`, `-f value` (a flag's
// short alias), boolean `--name`; a flag with `values = 2` takes two
// (`--metric URL SELECTOR`); `--` ends the flags (what follows is
// positional, see ParsedArgs::dashdash); a lone `-` is a positional
// argument (standard input/output). `-h`/`--help` anywhere before `--` set
// help.
//
// Example:
//
//   const FlagSpec kFlags[] = {{"--output", "-f", true}, {"--threads", "", false}};
//   absl::StatusOr<ParsedArgs> args = ParseArgs(argv, kFlags);
//   if (!args.ok()) return UsageError(command, args.status().message(), io);
//   std::string output = args->Value("--output");

#ifndef FLAMEKIT_EXAMPLES_CLI_FLAGS_H_
#define FLAMEKIT_EXAMPLES_CLI_FLAGS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {
namespace cli {

struct FlagSpec {
  const char* name;          // "--output"
  const char* short_name;    // "-f", or "" for none
  bool takes_value;          // false: a boolean switch
  bool repeated = false;     // may be given more than once (values collect)
  int values = 1;            // how many arguments a value flag takes (1 or 2)
};

struct ParsedArgs {
  std::vector<std::string> positional;
  // Index into `positional` of the first argument after `--`
  // (positional.size() when there was none, or nothing followed it).
  size_t dashdash = 0;
  bool saw_dashdash = false;
  // Canonical (long) flag name -> every value given, in order ("" for
  // switches; a two-value flag adds two).
  std::map<std::string, std::vector<std::string>> flags;
  bool help = false;

  bool Has(absl::string_view name) const;
  // The (first) value of a flag, or `fallback` when it was not given.
  std::string Value(absl::string_view name, absl::string_view fallback = "") const;
  // Every value of a flag (empty when not given).
  std::vector<std::string> Values(absl::string_view name) const;
};

// ParseArgs()
//
// InvalidArgument with a message for the user on an unknown flag ("unknown
// flag --x"), a missing value, a value given to a switch, or a flag given
// twice that is not `repeated`.
absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs);

// ---- Values, the same in every command ----

// ParsePositiveInt()
//
// `text` as an integer in [1, max]; InvalidArgument naming `flag` if not.
absl::StatusOr<int64_t> ParsePositiveInt(absl::string_view flag,
                                         absl::string_view text, int64_t max);

// DurationRange: what a duration flag accepts.
struct DurationRange {
  absl::Duration min = absl::ZeroDuration();  // inclusive, unless 0 and !allow_zero
  bool allow_zero = false;
};

// ParseDurationFlag()
//
// "30" (seconds), "1.5", "30s", "500ms", "2m" (ParseHumanDuration()) in
// `range`. InvalidArgument starting "bad duration: FLAG ..." and ending
// with examples otherwise.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag, absl::string_view text,
                                                 DurationRange range = {});

// ParseSizeFlag()
//
// "1048576", "64k", "1m", "1.5G" (ParseHumanSize()); InvalidArgument
// "FLAG: 'x' is not a size ..." otherwise.
absl::StatusOr<int64_t> ParseSizeFlag(absl::string_view flag, absl::string_view text);

// ParseIntervalFlag() / ParseFrequencyFlag()
//
// A sampling period: a time ("10ms", "500us") or a count of events
// ("100000"); or a rate in Hz. The perf layer's rules (ParsePerfInterval(),
// ParsePerfFrequency()).
absl::StatusOr<PerfPeriod> ParseIntervalFlag(absl::string_view text);
absl::StatusOr<PerfPeriod> ParseFrequencyFlag(absl::string_view text);

// ParsePercentFlag()
//
// A percentage from 0 to 100 (a trailing '%' allowed), finite: NaN, inf,
// negatives and values above 100 are InvalidArgument naming `flag`. The
// one check of --minwidth for every command.
absl::StatusOr<double> ParsePercentFlag(absl::string_view flag, absl::string_view text);

// ParsePidArg()
//
// A process id (> 0); InvalidArgument "'x' is not a PID" otherwise.
absl::StatusOr<pid_t> ParsePidArg(absl::string_view text);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_FLAGS_H_
