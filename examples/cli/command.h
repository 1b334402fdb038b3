// SPDX-License-Identifier: Apache-2.0
// File: command.h
//
// The shape of a `flamekit` subcommand and the table of all of them. A
// command is a function from its arguments (after the command name) to an
// exit code, writing to the streams it is given (never to std::cout or
// std::cerr directly, so tests can run it in-process). Commands run on the
// main thread; nothing here is for signal handlers.
//
// Adding a command (e.g. `record`) is one line in command_table.cc:
//   1. write record_command.cc defining `Command RecordCommand()` (see
//      convert_command.cc for the pattern: usage text, ParseArgs(), the
//      work, ExitCode/UsageError for errors);
//   2. add it to the srcs of :commands in BUILD.bazel;
//   3. add `X(RecordCommand)` to FLAMEKIT_CLI_COMMANDS in command_table.cc.

#ifndef FLAMEKIT_EXAMPLES_CLI_COMMAND_H_
#define FLAMEKIT_EXAMPLES_CLI_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace flamekit {
namespace cli {

// Exit codes of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // bad input, I/O, nothing to show
inline constexpr int kExitUsage = 2;  // bad flags or arguments

struct CommandIo {
  std::ostream& out;  // results (tables, output written to "-")
  std::ostream& err;  // errors, warnings, notes
};

struct Command {
  // What the user types: "convert".
  const char* name;
  // One line for `flamekit help`.
  const char* summary;
  // The synopsis line(s), e.g. "flamekit convert INPUT -f OUTPUT [flags]".
  const char* usage;
  // The rest of `flamekit help NAME` / `flamekit NAME --help`: flags, notes.
  const char* details;
  // Runs the command; `args` excludes the program and command names.
  int (*run)(absl::Span<const std::string> args, CommandIo& io);
};

// Commands()
//
// Every command, in the order `flamekit help` lists them.
const std::vector<Command>& Commands();

// FindCommand()
//
// The command called `name`, or nullptr.
const Command* FindCommand(absl::string_view name);

// UsageError()
//
// Prints "flamekit NAME: message", the usage line and a hint to --help on
// io.err; returns kExitUsage.
int UsageError(const Command& command, absl::string_view message, CommandIo& io);

// ExitCode()
//
// Prints "flamekit NAME: <status message>" on io.err and returns
// kExitError; kExitOk (printing nothing) for an OK status.
int ExitCode(const Command& command, const absl::Status& status, CommandIo& io);

// PrintHelp()
//
// The full help of one command on `out`.
void PrintHelp(const Command& command, std::ostream& out);

// RunCli()
//
// The whole program: `argv` without the program name. Dispatches to a
// command, handles `help`, `--help` and unknown commands.
int RunCli(absl::Span<const std::string> argv, CommandIo& io);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_COMMAND_H_
