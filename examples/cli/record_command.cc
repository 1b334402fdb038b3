// SPDX-License-Identifier: Apache-2.0
// `flamekit record`: flags, help and the profiler.sh form. The run itself
// is record_run.cc.
#include "examples/cli/record_command.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/human_units.h"

namespace flamekit {
namespace cli {
namespace {

constexpr char kExitCodePayload[] = "type.flamekit/exit_code";

int RunRecordCommand(const ParsedArgs& args, CommandIo& io);

const Command& Self() {
  static const Command command = {
      "record",
      "Profile a running process (PID, --name REGEX) or a command it launches",
      "flamekit record [options] PID | --name REGEX | --container NAME|ID [--all]\n"
      "                         | -- COMMAND [ARGS...]\n"
      "       flamekit [options] PID                      (profiler.sh style)",
      R"(Profiles a running process with perf events; nothing is loaded into it.

Flags:
  -d, --duration DUR       stop after this long (30, 1.5, 500ms, 2m);
                           default: until Ctrl-C or the target exits
  -e, --event EVENT        cpu (default), task-clock, page-faults,
                           context-switches, cycles, instructions,
                           cache-misses, branch-misses, ... (`flamekit list`)
                           wall: wall-clock time, on CPU ([running]) and off
                           it ([syscall read], [sleeping], [runnable]:
                           preempted), by the stack where each thread left
                           the CPU; -t per thread; weights are
                           -i intervals (default 10ms); off-CPU stacks need
                           kernel sampling (root, CAP_PERFMON or
                           perf_event_paranoid <= 1), else noted
                           alloc, live, lock: allocations (bytes), what
                           is still allocated at exit, lock waits (time);
                           with -- COMMAND only, which is launched with the
                           agent (libflamekit_agent.so, or $FLAMEKIT_AGENT);
                           a .pb.gz also has the counts (alloc_objects,
                           inuse_objects, contentions)
  -i, --interval N         sampling period: 10ms, 500us, or a count of events;
                           alloc/live: mean bytes between samples (512k);
                           lock: the shortest wait recorded (10us)
  -F, --frequency HZ       samples per second instead of an interval
  -f, --file PATH          output; format by extension (.html .svg .txt
                           .collapsed .pb.gz .pprof);
                           default flame-PID-TIMESTAMP.html
  -t, --threads            split stacks by thread
      --unwind fp|dwarf|auto how user stacks are walked: fp = the kernel's
                           frame-pointer chain (cheapest); dwarf = each
                           sample copies the top of the stack and it is
                           stepped with the .eh_frame rules of the target's
                           files (Debian's binaries have no frame pointers);
                           auto (default) = per sample whichever gets further
      --stack-size BYTES   stack bytes each sample copies for dwarf/auto
                           (default 8k, 512 to 65528; deeper stacks are
                           marked [truncated])
      --name REGEX         the one process whose command line matches REGEX
      --container NAME|ID  a container's main process, found with `docker
                           inspect` (or, for an ID when the runtime cannot
                           be asked, by its cgroup in /proc); symbols come
                           from its own files (/proc/PID/root)
      --runtime RUNTIME    docker (default) or podman, for --container
      --all                with --container: every process in its cgroup
                           (one perf event per process, profiles merged)
      --include REGEX      keep only stacks with a frame matching REGEX
      --exclude REGEX      drop stacks with a frame matching REGEX
      --transforms FILE    apply the transform list in FILE (JSON)
      --title TEXT         title of the flame graph
      --minwidth PERCENT   hide frames narrower than PERCENT of all samples
      --inverted           icicle graph (root at the top)
      --reverse            callers of the hottest leaves merged (leaf first)
      --format FORMAT      html, svg, collapsed or pprof, whatever PATH's
                           extension (default: by extension)
      --continuous         profile in back-to-back windows and push each
                           one (pprof) to --push; runs until Ctrl-C, -d
                           (total) or the target exits; a PID, --name or
                           --container target only
      --every DUR          one window's length (default 10s, 1s to 1h)
      --push URL           a Pyroscope server, http[s]://HOST:PORT[/PREFIX]
                           (no ?query): POST URL/ingest per window,
                           name=APP{host,pid,build_id,container,labels};
                           a window that cannot be sent is dropped and
                           counted (at most 4 wait), never waited for
      --label KEY=VALUE    one more label for every window (repeatable)
      --app NAME           the application name (default: the target's)
  -q, --quiet              no progress line and no summary
  -h, --help               this text
Ctrl-C stops and writes the profile; a second Ctrl-C aborts without writing.
With -- COMMAND, profiling ends when the command exits (or after -d, leaving
it running). Exit codes: 2 usage, 3 no such process, 4 permission, 5 perf
events unavailable, 6 no PMU, 7 --name matched none or several, 8 output,
9 resource limits, 10 command could not start, 11 --continuous pushed no
window, 130 aborted.
)",
      {{"--duration", "-d", true},
       {"--event", "-e", true},
       {"--interval", "-i", true},
       {"--frequency", "-F", true},
       {"--file", "-f", true},
       {"--threads", "-t", false},
       {"--unwind", "", true},
       {"--stack-size", "", true},
       {"--name", "", true},
       {"--container", "", true},
       {"--runtime", "", true},
       {"--all", "", false},
       {"--include", "", true, /*repeated=*/true},
       {"--exclude", "", true, /*repeated=*/true},
       {"--transforms", "", true},
       {"--title", "", true},
       {"--minwidth", "", true},
       {"--inverted", "", false},
       {"--reverse", "", false},
       {"--format", "", true},
       {"--quiet", "-q", false},
       {"--continuous", "", false},
       {"--every", "", true},
       {"--push", "", true},
       {"--label", "", true, /*repeated=*/true},
       {"--app", "", true}},
      &RunRecordCommand};
  return command;
}

absl::Status Usage(absl::string_view message) {
  return WithExitCode(absl::InvalidArgumentError(message), kRecordUsageError);
}

int RunRecordCommand(const ParsedArgs& args, CommandIo& io) {
  absl::StatusOr<RecordFlags> flags = ParseRecordArgs(args);
  if (!flags.ok()) {
    if (ExitCodeOf(flags.status()) == kRecordUsageError) {
      return UsageError(Self(), flags.status().message(), io);
    }
    io.err << "flamekit record: " << flags.status().message() << "\n";
    return ExitCodeOf(flags.status());
  }
  return RunRecord(*flags, io);
}

}  // namespace

absl::Status WithExitCode(absl::Status status, RecordExitCode code) {
  if (status.ok()) return status;
  status.SetPayload(kExitCodePayload, absl::Cord(absl::StrCat(int{code})));
  return status;
}

int ExitCodeOf(const absl::Status& status) {
  if (status.ok()) return kRecordOk;
  if (auto tag = status.GetPayload(kExitCodePayload)) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*tag), &code)) return code;
  }
  absl::string_view msg = status.message();
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return kRecordUsageError;
    case absl::StatusCode::kNotFound: return kRecordNoProcess;
    case absl::StatusCode::kPermissionDenied: return kRecordPermissionDenied;
    case absl::StatusCode::kFailedPrecondition:
      if (absl::StrContains(msg, "no PMU")) return kRecordNoPmu;
      if (absl::StrContains(msg, "perf events unavailable")) return kRecordPerfUnavailable;
      return kRecordInternalError;
    case absl::StatusCode::kResourceExhausted: return kRecordResourceLimit;
    default: return kRecordInternalError;
  }
}

absl::StatusOr<RecordFlags> ParseRecordArgs(const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, Self().flags);
  if (!parsed.ok()) return WithExitCode(parsed.status(), kRecordUsageError);
  if (parsed->help) {
    RecordFlags flags;
    flags.help = true;
    return flags;
  }
  return ParseRecordArgs(*parsed);
}

absl::StatusOr<RecordFlags> ParseRecordArgs(const ParsedArgs& args) {
  RecordFlags flags;
  flags.help = args.help;
  if (args.Has("--duration")) {
    DurationRange range;
    range.min = absl::Milliseconds(10);
    absl::StatusOr<absl::Duration> d =
        ParseDurationFlag("--duration", args.Value("--duration"), range);
    if (!d.ok()) return WithExitCode(d.status(), kRecordUsageError);
    flags.duration = *d;
  }
  if (args.Has("--event") && IsHookEvent(args.Value("--event"))) {
    flags.hook_event = args.Value("--event");
  } else if (args.Has("--event")) {
    const std::string event = absl::AsciiStrToLower(args.Value("--event"));
    if (event == "ctimer" || event == "itimer") {
      // Timer signals are delivered inside the profiled process: only code
      // loaded into it can take them.
      return Usage(absl::StrCat(
          "-e ", event, " cannot profile another process: its timer signals are caught inside "
          "the process. Use -e cpu (perf's cpu-clock, the default) for CPU time, or load the "
          "agent into the program (LD_PRELOAD=libflamekit_agent.so, "
          "README: \"A program that was not built with flamekit\") to use ", event, " there"));
    }
    // wall: cpu-clock plus context switches (attach/offcpu_switches.h).
    absl::StatusOr<PerfEventSpec> e =
        event == "wall" ? WallEventSpec() : ParsePerfEvent(args.Value("--event"));
    if (!e.ok()) return WithExitCode(e.status(), kRecordUsageError);
    flags.event = *e;
  }
  if (args.Has("--interval") && args.Has("--frequency")) {
    return Usage("give --interval or --frequency, not both");
  }
  if (!flags.hook_event.empty() && args.Has("--interval")) {
    // alloc/live: mean bytes between samples; lock: the shortest wait.
    flags.hook_interval = args.Value("--interval");
    const bool ok = flags.hook_event == "lock"
                        ? ParseHumanDuration(flags.hook_interval).ok()
                        : ParseHumanSize(flags.hook_interval).ok() &&
                              *ParseHumanSize(flags.hook_interval) >= 1;
    if (!ok) {
      return Usage(flags.hook_event == "lock"
                       ? "-e lock: --interval is the shortest wait recorded, e.g. 10us"
                       : absl::StrCat("-e ", flags.hook_event,
                                      ": --interval is the mean bytes between samples, e.g. "
                                      "512k (1 = every allocation)"));
    }
  } else if (args.Has("--interval")) {
    absl::StatusOr<PerfPeriod> p = ParseIntervalFlag(args.Value("--interval"));
    if (!p.ok()) return WithExitCode(p.status(), kRecordUsageError);
    flags.period = *p;
  }
  if (args.Has("--frequency")) {
    absl::StatusOr<PerfPeriod> p = ParseFrequencyFlag(args.Value("--frequency"));
    if (!p.ok()) return WithExitCode(p.status(), kRecordUsageError);
    flags.period = *p;
  }
  if (args.Has("--file")) {
    flags.file = args.Value("--file");
    if (flags.file.empty()) return Usage("empty --file");
  }
  flags.threads = args.Has("--threads");
  if (args.Has("--unwind")) {
    const std::string unwind = args.Value("--unwind");
    if (unwind == "fp") {
      flags.unwind = AttachUnwind::kFramePointers;
    } else if (unwind == "dwarf") {
      flags.unwind = AttachUnwind::kDwarf;
    } else if (unwind == "auto") {
      flags.unwind = AttachUnwind::kAuto;
    } else {
      return Usage(absl::StrCat("--unwind '", unwind, "': use fp, dwarf or auto"));
    }
  }
  if (args.Has("--stack-size")) {
    absl::StatusOr<int64_t> size = ParseSizeFlag("--stack-size", args.Value("--stack-size"));
    if (!size.ok()) return WithExitCode(size.status(), kRecordUsageError);
    if (*size < kMinAttachStackBytes || *size > kMaxAttachStackBytes) {
      return Usage(absl::StrCat("--stack-size ", args.Value("--stack-size"), ": use ",
                                kMinAttachStackBytes, " to ", kMaxAttachStackBytes,
                                " bytes (the kernel copies at most 64 KiB - 8)"));
    }
    // The kernel wants a multiple of 8: round down.
    flags.stack_bytes = static_cast<uint32_t>(*size) & ~7u;
    if (flags.unwind == AttachUnwind::kFramePointers) {
      return Usage("--stack-size is for --unwind dwarf or auto; fp copies no stack");
    }
  }
  flags.includes = args.Values("--include");
  flags.excludes = args.Values("--exclude");
  flags.transforms_path = args.Value("--transforms");
  flags.title = args.Value("--title");
  if (args.Has("--minwidth")) {
    // The same check as convert's and diff's (a NaN here once made a page
    // whose JSON said "minwidth":nan and did not load).
    absl::StatusOr<double> m = ParsePercentFlag("--minwidth", args.Value("--minwidth"));
    if (!m.ok()) return WithExitCode(m.status(), kRecordUsageError);
    flags.minwidth = *m;
  }
  flags.inverted = args.Has("--inverted");
  flags.reverse = args.Has("--reverse");
  if (args.Has("--format")) {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(args.Value("--format"));
    if (!format.ok()) return WithExitCode(format.status(), kRecordUsageError);
    flags.format = *format;
  }
  flags.quiet = args.Has("--quiet");
  if (args.Has("--name")) {
    flags.name_pattern = args.Value("--name");
    if (flags.name_pattern.empty()) return Usage("empty --name pattern");
  }
  if (args.Has("--container")) {
    flags.container = args.Value("--container");
    if (flags.container.empty()) return Usage("empty --container; give a name or ID (docker ps)");
  }
  flags.runtime = args.Value("--runtime", "docker");
  if (flags.runtime != "docker" && flags.runtime != "podman") {
    return Usage(absl::StrCat("unknown --runtime '", flags.runtime,
                              "': expected docker or podman"));
  }
  flags.all_processes = args.Has("--all");
  if ((flags.all_processes || args.Has("--runtime")) && flags.container.empty()) {
    return Usage("--all and --runtime go with --container NAME|ID");
  }
  if (args.saw_dashdash) {
    flags.command.assign(args.positional.begin() + static_cast<ptrdiff_t>(args.dashdash),
                         args.positional.end());
    if (flags.command.empty()) return Usage("nothing after --; give the command to launch");
  }
  for (size_t i = 0; i < args.dashdash; ++i) {
    const std::string& arg = args.positional[i];
    absl::StatusOr<pid_t> pid = ParsePidArg(arg);
    if (!pid.ok()) {
      return Usage(absl::StrCat("'", arg,
                                "' is not a PID; give a process id, --name REGEX, or -- COMMAND"));
    }
    if (flags.pid != 0) return Usage("more than one PID; profile one process at a time");
    flags.pid = *pid;
  }
  if (flags.help) return flags;
  int targets = (flags.pid != 0) + !flags.name_pattern.empty() + !flags.command.empty() +
                !flags.container.empty();
  if (targets == 0) {
    return Usage("no target; give a PID, --name REGEX, --container NAME, or -- COMMAND");
  }
  if (targets > 1) {
    return Usage("give only one of PID, --name REGEX, --container NAME, -- COMMAND");
  }
  absl::Status continuous = ParseContinuousFlags(args, &flags);
  if (!continuous.ok()) return continuous;
  if (!flags.hook_event.empty()) {
    if (flags.command.empty()) {
      return Usage(absl::StrCat(
          "-e ", flags.hook_event,
          " needs hooks inside the process from its start, which a running process does not "
          "have: launch it with flamekit record -e ", flags.hook_event,
          " -- COMMAND (or LD_PRELOAD=libflamekit_agent.so FLAMEKIT_EVENT=", flags.hook_event,
          "), or build it with //include/flamekit/hooks:interpose and the embedded "
          "profiler (ProfilerOptions::event)"));
    }
    if (args.Has("--frequency")) {
      return Usage(absl::StrCat("-e ", flags.hook_event, " takes --interval, not --frequency"));
    }
    if (args.Has("--duration")) {
      return Usage(absl::StrCat("-e ", flags.hook_event,
                                ": the profile is written when COMMAND exits; drop --duration"));
    }
    return flags;
  }
  absl::StatusOr<ResolvedPerfPeriod> resolved = ResolvePeriod(flags.event, flags.period);
  if (!resolved.ok()) return WithExitCode(resolved.status(), kRecordUsageError);
  return flags;
}

AttachOptions AttachOptionsFromFlags(const RecordFlags& flags, pid_t pid) {
  AttachOptions options;
  options.pid = pid;
  options.event = flags.event;
  options.period = flags.period;
  options.duration = flags.duration;
  options.split_threads = flags.threads;
  options.ring_pages = flags.ring_pages;
  options.unwind = flags.unwind;
  options.stack_bytes = flags.stack_bytes;
  return options;
}

std::vector<std::pair<std::string, uint64_t>> HottestFunctions(const Profile& profile,
                                                               size_t n) {
  absl::flat_hash_map<FrameId, uint64_t> self;
  profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
    if (!frames.empty()) self[frames.back()] += count;
  });
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& [id, count] : self) out.emplace_back(profile.frame(id).name, count);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (out.size() > n) out.resize(n);
  return out;
}

Command RecordCommand() { return Self(); }

bool IsHookEvent(absl::string_view event) {
  return event == "alloc" || event == "live" || event == "lock";
}

bool IsProfilerShForm(absl::Span<const std::string> argv) {
  if (argv.empty()) return false;
  const std::string& first = argv[0];
  if (!first.empty() && std::all_of(first.begin(), first.end(),
                                    [](char c) { return absl::ascii_isdigit(c); })) {
    return true;
  }
  for (const FlagSpec& spec : Self().flags) {
    for (const char* option : {spec.name, spec.short_name}) {
      if (option[0] == '\0') continue;
      if (first == option || absl::StartsWith(first, std::string(option) + "=")) return true;
    }
  }
  return false;
}

int RunProfilerShForm(absl::Span<const std::string> argv, CommandIo& io) {
  return RunCommand(Self(), argv, io);
}

}  // namespace cli
}  // namespace flamekit
