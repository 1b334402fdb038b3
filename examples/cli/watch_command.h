// SPDX-License-Identifier: Apache-2.0
// File: watch_command.h
//
// `flamekit watch`: capture a profile when CPU, RSS or a Prometheus metric
// crosses a line. Flag handling, the metric source, Ctrl-C and the progress
// lines are here; the capture itself (profiling the target at full rate,
// plus the look-back sampler) is injected through a WatchCaptureFactory
// (include/flamekit/trigger/watch_capture.h) so tests can pass their own;
// the command wires in the attach engine (trigger/attach_capture.h).
//
// Thread-safety: RunWatchCommand() is for the main thread of a command-line
// process: it installs SIGINT/SIGTERM handlers for its duration (restoring
// the previous ones) that only set a lock-free atomic flag, so the first
// Ctrl-C ends the watch after the current poll or capture.

#ifndef FLAMEKIT_EXAMPLES_CLI_WATCH_COMMAND_H_
#define FLAMEKIT_EXAMPLES_CLI_WATCH_COMMAND_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "examples/cli/command.h"
#include "examples/cli/flags.h"
#include "flamekit/trigger/metric_source.h"
#include "flamekit/trigger/watch_capture.h"

namespace flamekit {
namespace cli {

Command WatchCommand();

// ParseWatchArgs()
//
// The arguments after "watch" as WatchCommandOptions. InvalidArgument
// naming the flag and what is expected for any mistake.
absl::StatusOr<WatchCommandOptions> ParseWatchArgs(absl::Span<const std::string> args);
absl::StatusOr<WatchCommandOptions> ParseWatchArgs(const ParsedArgs& args);

// MakeMetricSource()
//
// The source the options name (CPU or RSS of the PID, or the Prometheus
// selector at the URL through FetchUrl()).
absl::StatusOr<std::unique_ptr<MetricSource>> MakeMetricSource(const WatchCommandOptions& o);

// RunWatchCommand()
//
// The whole command. Exit status: 0 (stopped by Ctrl-C or a cap, every
// capture written), 1 (the target went away, a capture failed, or setup
// failed), 2 (bad usage). `should_stop`, when given, is polled too (tests).
int RunWatchCommand(absl::Span<const std::string> args, std::ostream& out, std::ostream& err,
                    const WatchCaptureFactory& factory,
                    const std::function<bool()>& should_stop = nullptr);

// AttachCaptureFactory()
//
// The factory the command itself uses (trigger/attach_capture.h's
// MakeAttachWatchCapture), compiled once in watch_command.cc: a test that
// drives the real capture passes this instead of including
// attach_capture.h, whose attach pipeline took a test's compile from ~40 s
// to ~130 s under ASan.
WatchCaptureFactory AttachCaptureFactory();

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_WATCH_COMMAND_H_
