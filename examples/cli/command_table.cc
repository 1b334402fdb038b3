// SPDX-License-Identifier: Apache-2.0
//
// The table of `flamekit` subcommands. Each X(...) names a function
// `Command NameCommand()` defined in that command's own .cc file (listed in
// the srcs of :commands). To add a command, add one X(...) line below, in
// the order `flamekit help` should list it.

#include <vector>

#include "examples/cli/command.h"

#define FLAMEKIT_CLI_COMMANDS(X) \
  X(RecordCommand)               \
  X(ListCommand)                 \
  X(ConvertCommand)              \
  X(DiffCommand)                 \
  X(DoctorCommand)               \
  X(WatchCommand)

namespace flamekit {
namespace cli {

#define FLAMEKIT_CLI_DECLARE_(fn) Command fn();
FLAMEKIT_CLI_COMMANDS(FLAMEKIT_CLI_DECLARE_)
#undef FLAMEKIT_CLI_DECLARE_

const std::vector<Command>& Commands() {
#define FLAMEKIT_CLI_ENTRY_(fn) fn(),
  static const std::vector<Command>* const commands =
      new std::vector<Command>{FLAMEKIT_CLI_COMMANDS(FLAMEKIT_CLI_ENTRY_)};
#undef FLAMEKIT_CLI_ENTRY_
  return *commands;
}

}  // namespace cli
}  // namespace flamekit
