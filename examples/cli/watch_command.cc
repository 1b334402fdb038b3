// SPDX-License-Identifier: Apache-2.0
//
// flamekit watch PID --cpu-above PERCENT | --rss-above BYTES |
//                --metric URL SELECTOR --above X ...: capture a profile when
// a metric crosses a line. Flags, sources, trigger, log and Ctrl-C are
// include/flamekit/trigger/watch_cli.h (tested there).
//
// The capture is injected: CaptureFactory() below must return the attach
// engine's full-rate capture of options.pid for request.duration, written
// to request.path (with request.lookback's samples prepended), and a
// LookbackRing the engine feeds at FLAMEKIT_LOOKBACK_HZ while watching.
// Until that is wired, every trigger is logged and reported as a failed
// capture saying so.

#include <string>

#include "absl/status/status.h"
#include "examples/cli/command.h"
#include "flamekit/trigger/watch_cli.h"

namespace flamekit {
namespace cli {
namespace {

absl::StatusOr<WatchCapture> CaptureFactory(const WatchCommandOptions& options) {
  (void)options;
  WatchCapture capture;
  capture.capture = [](const CaptureRequest& request) {
    return absl::UnimplementedError(absl::StrCat(
        "would capture ", request.path, ", but the attach engine is not wired into "
        "`flamekit watch` in this build (the trigger itself is logged in watch.jsonl)"));
  };
  return capture;
}

int Run(absl::Span<const std::string> args, CommandIo& io) {
  return RunWatchCommand(args, io.out, io.err, CaptureFactory);
}

}  // namespace

Command WatchCommand() {
  return {"watch", "Capture a profile when CPU, RSS or a Prometheus metric crosses a line",
          "flamekit watch PID --cpu-above PERCENT [--for K] [--every 1s] [--duration 10s] "
          "[--lookback 10s] [--dir DIR]\n"
          "flamekit watch PID --rss-above BYTES [flags]\n"
          "flamekit watch [PID] --metric URL 'NAME{label=~\"re\"}' --above X | --below X",
          kWatchUsage, &Run};
}

}  // namespace cli
}  // namespace flamekit
