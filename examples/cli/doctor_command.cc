// SPDX-License-Identifier: Apache-2.0
//
// flamekit doctor [--json]: can this machine or container profile, and with
// which event. The checks are include/flamekit/env/doctor.h; the argument
// handling and output are env/doctor_cli.h (tested there).

#include <string>

#include "examples/cli/command.h"
#include "flamekit/env/doctor_cli.h"

namespace flamekit {
namespace cli {
namespace {

int Run(absl::Span<const std::string> args, CommandIo& io) {
  return RunDoctorCommand(args, io.out, io.err);
}

}  // namespace

Command DoctorCommand() {
  return {"doctor", "Check what this machine or container allows and recommend an event",
          "flamekit doctor [--json]",
          "Checks kernel.perf_event_paranoid, kernel.kptr_restrict, containers,\n"
          "seccomp, capabilities, perf_event_open (cpu-clock, kernel frames,\n"
          "hardware), the timer engines and the limits on sampled threads; one\n"
          "PASS/WARN/FAIL line each with the fix, then the recommended event.\n\n"
          "Flags:\n"
          "  --json   machine-readable report\n"
          "Exit status: 0 if nothing FAILed, 1 otherwise.\n",
          &Run};
}

}  // namespace cli
}  // namespace flamekit
