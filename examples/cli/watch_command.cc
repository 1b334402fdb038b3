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
#include "flamekit/trigger/attach_capture.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/metric_watch.h"

namespace flamekit {
namespace cli {
namespace {

std::atomic<bool> g_watch_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
void OnWatchSignal(int) { g_watch_interrupted.store(true, std::memory_order_relaxed); }

const char* const kSourceFlags[] = {"--cpu-above", "--cpu-below", "--rss-above", "--rss-below"};

int Run(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const Command command = {
      "watch", "Capture a profile when CPU, RSS or a Prometheus metric crosses a line",
      "flamekit watch PID|--name REGEX (--cpu-above|--cpu-below) PERCENT [flags]\n"
      "       flamekit watch PID (--rss-above|--rss-below) BYTES [flags]\n"
      "       flamekit watch [PID] --metric URL 'NAME{label=~\"re\"}' (--above|--below) X "
      "[flags]",
      "Captures a profile when a metric crosses a line, with the seconds before it.\n\n"
      "Flags:\n"
      "  --for K            K consecutive polls beyond the line (default 1)\n"
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
      "  -q, --quiet        no line per poll\n"
      "Durations: 30 (seconds), 1.5, 500ms, 2m. Sizes: 1048576, 64k, 512M, 1.5G.\n"
      "Captures: <id>-<event>-flamegraph-<UTC time>-<reason>.html; log: DIR/watch.jsonl.\n"
      "Runs until Ctrl-C, --max-captures/--max-disk, or the target exits.\n",
      {{"--cpu-above", "", true},
       {"--cpu-below", "", true},
       {"--rss-above", "", true},
       {"--rss-below", "", true},
       {"--metric", "", true, false, 2},
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
  for (const char* flag : {"--above", "--below"}) {
    if (!args.Has(flag)) continue;
    if (direction.has_value() && o.source != WatchCommandOptions::Source::kMetric) {
      return Bad(absl::StrCat(flag, " goes with --metric"));
    }
    absl::StatusOr<double> v = Number(args, flag);
    if (!v.ok()) return v.status();
    if (threshold.has_value()) return Bad("give one of --above and --below");
    threshold = *v;
    direction = absl::string_view(flag) == "--above" ? TriggerDirection::kAbove
                                                      : TriggerDirection::kBelow;
  }
  if (args.Has("--for")) {
    absl::StatusOr<double> v = Number(args, "--for");
    if (!v.ok()) return v.status();
    if (*v < 1 || *v != std::floor(*v) || *v > 1e6) {
      return Bad("--for must be a whole number of polls, at least 1");
    }
    o.watch.trigger.consecutive = static_cast<int>(*v);
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
    return Bad("say what to watch: --cpu-above PERCENT, --rss-above BYTES or --metric URL NAME");
  }
  if (trigger_flags > 1) return Bad("watch one metric at a time");
  if (o.source == WatchCommandOptions::Source::kMetric) {
    if (!threshold.has_value()) return Bad("--metric needs --above X or --below X");
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
    return Bad("--cpu-*/--rss-* need the PID of the process to watch");
  }
  if (!id_given && o.watch.id.empty()) o.watch.id = absl::StrCat(o.pid);
  o.watch.trigger.threshold = *threshold;
  o.watch.trigger.direction = *direction;
  absl::Status valid = ValidateWatchOptions(o.watch);
  if (!valid.ok()) return valid;
  return o;
}

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

  g_watch_interrupted.store(false);
  struct sigaction sa = {}, old_int = {}, old_term = {};
  sa.sa_handler = OnWatchSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
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
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
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

}  // namespace cli
}  // namespace flamekit
