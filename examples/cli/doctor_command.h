// SPDX-License-Identifier: Apache-2.0
// File: doctor_command.h
//
// `flamekit doctor [--json]`: the CLI entry point. The checks live in
// include/flamekit/env/doctor.h, argument handling in env/doctor_cli.h.
// Subcommand-table entry: {"doctor", RunDoctor}. Not thread-safe (it
// installs a temporary SIGPROF handler).

#ifndef FLAMEKIT_EXAMPLES_CLI_DOCTOR_COMMAND_H_
#define FLAMEKIT_EXAMPLES_CLI_DOCTOR_COMMAND_H_

namespace flamekit {

// RunDoctor()
//
// argv[0] is "doctor". Returns 0 (no FAIL), 1 (a FAIL) or 2 (bad usage).
int RunDoctor(int argc, char** argv);

}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_DOCTOR_COMMAND_H_
