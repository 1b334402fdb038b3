// SPDX-License-Identifier: Apache-2.0
// `flamekit watch`: see watch_command.h.
#include "examples/cli/watch_command.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "flamekit/attach/process_finder.h"
#include "flamekit/trigger/alert_listener.h"
#include "flamekit/trigger/alert_webhook.h"
#include "flamekit/trigger/attach_capture.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/metric_watch.h"
#include "flamekit/trigger/promql_source.h"

namespace flamekit {
namespace cli {
namespace {

std::atomic<bool> g_watch_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
void OnWatchSignal(int) { g_watch_interrupted.store(true, std::memory_order_relaxed); }

// Ctrl-C and SIGTERM end a watch cleanly (the current capture is written)
// for as long as this lives; the previous handlers come back after.
class WatchSignals {
 public:
  WatchSignals() {
    g_watch_interrupted.store(false);
    struct sigaction sa = {};
    sa.sa_handler = OnWatchSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~WatchSignals() { Restore(); }
  void Restore() {
    if (restored_) return;
    restored_ = true;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  WatchSignals(const WatchSignals&) = delete;
  WatchSignals& operator=(const WatchSignals&) = delete;

 private:
  struct sigaction old_int_ = {}, old_term_ = {};
  bool restored_ = false;
};

const char* const kSourceFlags[] = {"--cpu-above", "--cpu-below", "--rss-above", "--rss-below"};

int Run(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const Command command = {
      "watch", "Capture a profile when CPU, RSS or a Prometheus metric crosses a line",
      "flamekit watch PID|--name REGEX (--cpu-above|--cpu-below) PERCENT [flags]\n"
      "       flamekit watch PID (--rss-above|--rss-below) BYTES [flags]\n"
      "       flamekit watch [PID] --metric URL 'NAME{label=~\"re\"}' (--above|--below) X "
      "[flags]\n"
      "       flamekit watch PID|--name REGEX --prometheus URL --query 'PROMQL' "
      "(--above|--below) X [--for DUR] [flags]\n"
      "       flamekit watch --listen HOST:PORT [PID] [flags]   (Alertmanager webhooks)",
      "Captures a profile when a metric crosses a line, with the seconds before it.\n\n"
      "Flags:\n"
      "  --for K|DUR        K consecutive polls beyond the line (default 1), or a\n"
      "                     duration (30s: as many polls as fit in it, like an alert's for:)\n"
      "  --prometheus URL   Prometheus server (http://127.0.0.1:9090) to ask --query\n"
      "  --query PROMQL     instant query; several series: the one furthest past the line;\n"
      "                     no series, a timeout or the server down: logged, still watching\n"
      "  --every DUR        poll interval (default 1s)\n"
      "  -d, --duration DUR full-rate capture after the trigger (default 10s)\n"
      "  --lookback DUR     low-rate look-back kept before the trigger (default 10s, 0 = off)\n"
      "  --dir DIR          captures and watch.jsonl go here (default .)\n"
      "  --cooldown DUR     quiet time after a capture (default 60s)\n"
      "  --max-captures N   stop after N captures (default 0 = no cap)\n"
      "  --max-disk SIZE    stop once captures use SIZE (512M, 2G; default no cap)\n"
      "  -e, --event EVENT  what to profile (default cpu)\n"
      "  --id NAME          name in capture files (default the PID or the URL's host_port)\n"
      "  --token TOKEN      bearer token for --metric (e.g. the flamekit UI's /metrics);\n"
      "                     default $FLAMEKIT_TOKEN, which keeps it out of `ps`\n"
      "  --name REGEX       watch the one process whose command line matches REGEX\n"
      "                     (instead of a PID, as `flamekit record --name`)\n"
      "  --listen HOST:PORT take Alertmanager's webhook (version 4) at POST /alertmanager,\n"
      "                     with the bearer --token; each firing alert captures the process\n"
      "                     its labels name (one at a time, --cooldown, --max-*)\n"
      "  --pid-label L      alert label holding the PID (default pid)\n"
      "  --name-label L     else one holding a command-line regex (default process);\n"
      "                     else the PID given on the command line\n"
      "  --debounce DUR     ignore the same alert (fingerprint) again for DUR (default 10m)\n"
      "  -q, --quiet        no line per poll\n"
      "Durations: 30 (seconds), 1.5, 500ms, 2m. Sizes: 1048576, 64k, 512M, 1.5G.\n"
      "Captures: <id>-<event>-flamegraph-<UTC time>-<reason>.html; log: DIR/watch.jsonl.\n"
      "Runs until Ctrl-C, --max-captures/--max-disk, or the target exits.\n",
      {{"--cpu-above", "", true},
       {"--cpu-below", "", true},
       {"--rss-above", "", true},
       {"--rss-below", "", true},
       {"--metric", "", true, false, 2},
       {"--prometheus", "", true},
       {"--query", "", true},
       {"--listen", "", true},
       {"--pid-label", "", true},
       {"--name-label", "", true},
       {"--debounce", "", true},
       {"--above", "", true},
       {"--below", "", true},
       {"--for", "", true},
       {"--every", "", true},
       {"--duration", "-d", true},
       {"--lookback", "", true},
       {"--cooldown", "", true},
       {"--max-captures", "", true},
       {"--max-disk", "", true},
       {"--dir", "", true},
       {"--event", "-e", true},
       {"--id", "", true},
       {"--token", "", true},
       {"--quiet", "-q", false},
       {"--name", "", true}},
      &Run};
  return command;
}

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

absl::StatusOr<double> Number(const ParsedArgs& args, absl::string_view flag) {
  std::string v = args.Value(flag);
  double d = 0;
  if (!absl::SimpleAtod(v, &d) || !std::isfinite(d)) {
    return Bad(absl::StrCat(flag, " '", v, "' is not a number"));
  }
  return d;
}

}  // namespace

absl::StatusOr<WatchCommandOptions> ParseWatchArgs(absl::Span<const std::string> args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, Self().flags);
  if (!parsed.ok()) return parsed.status();
  return ParseWatchArgs(*parsed);
}

absl::StatusOr<WatchCommandOptions> ParseWatchArgs(const ParsedArgs& args) {
  WatchCommandOptions o;
  std::optional<double> threshold;
  std::optional<TriggerDirection> direction;
  int trigger_flags = 0;  // how many of --cpu-*/--rss-*/--metric were given
  for (const char* flag : kSourceFlags) {
    if (!args.Has(flag)) continue;
    ++trigger_flags;
    absl::string_view a = flag;
    bool cpu = absl::StartsWith(a, "--cpu");
    o.source = cpu ? WatchCommandOptions::Source::kCpu : WatchCommandOptions::Source::kRss;
    direction = absl::EndsWith(a, "above") ? TriggerDirection::kAbove : TriggerDirection::kBelow;
    if (cpu) {
      absl::StatusOr<double> v = Number(args, a);
      if (!v.ok()) return v.status();
      if (*v < 0) return Bad(absl::StrCat(a, " must not be negative"));
      threshold = *v;
    } else {
      absl::StatusOr<int64_t> bytes = ParseSizeFlag(a, args.Value(a));
      if (!bytes.ok()) return bytes.status();
      threshold = static_cast<double>(*bytes);
    }
  }
  if (args.Has("--metric")) {
    ++trigger_flags;
    o.source = WatchCommandOptions::Source::kMetric;
    std::vector<std::string> v = args.Values("--metric");
    o.url = v[0];
    o.selector = v.size() > 1 ? v[1] : "";
  }
  if (args.Has("--prometheus") || args.Has("--query")) {
    if (!args.Has("--prometheus") || !args.Has("--query")) {
      return Bad("--prometheus URL and --query 'PROMQL' go together");
    }
    ++trigger_flags;
    o.source = WatchCommandOptions::Source::kPromQl;
    o.prometheus = args.Value("--prometheus");
    o.query = args.Value("--query");
    if (o.query.empty()) return Bad("--query needs a PromQL expression");
  }
  if (args.Has("--listen")) {
    ++trigger_flags;
    o.source = WatchCommandOptions::Source::kAlerts;
    o.listen = args.Value("--listen");
    if (args.Has("--pid-label")) o.pid_label = args.Value("--pid-label");
    if (args.Has("--name-label")) o.name_label = args.Value("--name-label");
    if (args.Has("--debounce")) {
      DurationRange range;
      range.allow_zero = true;
      absl::StatusOr<absl::Duration> d =
          ParseDurationFlag("--debounce", args.Value("--debounce"), range);
      if (!d.ok()) return d.status();
      o.debounce = *d;
    }
  }
  const bool with_above_below = o.source == WatchCommandOptions::Source::kMetric ||
                                o.source == WatchCommandOptions::Source::kPromQl;
  for (const char* flag : {"--above", "--below"}) {
    if (!args.Has(flag)) continue;
    if (direction.has_value() && !with_above_below) {
      return Bad(absl::StrCat(flag, " goes with --metric or --prometheus"));
    }
    absl::StatusOr<double> v = Number(args, flag);
    if (!v.ok()) return v.status();
    if (threshold.has_value()) return Bad("give one of --above and --below");
    threshold = *v;
    direction = absl::string_view(flag) == "--above" ? TriggerDirection::kAbove
                                                      : TriggerDirection::kBelow;
  }
  struct DurationFlag {
    const char* name;
    absl::Duration* out;
    bool allow_zero;
  };
  for (const DurationFlag& d : {DurationFlag{"--every", &o.watch.every, false},
                                DurationFlag{"--duration", &o.watch.duration, false},
                                DurationFlag{"--lookback", &o.watch.lookback, true},
                                DurationFlag{"--cooldown", &o.watch.trigger.cooldown, true}}) {
    if (!args.Has(d.name)) continue;
    DurationRange range;
    range.allow_zero = d.allow_zero;
    absl::StatusOr<absl::Duration> v = ParseDurationFlag(d.name, args.Value(d.name), range);
    if (!v.ok()) return v.status();
    *d.out = *v;
  }
  if (args.Has("--for")) {
    // A bare number counts polls (as before); with a unit it is a time the
    // condition must hold, as in an alert rule's `for:`, turned into the
    // polls that fit in it at --every.
    std::string v = args.Value("--for");
    double polls = 0;
    if (absl::SimpleAtod(v, &polls)) {
      if (polls < 1 || polls != std::floor(polls) || polls > 1e6) {
        return Bad("--for must be a whole number of polls (at least 1) or a duration (30s)");
      }
      o.watch.trigger.consecutive = static_cast<int>(polls);
    } else {
      absl::StatusOr<absl::Duration> d = ParseDurationFlag("--for", v, DurationRange{});
      if (!d.ok()) return d.status();
      double n = std::ceil(absl::FDivDuration(*d, o.watch.every) - 1e-9);
      if (n > 1e6) return Bad("--for is more than a million polls at --every");
      o.watch.trigger.consecutive = static_cast<int>(std::max(1.0, n));
    }
  }
  if (args.Has("--max-captures")) {
    absl::StatusOr<double> v = Number(args, "--max-captures");
    if (!v.ok()) return v.status();
    if (*v < 0 || *v != std::floor(*v) || *v > 1e9) {
      return Bad("--max-captures must be a whole number (0 = no cap)");
    }
    o.watch.trigger.max_captures = static_cast<int>(*v);
  }
  if (args.Has("--max-disk")) {
    absl::StatusOr<int64_t> bytes = ParseSizeFlag("--max-disk", args.Value("--max-disk"));
    if (!bytes.ok()) return bytes.status();
    o.watch.trigger.max_disk_bytes = *bytes;
  }
  if (args.Has("--dir")) o.watch.dir = args.Value("--dir");
  if (args.Has("--event")) o.watch.event = args.Value("--event");
  const bool id_given = args.Has("--id");
  if (id_given) o.watch.id = args.Value("--id");
  o.token = args.Value("--token");
  // The bearer token of a /metrics endpoint, a Prometheus server or the
  // alert listener: the flag, else the environment (kept out of `ps`).
  if (o.token.empty()) {
    const char* env = std::getenv("FLAMEKIT_TOKEN");
    if (env != nullptr) o.token = env;
  }
  o.quiet = args.Has("--quiet");
  for (const std::string& a : args.positional) {
    if (o.pid != 0) return Bad(absl::StrCat("unexpected argument '", a, "' (one PID only)"));
    absl::StatusOr<pid_t> pid = ParsePidArg(a);
    if (!pid.ok()) return pid.status();
    o.pid = *pid;
  }
  if (args.Has("--name")) {
    if (o.pid != 0) return Bad("give a PID or --name REGEX, not both");
    absl::StatusOr<ProcessMatch> match = FindSingleProcess(args.Value("--name"));
    if (!match.ok()) return match.status();
    o.pid = match->pid;
  }
  if (trigger_flags == 0) {
    return Bad(
        "say what to watch: --cpu-above PERCENT, --rss-above BYTES, --metric URL NAME or "
        "--prometheus URL --query PROMQL");
  }
  if (trigger_flags > 1) return Bad("watch one metric at a time");
  if (o.source == WatchCommandOptions::Source::kMetric) {
    if (!threshold.has_value()) return Bad("--metric needs --above X or --below X");
    absl::StatusOr<ParsedUrl> url = ParseHttpUrl(o.url);
    if (!url.ok()) return url.status();
    absl::StatusOr<MetricSelector> sel = MetricSelector::Parse(o.selector);
    if (!sel.ok()) return sel.status();
    if (!id_given && o.pid == 0) o.watch.id = absl::StrCat(url->host, "_", url->port);
  } else if (o.source == WatchCommandOptions::Source::kAlerts) {
    if (threshold.has_value()) return Bad("--listen takes alerts: no --above/--below");
    if (o.token.empty()) {
      return Bad("--listen needs a token: --token TOKEN or FLAMEKIT_TOKEN (Alertmanager sends "
                 "it with http_config: {authorization: {credentials: TOKEN}})");
    }
    threshold = 0;
    direction = TriggerDirection::kAbove;
    if (!id_given && o.watch.id.empty()) o.watch.id = "alert";
  } else if (o.source == WatchCommandOptions::Source::kPromQl) {
    if (!threshold.has_value()) return Bad("--query needs --above X or --below X");
    absl::StatusOr<ParsedUrl> url = ParseHttpUrl(o.prometheus);
    if (!url.ok()) return url.status();
    if (o.pid == 0) {
      return Bad("--prometheus needs the process to profile: a PID or --name REGEX");
    }
  } else if (o.pid == 0) {
    return Bad("--cpu-*/--rss-* need the PID of the process to watch");
  }
  if (!id_given && o.watch.id.empty()) o.watch.id = absl::StrCat(o.pid);
  o.watch.trigger.threshold = *threshold;
  o.watch.trigger.direction = *direction;
  absl::Status valid = ValidateWatchOptions(o.watch);
  if (!valid.ok()) return valid;
  return o;
}

namespace {

// Asks once before watching: a query Prometheus refuses (a typo, a range
// vector) will never work, so it ends the command now with Prometheus' own
// message; a server that is down or a series not there yet is only logged
// by the watch, which keeps asking.
absl::StatusOr<std::unique_ptr<MetricSource>> MakePromQlSource(const WatchCommandOptions& o) {
  if (!HttpFetchAvailable()) return FetchUrl(o.prometheus, absl::Seconds(1)).status();
  absl::Duration timeout =
      std::min(absl::Seconds(10), std::max(absl::Seconds(1), o.watch.every));
  auto source = std::make_unique<PromQlSource>(o.prometheus, o.query, o.watch.trigger.direction,
                                               timeout, o.token);
  absl::StatusOr<std::optional<double>> first = source->Poll();
  if (!first.ok() && absl::IsInvalidArgument(first.status())) {
    return absl::FailedPreconditionError(first.status().message());
  }
  if (!first.ok() && absl::IsPermissionDenied(first.status())) return first.status();
  return std::unique_ptr<MetricSource>(std::move(source));
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricSource>> MakeMetricSource(const WatchCommandOptions& o) {
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
    case WatchCommandOptions::Source::kPromQl:
      return MakePromQlSource(o);
    case WatchCommandOptions::Source::kAlerts:
      return absl::InvalidArgumentError("--listen has no metric to poll");
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

namespace {

// `watch --listen`: an AlertReceiver behind an AlertListener until Ctrl-C,
// a cap, or `should_stop`. Each capture asks `factory` for the alert's PID
// (no look-back: nothing was sampling that process before the alert).
int RunAlerts(const WatchCommandOptions& o, CommandIo& io, const WatchCaptureFactory& factory,
              const std::function<bool()>& should_stop) {
  const Command& command = Self();
  AlertReceiverOptions ro;
  ro.watch = o.watch;
  ro.pid_label = o.pid_label;
  ro.name_label = o.name_label;
  ro.debounce = o.debounce;
  WatchCommandOptions base = o;
  PidCaptureFn capture = [base, factory](pid_t pid, const CaptureRequest& request) {
    WatchCommandOptions c = base;
    c.pid = pid;
    c.watch.id = absl::StrCat(pid);
    c.watch.lookback = absl::ZeroDuration();
    absl::StatusOr<WatchCapture> made = factory(c);
    if (!made.ok()) return made.status();
    return made->capture(request);
  };
  ro.default_pid = o.pid;
  PidFinder finder = [](const std::string& regex) -> absl::StatusOr<pid_t> {
    absl::StatusOr<ProcessMatch> m = FindSingleProcess(regex);
    if (!m.ok()) return m.status();
    return m->pid;
  };
  absl::StatusOr<std::unique_ptr<AlertReceiver>> receiver =
      AlertReceiver::Create(ro, capture, finder);
  if (!receiver.ok()) return ExitCode(command, receiver.status(), io);
  absl::StatusOr<std::unique_ptr<AlertListener>> listener =
      AlertListener::Start(o.listen, o.token, receiver->get());
  if (!listener.ok()) return ExitCode(command, listener.status(), io);
  io.out << "listening for Alertmanager at " << (*listener)->Url() << "; log "
         << (*receiver)->log_path() << "; Ctrl-C to stop\n";
  io.out.flush();
  WatchSignals signals;
  const TriggerOptions& caps = o.watch.trigger;
  while (!g_watch_interrupted.load(std::memory_order_relaxed) &&
         !(should_stop && should_stop())) {
    if ((caps.max_captures > 0 && (*receiver)->captures() >= caps.max_captures) ||
        (caps.max_disk_bytes > 0 && (*receiver)->disk_used() >= caps.max_disk_bytes)) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  signals.Restore();
  (*listener)->Stop();
  io.out << "watch ended: " << (*receiver)->captures() << " capture(s), "
         << (*receiver)->disk_used() << " bytes\n";
  return kExitOk;
}

int RunParsed(const ParsedArgs& args, CommandIo& io, const WatchCaptureFactory& factory,
              const std::function<bool()>& should_stop) {
  const Command& command = Self();
  absl::StatusOr<WatchCommandOptions> o = ParseWatchArgs(args);
  // A flag mistake is a usage error (exit 2); --name matching no process or
  // several is not (exit 1, with the matches).
  if (!o.ok() && absl::IsInvalidArgument(o.status())) {
    return UsageError(command, o.status().message(), io);
  }
  if (!o.ok()) return ExitCode(command, o.status(), io);
  if (o->source == WatchCommandOptions::Source::kAlerts) {
    return RunAlerts(*o, io, factory, should_stop);
  }
  absl::StatusOr<std::unique_ptr<MetricSource>> source = MakeMetricSource(*o);
  if (!source.ok()) return ExitCode(command, source.status(), io);
  absl::StatusOr<WatchCapture> capture = factory(*o);
  if (!capture.ok()) return ExitCode(command, capture.status(), io);
  std::string description = (*source)->Describe();
  absl::StatusOr<std::unique_ptr<Watcher>> watcher = Watcher::Create(
      o->watch, std::move(*source), capture->capture, capture->lookback.get());
  if (!watcher.ok()) return ExitCode(command, watcher.status(), io);
  std::ostream& out = io.out;
  out << "watching " << description << ": capture when "
      << (o->watch.trigger.direction == TriggerDirection::kAbove ? "above " : "below ")
      << FormatThreshold(o->watch.trigger.threshold) << " for " << o->watch.trigger.consecutive
      << " poll(s) every " << absl::FormatDuration(o->watch.every) << "; log "
      << (*watcher)->log_path() << "; Ctrl-C to stop\n";
  out.flush();

  WatchSignals signals;
  int failed_captures = 0;
  absl::Status run = (*watcher)->Run(
      [&] {
        return g_watch_interrupted.load(std::memory_order_relaxed) ||
               (should_stop && should_stop());
      },
      [&](const Watcher::PollOutcome& p) {
        std::string when = absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone());
        if (!p.file.empty()) {
          out << when << "  captured " << p.file << " (value " << FormatThreshold(*p.value)
              << ")\n";
        } else if (p.decision == TriggerDecision::kFire) {
          ++failed_captures;
          io.err << when << "  capture failed: " << p.status.message() << "\n";
        } else if (!p.status.ok()) {
          if (!p.repeated_error) io.err << when << "  " << p.status.message() << "\n";
        } else if (!o->quiet) {
          out << when << "  " << (p.value.has_value() ? absl::StrFormat("%.6g", *p.value)
                                                      : std::string("(first reading)"))
              << "  " << TriggerDecisionName(p.decision) << "\n";
        }
        out.flush();
      });
  signals.Restore();
  const Trigger& t = (*watcher)->trigger();
  out << "watch ended: " << t.captures() << " capture(s), " << t.disk_used() << " bytes\n";
  if (!run.ok()) return ExitCode(command, run, io);
  return failed_captures > 0 ? kExitError : kExitOk;
}

int Run(const ParsedArgs& args, CommandIo& io) {
  return RunParsed(args, io, MakeAttachWatchCapture, nullptr);
}

}  // namespace

int RunWatchCommand(absl::Span<const std::string> args, std::ostream& out, std::ostream& err,
                    const WatchCaptureFactory& factory,
                    const std::function<bool()>& should_stop) {
  CommandIo io{out, err};
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, Self().flags);
  if (parsed.ok() && parsed->help) {
    PrintHelp(Self(), out);
    return kExitOk;
  }
  if (!parsed.ok()) return UsageError(Self(), parsed.status().message(), io);
  return RunParsed(*parsed, io, factory, should_stop);
}

Command WatchCommand() { return Self(); }

WatchCaptureFactory AttachCaptureFactory() { return MakeAttachWatchCapture; }

}  // namespace cli
}  // namespace flamekit
