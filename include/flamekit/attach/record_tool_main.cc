// SPDX-License-Identifier: Apache-2.0
// record_tool: `record` and `list` on their own, for the attach tests and
// benchmarks (the user-facing binary is //examples/cli:flamekit, which
// routes its `record` and `list` subcommands, and the profiler.sh form, to
// the same RunRecord()/RunList()).
//
//   record_tool record [options] PID | --name REGEX | -- COMMAND...
//   record_tool list [PID]
//   record_tool [options] PID          (profiler.sh form)

#include <string.h>

#include "flamekit/attach/record_cli.h"
#include "flamekit/attach/record_output.h"

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "list") == 0) return flamekit::RunList(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "record") == 0) {
    return flamekit::RunRecord(argc - 2, argv + 2, flamekit::FullRecordOutput());
  }
  return flamekit::RunRecord(argc - 1, argv + 1, flamekit::FullRecordOutput());
}
