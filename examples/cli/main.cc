// SPDX-License-Identifier: Apache-2.0
//
// flamekit: the command-line tool. All the work is in the :commands
// library (see command.h); this file only forwards argv.

#include <iostream>
#include <string>
#include <vector>

#include "examples/cli/command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  flamekit::cli::CommandIo io{std::cout, std::cerr};
  int code = flamekit::cli::RunCli(args, io);
  std::cout.flush();
  return code;
}
