// SPDX-License-Identifier: Apache-2.0
// flamekit_doctor: `flamekit doctor` as a standalone binary (the same code
// the CLI's doctor subcommand runs), used by doctor_test under seccomp.
#include <iostream>
#include <string>
#include <vector>

#include "flamekit/env/doctor_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return flamekit::RunDoctorCommand(args, std::cout, std::cerr);
}
