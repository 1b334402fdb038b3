// SPDX-License-Identifier: Apache-2.0
// File: record_command.h
//
// The `record` and `list` subcommands of `flamekit` (issue 6), as
// cli::Command entries over flamekit::RunRecord()/RunList()
// (include/flamekit/attach/record_cli.h), plus the profiler.sh-style form.
// Main thread only: `record` installs SIGINT/SIGTERM handlers while it runs.
//
// To put them in the command table: X(RecordCommand) and X(ListCommand) in
// command_table.cc. For `flamekit -d 30 -e cpu -f flame.html PID`, RunCli()
// calls IsProfilerShForm(argv) first and, when true, runs
// RunProfilerShForm(argv, io).

#ifndef FLAMEKIT_EXAMPLES_CLI_RECORD_COMMAND_H_
#define FLAMEKIT_EXAMPLES_CLI_RECORD_COMMAND_H_

#include <string>

#include "absl/types/span.h"
#include "examples/cli/command.h"

namespace flamekit {
namespace cli {

Command RecordCommand();
Command ListCommand();

// IsProfilerShForm()
//
// True when `argv` (without the program name) is the profiler.sh form: it
// starts with an option that `record` takes (-d, -e, -i, -F, -f, -t, ...)
// or with a bare PID, rather than a command name.
bool IsProfilerShForm(absl::Span<const std::string> argv);

// RunProfilerShForm()
//
// Runs `argv` as `record` arguments.
int RunProfilerShForm(absl::Span<const std::string> argv, CommandIo& io);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_RECORD_COMMAND_H_
