// SPDX-License-Identifier: Apache-2.0
#include "examples/cli/doctor_command.h"

#include <iostream>

#include "flamekit/env/doctor_cli.h"

namespace flamekit {

int RunDoctor(int argc, char** argv) { return RunDoctorCommand(argc, argv, std::cout, std::cerr); }

}  // namespace flamekit
