// SPDX-License-Identifier: Apache-2.0
// File: watch_capture.h
//
// What `flamekit watch` hands its capture engine: the parsed target and
// watch options (WatchCommandOptions), and what the engine gives back for
// one watch (WatchCapture: the capture function, the look-back ring it
// feeds and whatever must live as long as the watch). The command itself
// (flags, usage, Ctrl-C, progress lines) is examples/cli/watch_command.cc;
// the attach engine is attach_capture.h's MakeAttachWatchCapture(). Plain
// data and a std::function type: no threads, not for signal handlers.
//
// Example:
//
//   WatchCaptureFactory factory = [](const WatchCommandOptions& o)
//       -> absl::StatusOr<WatchCapture> { ... attach to o.pid ... };

#ifndef FLAMEKIT_TRIGGER_WATCH_CAPTURE_H_
#define FLAMEKIT_TRIGGER_WATCH_CAPTURE_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "flamekit/trigger/lookback_ring.h"
#include "flamekit/trigger/metric_watch.h"

namespace flamekit {

// WatchCommandOptions: the parsed command line of `flamekit watch`.
struct WatchCommandOptions {
  enum class Source { kCpu, kRss, kMetric, kPromQl, kAlerts };
  Source source = Source::kCpu;
  pid_t pid = 0;         // 0 when watching only a metric URL
  std::string url;       // --metric URL
  std::string selector;  // --metric SELECTOR
  std::string prometheus;  // --prometheus URL (the server's base URL)
  std::string query;       // --query PROMQL
  std::string listen;      // --listen HOST:PORT (Alertmanager webhooks)
  std::string pid_label = "pid";       // --pid-label
  std::string name_label = "process";  // --name-label
  absl::Duration debounce = absl::Minutes(10);  // --debounce
  std::string token;     // --token, else $FLAMEKIT_TOKEN
  bool quiet = false;
  WatchOptions watch;    // id, event, dir, intervals, trigger
};

// WatchCapture: what the factory provides for one watch: the capture and,
// optionally, a look-back ring it keeps fed (e.g. the attach engine
// sampling at FLAMEKIT_LOOKBACK_HZ) and anything that must live as long as
// the watch (the sampler).
struct WatchCapture {
  CaptureFn capture;
  std::shared_ptr<LookbackRing> lookback;
  std::shared_ptr<void> keepalive;
};
using WatchCaptureFactory =
    std::function<absl::StatusOr<WatchCapture>(const WatchCommandOptions& options)>;

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_WATCH_CAPTURE_H_
