// SPDX-License-Identifier: Apache-2.0
//
// flamekit doctor [--json]: can this machine or container profile, and with
// which event. The checks are library code (include/flamekit/env/doctor.h,
// tested there); this file is the command: flags, output, exit status.
// RunDoctor() installs a temporary SIGPROF handler: main thread of a
// command-line process only.

#include <string>

#include "examples/cli/command.h"
#include "flamekit/env/doctor.h"

namespace flamekit {
namespace cli {
namespace {

constexpr FlagSpec kJsonFlag = {"--json", "", false};

int Run(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const Command command = {
      "doctor", "Check what this machine or container allows and recommend an event",
      "flamekit doctor [--json]",
      "Checks whether this machine or container lets flamekit profile:\n"
      "kernel.perf_event_paranoid, kernel.kptr_restrict, containers, seccomp,\n"
      "capabilities, perf_event_open (cpu-clock, kernel frames, hardware), the\n"
      "timer engines and the limits on sampled threads; one PASS/WARN/FAIL line\n"
      "each with the fix, then the recommended event.\n\n"
      "Flags:\n"
      "  --json   machine-readable report\n"
      "Exit status: 0 if nothing FAILed, 1 otherwise, 2 for bad usage.\n",
      {kJsonFlag},
      &Run};
  return command;
}

int Run(const ParsedArgs& args, CommandIo& io) {
  if (!args.positional.empty()) {
    return UsageError(Self(), "unexpected argument '" + args.positional[0] + "'", io);
  }
  DoctorReport report = RunDoctor();
  io.out << (args.Has(kJsonFlag.name) ? FormatDoctorJson(report) : FormatDoctorText(report));
  io.out.flush();
  return report.exit_code();
}

}  // namespace

Command DoctorCommand() { return Self(); }

}  // namespace cli
}  // namespace flamekit
