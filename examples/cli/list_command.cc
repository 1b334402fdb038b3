// SPDX-License-Identifier: Apache-2.0
// `flamekit list [PID]`: the perf events this machine offers, tried on PID
// (or on flamekit itself), and why any are missing.
#include <errno.h>
#include <signal.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/cli/record_command.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {
namespace cli {
namespace {

int RunListCommand(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const Command command = {
      "list",
      "Show the perf events this machine offers, and why any are missing",
      "flamekit list [PID]",
      "Tries to open each event (on PID, or on flamekit itself) and says\n"
      "\"available\" or why not: no PMU for hardware events in most VMs,\n"
      "perf_event_paranoid and the capability that would allow it, ...\n"
      "`wall` (record -e wall: on- and off-CPU time) is available when\n"
      "cpu and context-switches are.\n",
      {},
      RunListCommand,
  };
  return command;
}

int RunListCommand(const ParsedArgs& args, CommandIo& io) {
  pid_t pid = 0;
  for (const std::string& a : args.positional) {
    absl::StatusOr<pid_t> p = ParsePidArg(a);
    if (pid != 0 || !p.ok()) {
      UsageError(Self(), absl::StrCat("'", a, "' is not a PID"), io);
      return kRecordUsageError;
    }
    pid = *p;
  }
  if (pid != 0 && kill(pid, 0) != 0 && errno == ESRCH) {
    io.err << "flamekit list: no process " << pid << "; check the PID with `ps`\n";
    return kRecordNoProcess;
  }
  absl::StatusOr<int> paranoid = PerfEventParanoid();
  std::string out;
  absl::StrAppend(&out, "perf_event_paranoid: ",
                  paranoid.ok() ? absl::StrCat(*paranoid) : std::string("unavailable"),
                  DefaultExcludeKernel() ? " (user frames only; kernel frames need a lower "
                                           "value or CAP_PERFMON)"
                                         : " (kernel frames available)",
                  "\n");
  absl::StrAppend(&out, pid != 0 ? absl::StrCat("events for pid ", pid, ":\n")
                                 : std::string("events:\n"));
  int available = 0;
  std::string cpu_status, switches_status;  // what `wall` needs
  for (const PerfEventSpec& spec : KnownPerfEvents()) {
    PerfEventOptions options;
    options.event = spec;
    options.tid = pid;
    options.sample_type = PERF_SAMPLE_IP;
    options.disabled = true;
    absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
    std::string status;
    if (fd.ok()) {
      status = "available";
      ++available;
    } else if (fd.status().code() == absl::StatusCode::kFailedPrecondition &&
               absl::StrContains(fd.status().message(), "no PMU")) {
      status = "missing: not available on this machine: no PMU";
    } else {
      std::string msg(fd.status().message());
      // Drop the "perf_event_open(...): " prefix: the event is on the left.
      size_t colon = msg.find("): ");
      if (colon != std::string::npos) msg = msg.substr(colon + 3);
      status = absl::StrCat("missing: ", msg);
    }
    absl::StrAppend(&out, absl::StrFormat("  %-22s %-10s %s\n", spec.name,
                                          spec.time_based ? "time" : "count", status));
    absl::StrAppend(&out, absl::StrFormat("  %-22s %-10s   %s\n", "", "", spec.description));
    if (spec.name == "cpu") cpu_status = status;
    if (spec.name == "context-switches") switches_status = status;
  }
  // `record -e wall` is no kernel event of its own: cpu-clock samples plus
  // a context-switch event per thread, so it is there when both are.
  const PerfEventSpec wall = WallEventSpec();
  absl::StrAppend(&out, absl::StrFormat("  %-22s %-10s %s\n", wall.name, "time",
                                        cpu_status != "available" ? cpu_status
                                                                  : switches_status));
  absl::StrAppend(&out, absl::StrFormat("  %-22s %-10s   %s\n", "", "", wall.description));
  if (available == 0) {
    absl::StrAppend(&out, "no perf events can be opened here; the embedded profiler's timer "
                          "engines (itimer, ctimer) still work\n");
  }
  io.out << out << std::flush;
  return kRecordOk;
}

}  // namespace

Command ListCommand() { return Self(); }

}  // namespace cli
}  // namespace flamekit
