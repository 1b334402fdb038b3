// SPDX-License-Identifier: Apache-2.0
// flamekit_doctor: `flamekit doctor` as a standalone binary (the same code
// the CLI's doctor subcommand runs), used by doctor_test under seccomp.
#include <iostream>

#include "flamekit/env/doctor_cli.h"

int main(int argc, char** argv) { return flamekit::RunDoctorCommand(argc, argv, std::cout, std::cerr); }
