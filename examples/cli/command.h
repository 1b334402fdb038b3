// SPDX-License-Identifier: Apache-2.0
// File: command.h
//
// The shape of a `flamekit` subcommand and the table of all of them. A
// command is a function from its arguments (after the command name) to an
// exit code, writing to the streams it is given (never to std::cout or
// std::cerr directly, so tests can run it in-process). Commands run on the
// main thread; nothing here is for signal handlers.
//
// Every command's arguments go through the one parser (flags.h) in
// RunCommand(): a command lists its FlagSpecs and receives ParsedArgs, so
// `--help` anywhere, `flamekit help CMD` and `flamekit --help CMD` print the
// same text and exit 0, and a bad flag is the same one-line usage error
// (exit 2) in every command.
//
// Adding a command (e.g. `record`) is one line in command_table.cc:
//   1. write record_command.cc defining `Command RecordCommand()` (see
//      convert_command.cc for the pattern: usage text, flags, the work,
//      ExitCode/UsageError for errors);
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
#include "examples/cli/flags.h"

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
  // The flags it takes (parsed by RunCommand() before `run`).
  std::vector<FlagSpec> flags;
  // Runs the command on its parsed arguments (never called for --help).
  int (*run)(const ParsedArgs& args, CommandIo& io);
};

// Commands()
//
// Every command, in the order `flamekit help` lists them.
const std::vector<Command>& Commands();

// FindCommand()
//
// The command called `name`, or nullptr.
const Command* FindCommand(absl::string_view name);

// RunCommand()
//
// Parses `args` (after the command name) against command.flags, prints the
// help for --help/-h, a usage error for a bad flag, else runs the command.
int RunCommand(const Command& command, absl::Span<const std::string> args, CommandIo& io);

// UsageError()
//
// Prints one line on io.err: "flamekit NAME: message; usage: SYNOPSIS (more:
// flamekit NAME --help)" (the first synopsis line); returns kExitUsage.
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
