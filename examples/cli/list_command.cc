// SPDX-License-Identifier: Apache-2.0
// `flamekit list`: the cli::Command over flamekit::RunList().
#include <string>
#include <vector>

#include "examples/cli/record_command.h"
#include "flamekit/attach/record_cli.h"

namespace flamekit {
namespace cli {
namespace {

int RunListCommand(absl::Span<const std::string> args, CommandIo& io) {
  return RunList(std::vector<std::string>(args.begin(), args.end()), io.out, io.err);
}

}  // namespace

Command ListCommand() {
  return Command{
      "list",
      "Show the perf events this machine offers, and why any are missing",
      "flamekit list [PID]",
      "Tries to open each event (on PID, or on flamekit itself) and says\n"
      "\"available\" or why not: no PMU for hardware events in most VMs,\n"
      "perf_event_paranoid and the capability that would allow it, ...\n",
      RunListCommand,
  };
}

}  // namespace cli
}  // namespace flamekit
