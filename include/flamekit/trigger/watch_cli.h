// SPDX-License-Identifier: Apache-2.0
// File: watch_cli.h
//
// The `flamekit watch` command over Watcher: flag parsing into
// WatchCommandOptions, building the metric source, Ctrl-C handling and the
// progress lines. The capture itself (profiling the target at full rate,
// plus the look-back sampler) is injected through a WatchCaptureFactory, so
// the CLI can wire the attach engine in and tests can pass their own real
// capture. examples/cli/watch_command.cc is a thin wrapper.
//
//   flamekit watch PID --cpu-above PERCENT [--for K] [--every 1s]
//                  [--duration 10s] [--lookback 10s] [--dir DIR]
//   flamekit watch PID --rss-above BYTES            (also --cpu-below, --rss-below)
//   flamekit watch [PID] --metric URL 'NAME{label=~"re"}' --above X | --below X
//   common: --cooldown 60s --max-captures N --max-disk SIZE --event EVENT
//           --id NAME --token TOKEN (or $FLAMEKIT_TOKEN) --quiet
//
// Thread-safety: RunWatchCommand() is for the main thread of a command-line
// process: it installs SIGINT/SIGTERM handlers for its duration (restoring
// the previous ones) that only set a lock-free atomic flag, so the first
// Ctrl-C ends the watch after the current poll or capture.
//
// Example:
//
//   WatchCaptureFactory factory = [](const WatchCommandOptions& o)
//       -> absl::StatusOr<WatchCapture> { ... attach to o.pid ... };
//   int code = RunWatchCommand(args, std::cout, std::cerr, factory);

#ifndef FLAMEKIT_TRIGGER_WATCH_CLI_H_
#define FLAMEKIT_TRIGGER_WATCH_CLI_H_

#include <signal.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/lookback_ring.h"
#include "flamekit/trigger/metric_source.h"
#include "flamekit/trigger/metric_watch.h"

namespace flamekit {

// kWatchUsage: usage and flags of `flamekit watch`.
inline constexpr char kWatchUsage[] =
    "usage: flamekit watch PID (--cpu-above|--cpu-below) PERCENT [flags]\n"
    "       flamekit watch PID (--rss-above|--rss-below) BYTES [flags]\n"
    "       flamekit watch [PID] --metric URL 'NAME{label=~\"re\"}' (--above|--below) X [flags]\n"
    "Captures a profile when a metric crosses a line, with the seconds before it.\n"
    "  --for K            K consecutive polls beyond the line (default 1)\n"
    "  --every DUR        poll interval (default 1s)\n"
    "  --duration DUR     full-rate capture after the trigger (default 10s)\n"
    "  --lookback DUR     low-rate look-back kept before the trigger (default 10s, 0 = off)\n"
    "  --dir DIR          captures and watch.jsonl go here (default .)\n"
    "  --cooldown DUR     quiet time after a capture (default 60s)\n"
    "  --max-captures N   stop after N captures (default 0 = no cap)\n"
    "  --max-disk SIZE    stop once captures use SIZE (512M, 2G; default no cap)\n"
    "  --event EVENT      what to profile (default cpu)\n"
    "  --id NAME          name in capture files (default the PID or the URL's host_port)\n"
    "  --token TOKEN      bearer token for --metric (e.g. the flamekit UI's /metrics);\n"
    "                     default $FLAMEKIT_TOKEN, which keeps it out of `ps`\n"
    "  --quiet            no line per poll\n"
    "Captures: <id>-<event>-flamegraph-<UTC time>-<reason>.html; log: DIR/watch.jsonl.\n"
    "Runs until Ctrl-C, --max-captures/--max-disk, or the target exits.\n";

// WatchCommandOptions: the parsed command line.
struct WatchCommandOptions {
  enum class Source { kCpu, kRss, kMetric };
  Source source = Source::kCpu;
  pid_t pid = 0;         // 0 when watching only a metric URL
  std::string url;       // --metric URL
  std::string selector;  // --metric SELECTOR
  std::string token;     // --token, else $FLAMEKIT_TOKEN
  bool quiet = false;
  WatchOptions watch;    // id, event, dir, intervals, trigger
};

// ParseWatchArgs()
//
// Parses the arguments after "watch". InvalidArgument naming the flag and
// what is expected for any mistake (the caller prints usage, exit 2).
absl::StatusOr<WatchCommandOptions> ParseWatchArgs(absl::Span<const std::string> args);

// ParseByteSize()
//
// "1048576", "512K", "512M", "1.5G", "2GiB", "1T" (binary units) to bytes.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// ParseWatchDuration()
//
// "1s", "500ms", "2m", or a bare number of seconds ("10", "0.5").
absl::StatusOr<absl::Duration> ParseWatchDuration(absl::string_view text);

// MakeMetricSource()
//
// The source the options name (CPU or RSS of the PID, or the Prometheus
// selector at the URL through FetchUrl()).
absl::StatusOr<std::unique_ptr<MetricSource>> MakeMetricSource(const WatchCommandOptions& o);

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

// RunWatchCommand()
//
// The whole command. Exit status: 0 (stopped by Ctrl-C or a cap, every
// capture written), 1 (the target went away, a capture failed, or setup
// failed), 2 (bad usage). `should_stop`, when given, is polled too (tests).
int RunWatchCommand(absl::Span<const std::string> args, std::ostream& out, std::ostream& err,
                    const WatchCaptureFactory& factory,
                    const std::function<bool()>& should_stop = nullptr);

// Implementation details follow.

namespace trigger_internal {

inline std::atomic<bool> g_watch_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
inline void OnWatchSignal(int) { g_watch_interrupted.store(true, std::memory_order_relaxed); }

}  // namespace trigger_internal

inline absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  std::string lower = absl::AsciiStrToLower(t);
  absl::string_view s = lower;
  absl::ConsumeSuffix(&s, "ib") || absl::ConsumeSuffix(&s, "b");
  double mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': mult = 1024.0; break;
      case 'm': mult = 1024.0 * 1024; break;
      case 'g': mult = 1024.0 * 1024 * 1024; break;
      case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
      default: break;
    }
    if (mult > 1) s.remove_suffix(1);
  }
  double v = 0;
  if (s.empty() || !absl::SimpleAtod(s, &v) || !std::isfinite(v) || v < 0 ||
      v * mult > 9.0e18) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a size (expected e.g. 1048576, 512M, 1.5G)"));
  }
  return static_cast<int64_t>(v * mult);
}

inline absl::StatusOr<absl::Duration> ParseWatchDuration(absl::string_view text) {
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds) && std::isfinite(seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a duration (expected e.g. 1s, 500ms, 2m)"));
  }
  if (d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is negative"));
  }
  return d;
}

inline absl::StatusOr<WatchCommandOptions> ParseWatchArgs(absl::Span<const std::string> args) {
  WatchCommandOptions o;
  auto bad = [](absl::string_view what) { return absl::InvalidArgumentError(what); };
  std::optional<double> threshold;
  std::optional<TriggerDirection> direction;
  int trigger_flags = 0;  // how many of --cpu-*/--rss-*/--metric were given
  bool id_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](absl::string_view flag) -> absl::StatusOr<std::string> {
      if (i + 1 >= args.size()) return bad(absl::StrCat(flag, " needs a value"));
      return args[++i];
    };
    auto number = [&](absl::string_view flag) -> absl::StatusOr<double> {
      absl::StatusOr<std::string> v = value(flag);
      if (!v.ok()) return v.status();
      double d = 0;
      if (!absl::SimpleAtod(*v, &d) || !std::isfinite(d)) {
        return bad(absl::StrCat(flag, " '", *v, "' is not a number"));
      }
      return d;
    };
    auto duration = [&](absl::string_view flag, absl::Duration* out) -> absl::Status {
      absl::StatusOr<std::string> v = value(flag);
      if (!v.ok()) return v.status();
      absl::StatusOr<absl::Duration> d = ParseWatchDuration(*v);
      if (!d.ok()) return bad(absl::StrCat(flag, ": ", d.status().message()));
      *out = *d;
      return absl::OkStatus();
    };
    if (a == "--cpu-above" || a == "--cpu-below" || a == "--rss-above" || a == "--rss-below") {
      ++trigger_flags;
      bool cpu = absl::StartsWith(a, "--cpu");
      o.source = cpu ? WatchCommandOptions::Source::kCpu : WatchCommandOptions::Source::kRss;
      direction = absl::EndsWith(a, "above") ? TriggerDirection::kAbove : TriggerDirection::kBelow;
      if (cpu) {
        absl::StatusOr<double> v = number(a);
        if (!v.ok()) return v.status();
        if (*v < 0) return bad(absl::StrCat(a, " must not be negative"));
        threshold = *v;
      } else {
        absl::StatusOr<std::string> v = value(a);
        if (!v.ok()) return v.status();
        absl::StatusOr<int64_t> bytes = ParseByteSize(*v);
        if (!bytes.ok()) return bad(absl::StrCat(a, ": ", bytes.status().message()));
        threshold = static_cast<double>(*bytes);
      }
    } else if (a == "--metric") {
      ++trigger_flags;
      o.source = WatchCommandOptions::Source::kMetric;
      absl::StatusOr<std::string> url = value(a);
      if (!url.ok()) return url.status();
      absl::StatusOr<std::string> sel = value(a);
      if (!sel.ok()) return bad("--metric needs a URL and a metric selector");
      o.url = *url;
      o.selector = *sel;
    } else if (a == "--above" || a == "--below") {
      if (direction.has_value() && o.source != WatchCommandOptions::Source::kMetric) {
        return bad(absl::StrCat(a, " goes with --metric"));
      }
      absl::StatusOr<double> v = number(a);
      if (!v.ok()) return v.status();
      if (threshold.has_value()) return bad("give one of --above and --below");
      threshold = *v;
      direction = a == "--above" ? TriggerDirection::kAbove : TriggerDirection::kBelow;
    } else if (a == "--for") {
      absl::StatusOr<double> v = number(a);
      if (!v.ok()) return v.status();
      if (*v < 1 || *v != std::floor(*v) || *v > 1e6) {
        return bad("--for must be a whole number of polls, at least 1");
      }
      o.watch.trigger.consecutive = static_cast<int>(*v);
    } else if (a == "--every") {
      if (absl::Status s = duration(a, &o.watch.every); !s.ok()) return s;
    } else if (a == "--duration" || a == "-d") {
      if (absl::Status s = duration(a, &o.watch.duration); !s.ok()) return s;
    } else if (a == "--lookback") {
      if (absl::Status s = duration(a, &o.watch.lookback); !s.ok()) return s;
    } else if (a == "--cooldown") {
      if (absl::Status s = duration(a, &o.watch.trigger.cooldown); !s.ok()) return s;
    } else if (a == "--max-captures") {
      absl::StatusOr<double> v = number(a);
      if (!v.ok()) return v.status();
      if (*v < 0 || *v != std::floor(*v) || *v > 1e9) {
        return bad("--max-captures must be a whole number (0 = no cap)");
      }
      o.watch.trigger.max_captures = static_cast<int>(*v);
    } else if (a == "--max-disk") {
      absl::StatusOr<std::string> v = value(a);
      if (!v.ok()) return v.status();
      absl::StatusOr<int64_t> bytes = ParseByteSize(*v);
      if (!bytes.ok()) return bad(absl::StrCat("--max-disk: ", bytes.status().message()));
      o.watch.trigger.max_disk_bytes = *bytes;
    } else if (a == "--dir") {
      absl::StatusOr<std::string> v = value(a);
      if (!v.ok()) return v.status();
      o.watch.dir = *v;
    } else if (a == "--event" || a == "-e") {
      absl::StatusOr<std::string> v = value(a);
      if (!v.ok()) return v.status();
      o.watch.event = *v;
    } else if (a == "--id") {
      absl::StatusOr<std::string> v = value(a);
      if (!v.ok()) return v.status();
      o.watch.id = *v;
      id_given = true;
    } else if (a == "--token") {
      absl::StatusOr<std::string> v = value(a);
      if (!v.ok()) return v.status();
      o.token = *v;
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      return bad(absl::StrCat("unknown flag '", a, "'"));
    } else {
      int pid = 0;
      if (o.pid != 0) return bad(absl::StrCat("unexpected argument '", a, "' (one PID only)"));
      if (!absl::SimpleAtoi(a, &pid) || pid <= 0) {
        return bad(absl::StrCat("'", a, "' is not a PID"));
      }
      o.pid = pid;
    }
  }
  if (trigger_flags == 0) {
    return bad("say what to watch: --cpu-above PERCENT, --rss-above BYTES or --metric URL NAME");
  }
  if (trigger_flags > 1) return bad("watch one metric at a time");
  if (o.source == WatchCommandOptions::Source::kMetric) {
    if (!threshold.has_value()) return bad("--metric needs --above X or --below X");
    if (o.token.empty()) {
      const char* env = std::getenv("FLAMEKIT_TOKEN");
      if (env != nullptr) o.token = env;
    }
    absl::StatusOr<ParsedUrl> url = ParseHttpUrl(o.url);
    if (!url.ok()) return url.status();
    absl::StatusOr<MetricSelector> sel = MetricSelector::Parse(o.selector);
    if (!sel.ok()) return sel.status();
    if (!id_given && o.pid == 0) o.watch.id = absl::StrCat(url->host, "_", url->port);
  } else if (o.pid == 0) {
    return bad("--cpu-*/--rss-* need the PID of the process to watch");
  }
  if (!id_given && o.watch.id.empty()) o.watch.id = absl::StrCat(o.pid);
  o.watch.trigger.threshold = *threshold;
  o.watch.trigger.direction = *direction;
  absl::Status valid = ValidateWatchOptions(o.watch);
  if (!valid.ok()) return valid;
  return o;
}

inline absl::StatusOr<std::unique_ptr<MetricSource>> MakeMetricSource(
    const WatchCommandOptions& o) {
  switch (o.source) {
    case WatchCommandOptions::Source::kCpu: {
      absl::StatusOr<std::unique_ptr<ProcessCpuSource>> s = ProcessCpuSource::Create(o.pid);
      if (!s.ok()) return s.status();
      return std::unique_ptr<MetricSource>(std::move(*s));
    }
    case WatchCommandOptions::Source::kRss: {
      absl::StatusOr<std::unique_ptr<ProcessRssSource>> s = ProcessRssSource::Create(o.pid);
      if (!s.ok()) return s.status();
      return std::unique_ptr<MetricSource>(std::move(*s));
    }
    case WatchCommandOptions::Source::kMetric:
      break;
  }
  absl::StatusOr<MetricSelector> sel = MetricSelector::Parse(o.selector);
  if (!sel.ok()) return sel.status();
  if (!HttpFetchAvailable()) return FetchUrl(o.url, absl::Seconds(1)).status();
  // A poll must not outlast its interval by much: time out at the interval,
  // between 1 and 10 s.
  absl::Duration timeout =
      std::min(absl::Seconds(10), std::max(absl::Seconds(1), o.watch.every));
  std::string url = o.url;
  std::string token = o.token;
  return std::unique_ptr<MetricSource>(std::make_unique<PrometheusSource>(
      url, *std::move(sel), [url, timeout, token] { return FetchUrl(url, timeout, token); }));
}

inline int RunWatchCommand(absl::Span<const std::string> args, std::ostream& out,
                           std::ostream& err, const WatchCaptureFactory& factory,
                           const std::function<bool()>& should_stop) {
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") {
      out << kWatchUsage;
      return 0;
    }
  }
  absl::StatusOr<WatchCommandOptions> o = ParseWatchArgs(args);
  if (!o.ok()) {
    err << "flamekit watch: " << o.status().message() << "\n" << kWatchUsage;
    return 2;
  }
  absl::StatusOr<std::unique_ptr<MetricSource>> source = MakeMetricSource(*o);
  if (!source.ok()) {
    err << "flamekit watch: " << source.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<WatchCapture> capture = factory(*o);
  if (!capture.ok()) {
    err << "flamekit watch: " << capture.status().message() << "\n";
    return 1;
  }
  std::string description = (*source)->Describe();
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = Watcher::Create(
      o->watch, std::move(*source), capture->capture, capture->lookback.get());
  if (!watcher.ok()) {
    err << "flamekit watch: " << watcher.status().message() << "\n";
    return 1;
  }
  out << "watching " << description << ": capture when "
      << (o->watch.trigger.direction == TriggerDirection::kAbove ? "above " : "below ")
      << FormatThreshold(o->watch.trigger.threshold) << " for " << o->watch.trigger.consecutive
      << " poll(s) every " << absl::FormatDuration(o->watch.every) << "; log "
      << (*watcher)->log_path() << "; Ctrl-C to stop\n";
  out.flush();

  trigger_internal::g_watch_interrupted.store(false);
  struct sigaction sa = {}, old_int = {}, old_term = {};
  sa.sa_handler = trigger_internal::OnWatchSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  int failed_captures = 0;
  absl::Status run = (*watcher)->Run(
      [&] {
        return trigger_internal::g_watch_interrupted.load(std::memory_order_relaxed) ||
               (should_stop && should_stop());
      },
      [&](const Watcher::PollOutcome& p) {
        std::string when = absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone());
        if (!p.file.empty()) {
          out << when << "  captured " << p.file << " (value " << FormatThreshold(*p.value)
              << ")\n";
        } else if (p.decision == TriggerDecision::kFire) {
          ++failed_captures;
          err << when << "  capture failed: " << p.status.message() << "\n";
        } else if (!p.status.ok()) {
          if (!p.repeated_error) err << when << "  " << p.status.message() << "\n";
        } else if (!o->quiet) {
          out << when << "  " << (p.value.has_value() ? absl::StrFormat("%.6g", *p.value)
                                                      : std::string("(first reading)"))
              << "  " << TriggerDecisionName(p.decision) << "\n";
        }
        out.flush();
      });
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  const Trigger& t = (*watcher)->trigger();
  out << "watch ended: " << t.captures() << " capture(s), " << t.disk_used() << " bytes\n";
  if (!run.ok()) {
    err << "flamekit watch: " << run.message() << "\n";
    return 1;
  }
  return failed_captures > 0 ? 1 : 0;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_WATCH_CLI_H_
