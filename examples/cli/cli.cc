// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <ostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/cli/command.h"
#include "examples/cli/record_command.h"

namespace flamekit {
namespace cli {
namespace {

void PrintOverview(std::ostream& out) {
  out << "flamekit: a profiler for native Linux processes.\n\n"
         "usage: flamekit COMMAND [ARGS...]\n\n"
         "Commands:\n";
  for (const Command& c : Commands()) {
    std::string name = c.name;
    name.resize(std::max<size_t>(name.size(), 10), ' ');
    out << "  " << name << "  " << c.summary << "\n";
  }
  out << "  help        Show this list, or the help of one command\n\n"
         "Run 'flamekit help COMMAND' or 'flamekit COMMAND --help' for the "
         "flags of a command.\n";
}

}  // namespace

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

int UsageError(const Command& command, absl::string_view message, CommandIo& io) {
  // One line: the first synopsis line only (watch has three).
  absl::string_view usage = command.usage;
  usage = usage.substr(0, usage.find('\n'));
  io.err << "flamekit " << command.name << ": " << message << "; usage: " << usage
         << " (more: flamekit " << command.name << " --help)\n";
  return kExitUsage;
}

int RunCommand(const Command& command, absl::Span<const std::string> args, CommandIo& io) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, command.flags);
  // --help wins over a mistake elsewhere on the line: the user asked for it.
  bool help = parsed.ok() ? parsed->help : false;
  if (!parsed.ok()) {
    for (const std::string& a : args) {
      if (a == "--") break;
      if (a == "--help" || a == "-h") help = true;
    }
  }
  if (help) {
    PrintHelp(command, io.out);
    return kExitOk;
  }
  if (!parsed.ok()) return UsageError(command, parsed.status().message(), io);
  return command.run(*parsed, io);
}

int ExitCode(const Command& command, const absl::Status& status, CommandIo& io) {
  if (status.ok()) return kExitOk;
  io.err << "flamekit " << command.name << ": " << status.message() << "\n";
  return kExitError;
}

void PrintHelp(const Command& command, std::ostream& out) {
  out << command.summary << "\n\nusage: " << command.usage << "\n";
  if (command.details != nullptr && command.details[0] != '\0') out << "\n" << command.details;
}

int RunCli(absl::Span<const std::string> argv, CommandIo& io) {
  if (argv.empty()) {
    io.err << "flamekit: no command given\n";
    PrintOverview(io.err);
    return kExitUsage;
  }
  // `flamekit -d 30 -e cpu -f flame.html PID`, as profiler.sh users type it.
  if (IsProfilerShForm(argv)) return RunProfilerShForm(argv, io);
  const std::string& name = argv[0];
  // `flamekit help [CMD]`, `flamekit --help [CMD]`, `flamekit -h [CMD]`.
  if (name == "help" || name == "--help" || name == "-h") {
    if (argv.size() == 1) {
      PrintOverview(io.out);
      return kExitOk;
    }
    const Command* command = FindCommand(argv[1]);
    if (command == nullptr) {
      io.err << "flamekit " << name << ": unknown command '" << argv[1]
             << "'; run 'flamekit help' for the list\n";
      return kExitUsage;
    }
    PrintHelp(*command, io.out);
    return kExitOk;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    io.err << "flamekit: unknown command '" << name
           << "'; run 'flamekit help' for the list\n";
    return kExitUsage;
  }
  return RunCommand(*command, argv.subspan(1), io);
}

}  // namespace cli
}  // namespace flamekit
