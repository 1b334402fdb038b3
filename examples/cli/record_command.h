// SPDX-License-Identifier: Apache-2.0
// File: record_command.h
//
// The `record` and `list` subcommands of `flamekit` (issue 6), plus the
// profiler.sh-style form `flamekit -d 30 -e cpu -f flame.html PID`. record
// attaches to a running process (PID, --name REGEX) or a command it
// launches, through AttachSession (include/flamekit/attach/attach.h), and
// writes the profile with the shared output step (output.h). Main thread
// only: `record` installs SIGINT/SIGTERM handlers while it runs (first
// signal: stop and write; a second one: abort at once, writing nothing).
//
// Each failure prints one line naming the fix and returns its own exit code
// (RecordExitCode).

#ifndef FLAMEKIT_EXAMPLES_CLI_RECORD_COMMAND_H_
#define FLAMEKIT_EXAMPLES_CLI_RECORD_COMMAND_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "examples/cli/command.h"
#include "examples/cli/flags.h"
#include "examples/cli/record_continuous.h"
#include "flamekit/attach/attach.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/render_options.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {
namespace cli {

// RecordExitCode
//
// The exit status of `flamekit record` / `list`, one per error class.
enum RecordExitCode : int {
  kRecordOk = 0,
  kRecordInternalError = 1,
  kRecordUsageError = 2,         // bad flag, duration, interval, event name
  kRecordNoProcess = 3,          // no such PID
  kRecordPermissionDenied = 4,   // perf_event_paranoid / capabilities / ptrace
  kRecordPerfUnavailable = 5,    // no perf events at all: use itimer/ctimer
  kRecordNoPmu = 6,              // hardware event on a machine without a PMU
  kRecordNameMatch = 7,          // --name matched none or several processes
  kRecordOutputError = 8,        // bad output path or extension, disk full
  kRecordResourceLimit = 9,      // ulimit -n, locked memory
  kRecordLaunchFailed = 10,      // -- COMMAND could not be started
  kRecordPushFailed = 11,        // --continuous: no window reached --push
  kRecordAborted = 130,          // a second Ctrl-C
};

// RecordFlags
//
// The parsed command line of `record`.
struct RecordFlags {
  pid_t pid = 0;                       // PID given
  std::string name_pattern;            // --name REGEX
  std::vector<std::string> command;    // -- COMMAND ARGS...
  std::string container;               // --container NAME|ID (container_target.h)
  std::string runtime = "docker";      // --runtime docker|podman, to resolve it
  bool all_processes = false;          // --all: every process of the container
  absl::Duration duration = absl::InfiniteDuration();
  PerfEventSpec event;
  PerfPeriod period;
  std::string file;                    // "" = flame-PID-TIMESTAMP.html
  bool threads = false;
  std::vector<std::string> includes;
  std::vector<std::string> excludes;
  std::string transforms_path;
  std::string title;
  double minwidth = 0;
  bool inverted = false;
  bool reverse = false;
  OutputFormat format = OutputFormat::kAuto;  // --format; kAuto: by extension
  bool quiet = false;
  bool help = false;
  size_t ring_pages = AttachOptions().ring_pages;
  // -e alloc|live|lock: hooks in the process, not perf; launched with the
  // agent (record_hooks.cc). The interval as given (bytes, or a duration
  // for lock), checked by ParseRecordArgs().
  std::string hook_event;
  std::string hook_interval;
  AttachUnwind unwind = AttachUnwind::kAuto;    // --unwind
  uint32_t stack_bytes = kDefaultAttachStackBytes;  // --stack-size
  ContinuousFlags continuous;  // --continuous --every --push --label --app
};

Command RecordCommand();
Command ListCommand();

// ParseRecordArgs()
//
// Parses `args` (the arguments after "record"; no program name) with the
// CLI's one parser. InvalidArgument, tagged kRecordUsageError, for anything
// malformed.
absl::StatusOr<RecordFlags> ParseRecordArgs(const std::vector<std::string>& args);
absl::StatusOr<RecordFlags> ParseRecordArgs(const ParsedArgs& args);

// WithExitCode() / ExitCodeOf()
//
// A Status carrying the exit code it should end in, and the exit code of
// any Status (tagged, or by its code and message).
absl::Status WithExitCode(absl::Status status, RecordExitCode code);
int ExitCodeOf(const absl::Status& status);

// AttachOptionsFromFlags()
//
// The attach session `flags` ask for on `pid` (event, period, duration,
// -t, ring, unwinder, stack size); the caller sets stop and launch mode.
AttachOptions AttachOptionsFromFlags(const RecordFlags& flags, pid_t pid);

// HottestFunctions()
//
// The `n` leaf frames with the most samples (self time), hottest first,
// with their sample counts.
std::vector<std::pair<std::string, uint64_t>> HottestFunctions(const Profile& profile, size_t n);

// CheckMayProfile()
//
// PermissionDenied, naming the real cause first, when `self_euid` (with
// effective capabilities `self_caps`) may not profile `pid` whose
// /proc/PID/status text is `target_status`: a process of another user needs
// root or CAP_SYS_PTRACE, whatever perf_event_paranoid says (`paranoid` is
// only mentioned). OK otherwise, or when the status cannot be read (the
// perf layer then reports what it finds).
absl::Status CheckMayProfile(pid_t pid, uid_t self_euid, std::optional<uint64_t> self_caps,
                             absl::string_view target_status, std::optional<int> paranoid);

// FormatRecordSummary()
//
// The lines `record` prints after a capture: why it stopped, samples, lost
// samples, threads, the hottest functions, the output and its size.
std::string FormatRecordSummary(const AttachProgress& stats, const Profile& profile,
                                int child_status, absl::string_view path, uint64_t size);

// RunRecord()
//
// The work of `record` after parsing (record_run.cc).
int RunRecord(const RecordFlags& flags, CommandIo& io);

// IsHookEvent()
//
// alloc, live or lock: events only the agent's hooks can supply.
bool IsHookEvent(absl::string_view event);

// RunHookRecord()
//
// `record -e alloc|live|lock -- COMMAND`: runs COMMAND with the LD_PRELOAD
// agent and reports the profile it wrote at exit (record_hooks.cc).
int RunHookRecord(const RecordFlags& flags, CommandIo& io);

// FindAgent()
//
// libflamekit_agent.so: $FLAMEKIT_AGENT, else beside the flamekit binary
// (its Bazel runfiles, ../agent/, the same directory, ../lib/flamekit/).
absl::StatusOr<std::string> FindAgent();

// IsProfilerShForm()
//
// True when `argv` (without the program name) is the profiler.sh form: it
// starts with an option that `record` takes (-d, -e, -i, -F, -f, -t, ...)
// or with a bare PID, rather than a command name.
bool IsProfilerShForm(absl::Span<const std::string> argv);

// RunProfilerShForm()
//
// Runs `argv` as `record` arguments.
int RunProfilerShForm(absl::Span<const std::string> argv, CommandIo& io);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_RECORD_COMMAND_H_
