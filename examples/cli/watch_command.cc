// SPDX-License-Identifier: Apache-2.0
//
// flamekit watch PID --cpu-above PERCENT | --rss-above BYTES |
//                --metric URL SELECTOR --above X ...: capture a profile when
// a metric crosses a line. Flags, sources, trigger, log and Ctrl-C are
// include/flamekit/trigger/watch_cli.h; the look-back sampler and the
// full-rate capture through the attach engine are
// include/flamekit/trigger/attach_capture.h (both tested there). A --metric
// watch needs the PID of the process behind the endpoint: there is nothing
// to profile otherwise, and the command says so at startup.

#include <string>

#include "examples/cli/command.h"
#include "flamekit/trigger/attach_capture.h"
#include "flamekit/trigger/watch_cli.h"

namespace flamekit {
namespace cli {
namespace {

int Run(absl::Span<const std::string> args, CommandIo& io) {
  return RunWatchCommand(args, io.out, io.err, MakeAttachWatchCapture);
}

}  // namespace

Command WatchCommand() {
  return {"watch", "Capture a profile when CPU, RSS or a Prometheus metric crosses a line",
          "flamekit watch PID --cpu-above PERCENT [--for K] [--every 1s] [--duration 10s] "
          "[--lookback 10s] [--dir DIR]\n"
          "flamekit watch PID --rss-above BYTES [flags]\n"
          "flamekit watch PID --metric URL 'NAME{label=~\"re\"}' --above X | --below X",
          kWatchUsage, &Run};
}

}  // namespace cli
}  // namespace flamekit
