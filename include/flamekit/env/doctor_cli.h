// SPDX-License-Identifier: Apache-2.0
// File: doctor_cli.h
//
// The `flamekit doctor [--json]` command over RunDoctor(): argument
// handling, output and exit status, kept here (tested) so the CLI's
// examples/cli/doctor_command.cc is one line.
//
// Thread-safety: as RunDoctor(): for a command-line process (temporary
// SIGPROF handler). Not async-signal-safe.
//
// Example:
//
//   std::vector<std::string> args = {"--json"};    // after "doctor"
//   int exit_code = RunDoctorCommand(args, std::cout, std::cerr);

#ifndef FLAMEKIT_ENV_DOCTOR_CLI_H_
#define FLAMEKIT_ENV_DOCTOR_CLI_H_

#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "flamekit/env/doctor.h"

namespace flamekit {

// kDoctorUsage: the usage text of `flamekit doctor`.
inline constexpr char kDoctorUsage[] =
    "usage: flamekit doctor [--json]\n"
    "  Checks whether this machine or container lets flamekit profile (perf events,\n"
    "  kernel symbols, container, seccomp, capabilities, timer engines, limits),\n"
    "  one PASS/WARN/FAIL line each with the fix, and recommends an event.\n"
    "  --json   machine-readable report\n"
    "  Exit status: 0 if nothing FAILed, 1 otherwise, 2 for bad usage.\n";

// RunDoctorCommand()
//
// `args` are the flags after "doctor". Returns the exit status: 0 (no
// FAIL), 1 (a FAIL), 2 (bad usage).
int RunDoctorCommand(absl::Span<const std::string> args, std::ostream& out, std::ostream& err);

// Implementation details follow.

inline int RunDoctorCommand(absl::Span<const std::string> args, std::ostream& out,
                            std::ostream& err) {
  bool json = false;
  for (const std::string& a : args) {
    absl::string_view arg = a;
    if (arg == "--json") {
      json = true;
    } else if (arg == "-h" || arg == "--help") {
      out << kDoctorUsage;
      return 0;
    } else {
      err << "flamekit doctor: unknown argument '" << arg << "'\n" << kDoctorUsage;
      return 2;
    }
  }
  DoctorReport report = RunDoctor();
  out << (json ? FormatDoctorJson(report) : FormatDoctorText(report));
  out.flush();
  return report.exit_code();
}

}  // namespace flamekit

#endif  // FLAMEKIT_ENV_DOCTOR_CLI_H_
