// SPDX-License-Identifier: Apache-2.0
// File: record_cli.h
//
// The `flamekit record` and `flamekit list` commands as library code: the
// CLI's main (examples/cli) calls RunRecord()/RunList() with the arguments
// after the subcommand. The profiler.sh form `flamekit -d 30 -e cpu -f
// flame.html PID` is RunRecord() with the same arguments.
//
//   record [options] PID | --name REGEX | -- COMMAND [ARGS...]
//   list [PID]
//
// Each failure prints one message naming the fix and returns its own exit
// code (RecordExitCode). Output files are written through the RecordOutput
// hooks (render + transforms live in record_output.h, so this header pulls
// in neither mustache nor the renderers); the built-in writer handles
// .collapsed/.txt.
//
// Thread-safety: RunRecord() installs SIGINT/SIGTERM handlers for its
// duration (first signal: stop and write; a second one: abort at once,
// writing nothing) and restores the previous ones; call it from the main
// thread of a process that runs one command at a time. The handlers only
// store to lock-free atomics and call write(2)/_exit(2).
//
// Example:
//
//   int main(int argc, char** argv) {
//     return flamekit::RunRecord(argc - 1, argv + 1, flamekit::DefaultRecordOutput());
//   }

#ifndef FLAMEKIT_ATTACH_RECORD_CLI_H_
#define FLAMEKIT_ATTACH_RECORD_CLI_H_

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <memory>
#include <ostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/attach/attach.h"
#include "flamekit/attach/process_finder.h"
#include "flamekit/attach/target_symbols.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/profile/profile.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {

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
  kRecordAborted = 130,          // a second Ctrl-C
};

// RecordFlags
//
// The parsed command line of `record`.
struct RecordFlags {
  pid_t pid = 0;                       // PID given
  std::string name_pattern;            // --name REGEX
  std::vector<std::string> command;    // -- COMMAND ARGS...
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
  bool quiet = false;
  bool help = false;
  size_t ring_pages = AttachOptions().ring_pages;
};

// ParseRecordArgs()
//
// Parses `args` (the arguments after "record"; no program name).
// InvalidArgument, tagged kRecordUsageError, for anything malformed.
absl::StatusOr<RecordFlags> ParseRecordArgs(const std::vector<std::string>& args);

// ParseDurationFlag()
//
// "30" (seconds), "1.5", "30s", "500ms", "2m". Positive only.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

// RecordOutput
//
// How the record command checks and writes its output (see
// record_output.h for the full one with renderers and transforms).
struct RecordOutput {
  // Before the capture: is the output path's format known, are the
  // filters valid? (So a 30 s capture never ends in "unknown extension".)
  std::function<absl::Status(const RecordFlags&, absl::string_view path)> validate;
  // After it: apply --include/--exclude/--transforms to the profile.
  std::function<absl::Status(const RecordFlags&, Profile&)> transform;
  // Write the profile to `path` atomically.
  std::function<absl::Status(const RecordFlags&, const Profile&, absl::string_view path)> write;
};

// DefaultRecordOutput()
//
// The built-in output: collapsed text (.collapsed, .txt) only, no filters.
RecordOutput DefaultRecordOutput();

// RecordUsage()
//
// The help text of `record`.
std::string RecordUsage();

// RunRecord() / RunList()
//
// Run the commands with `args` = the arguments after the subcommand name.
// Messages, the progress line and the summary go to `err`; `--help` and
// the `list` table to `out`. The progress line is shown only when stderr
// is a terminal. The argc/argv forms use std::cout and std::cerr.
int RunRecord(const std::vector<std::string>& args, const RecordOutput& output,
              std::ostream& out, std::ostream& err);
int RunRecord(int argc, char** argv, const RecordOutput& output = DefaultRecordOutput());
int RunList(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int RunList(int argc, char** argv);

// Status helpers: a Status carrying the exit code it should end in, and
// the exit code of any Status (tagged or by its code and message).
absl::Status WithExitCode(absl::Status status, RecordExitCode code);
int ExitCodeOf(const absl::Status& status);

// HottestFunctions()
//
// The `n` leaf frames with the most samples (self time), hottest first,
// with their sample counts.
std::vector<std::pair<std::string, uint64_t>> HottestFunctions(const Profile& profile, size_t n);

// Implementation details follow.

namespace attach_internal {

inline constexpr char kExitCodePayload[] = "type.flamekit/exit_code";

inline std::atomic<int> g_record_signals{0};
inline std::atomic<bool> g_record_stop{false};

inline void RecordSignalHandler(int sig) {
  int n = g_record_signals.fetch_add(1, std::memory_order_relaxed) + 1;
  g_record_stop.store(true, std::memory_order_relaxed);
  (void)sig;
  if (n >= 2) {
    // Second Ctrl-C (or SIGTERM): leave now. The output is written to a temporary name
    // and renamed, so no half-written profile is left at the destination.
    static const char kMsg[] = "\nflamekit: aborted; no profile written\n";
    ssize_t ignored = write(2, kMsg, sizeof(kMsg) - 1);
    (void)ignored;
    _exit(kRecordAborted);
  }
}

// Installs the record handlers for SIGINT and SIGTERM, restores on scope exit.
class ScopedRecordSignals {
 public:
  ScopedRecordSignals() {
    g_record_signals.store(0);
    g_record_stop.store(false);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = RecordSignalHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~ScopedRecordSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  ScopedRecordSignals(const ScopedRecordSignals&) = delete;
  ScopedRecordSignals& operator=(const ScopedRecordSignals&) = delete;

 private:
  struct sigaction old_int_;
  struct sigaction old_term_;
};

inline absl::Status Usage(absl::string_view message) {
  return WithExitCode(absl::InvalidArgumentError(absl::StrCat(
                          message, "; see `flamekit record --help`")),
                      kRecordUsageError);
}

inline std::string HumanBytes(uint64_t bytes) {
  if (bytes < 10 * 1024) return absl::StrCat(bytes, " B");
  if (bytes < 10 * 1024 * 1024) return absl::StrCat(bytes / 1024, " KiB");
  return absl::StrCat(bytes / (1024 * 1024), " MiB");
}

inline std::string FormatSeconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

inline std::string DefaultOutputPath(pid_t pid) {
  return absl::StrCat("flame-", pid, "-",
                      absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::LocalTimeZone()),
                      ".html");
}

// Checks, before the capture, that `path` can be created: its directory
// exists and is writable, and the path is not a directory.
inline absl::Status CheckOutputPath(absl::string_view path) {
  std::string p(path);
  if (p.empty()) return absl::InvalidArgumentError("empty output path; give -f FILE");
  struct stat st;
  if (stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output path ", p, " is a directory; give a file name such as ", p, "/flame.html"));
  }
  size_t slash = p.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("cannot write ", p, ": directory ", dir,
                                            " does not exist; create it or choose another -f"));
  }
  if (access(dir.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot write ", p, ": directory ", dir,
        " is not writable by this user; choose another -f or fix its permissions"));
  }
  return absl::OkStatus();
}

inline void WriteCollapsedLine(const Profile& profile, absl::Span<const FrameId> frames,
                               uint64_t count, std::string* out) {
  for (size_t i = 0; i < frames.size(); ++i) {
    if (i > 0) out->push_back(';');
    const Frame& f = profile.frame(frames[i]);
    for (char c : f.name) out->push_back(c == ';' ? ':' : (c == '\n' ? ' ' : c));
    switch (f.kind) {
      case FrameKind::kKernel: out->append("_[k]"); break;
      case FrameKind::kJit: out->append("_[j]"); break;
      case FrameKind::kInlined: out->append("_[i]"); break;
      default: break;
    }
  }
  absl::StrAppend(out, " ", count, "\n");
}

inline bool EndsWithAny(absl::string_view path, std::initializer_list<absl::string_view> exts) {
  for (absl::string_view e : exts) {
    if (absl::EndsWith(path, e)) return true;
  }
  return false;
}

}  // namespace attach_internal

inline absl::Status WithExitCode(absl::Status status, RecordExitCode code) {
  if (status.ok()) return status;
  status.SetPayload(attach_internal::kExitCodePayload, absl::Cord(absl::StrCat(int{code})));
  return status;
}

inline int ExitCodeOf(const absl::Status& status) {
  if (status.ok()) return kRecordOk;
  if (auto tag = status.GetPayload(attach_internal::kExitCodePayload)) {
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

inline absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  auto bad = [&](absl::string_view why) {
    return attach_internal::Usage(absl::StrCat("bad duration '", text, "': ", why,
                                               "; give seconds such as 30, or 1.5, 500ms, 2m"));
  };
  if (t.empty()) return bad("empty");
  double seconds = 0;
  absl::Duration d;
  if (absl::SimpleAtod(t, &seconds)) {
    if (!(seconds > 0) || seconds > 1e7) return bad("must be a positive number of seconds");
    d = absl::Seconds(seconds);
  } else if (absl::ParseDuration(t, &d)) {
    if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) return bad("must be positive");
  } else {
    return bad("not a number of seconds");
  }
  if (d < absl::Milliseconds(10)) return bad("shorter than 10ms");
  return d;
}

inline std::string RecordUsage() {
  return R"(usage: flamekit record [options] PID
       flamekit record [options] --name REGEX
       flamekit record [options] -- COMMAND [ARGS...]
       flamekit [options] PID                      (profiler.sh style)

Profiles a running process with perf events; nothing is loaded into it.
  -d, --duration SECONDS   stop after this long (30, 1.5, 500ms, 2m);
                           default: until Ctrl-C or the target exits
  -e, --event EVENT        cpu (default), task-clock, page-faults,
                           context-switches, cycles, instructions,
                           cache-misses, branch-misses, ... (`flamekit list`)
  -i, --interval N         sampling period: 10ms, 500us, or a count of events
  -F, --frequency HZ       samples per second instead of an interval
  -f, --file PATH          output; format by extension (.html .svg .txt
                           .collapsed .pb.gz .pprof);
                           default flame-PID-TIMESTAMP.html
  -t, --threads            split stacks by thread
      --include REGEX      keep only stacks with a frame matching REGEX
      --exclude REGEX      drop stacks with a frame matching REGEX
      --transforms FILE    apply the transform list in FILE (JSON)
      --title TEXT         title of the flame graph
      --minwidth PERCENT   hide frames narrower than PERCENT of all samples
      --inverted           icicle graph (root at the top)
  -q, --quiet              no progress line and no summary
  -h, --help               this text
Ctrl-C stops and writes the profile; a second Ctrl-C aborts without writing.
With -- COMMAND, profiling ends when the command exits (or after -d, leaving
it running). Exit codes: 2 usage, 3 no such process, 4 permission, 5 perf
events unavailable, 6 no PMU, 7 --name matched none or several, 8 output,
9 resource limits, 10 command could not start, 130 aborted.
)";
}

inline absl::StatusOr<RecordFlags> ParseRecordArgs(const std::vector<std::string>& args) {
  using attach_internal::Usage;
  RecordFlags flags;
  std::optional<PerfPeriod> interval;
  std::optional<PerfPeriod> frequency;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--") {
      flags.command.assign(args.begin() + static_cast<ptrdiff_t>(i) + 1, args.end());
      if (flags.command.empty()) return Usage("nothing after --; give the command to launch");
      break;
    }
    std::string value;
    bool has_inline_value = false;
    if (absl::StartsWith(arg, "--")) {
      size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline_value = true;
      }
    }
    auto need = [&](absl::string_view name) -> absl::StatusOr<std::string> {
      if (has_inline_value) return value;
      if (i + 1 >= args.size()) return Usage(absl::StrCat(name, " needs a value"));
      return args[++i];
    };
    auto is = [&](absl::string_view s, absl::string_view l) { return arg == s || arg == l; };
    if (is("-h", "--help")) {
      flags.help = true;
    } else if (is("-d", "--duration")) {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--duration"));
      FLAMEKIT_ASSIGN_OR_RETURN(flags.duration, ParseDurationFlag(v));
    } else if (is("-e", "--event")) {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--event"));
      absl::StatusOr<PerfEventSpec> e = ParsePerfEvent(v);
      if (!e.ok()) return WithExitCode(e.status(), kRecordUsageError);
      flags.event = *e;
    } else if (is("-i", "--interval")) {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--interval"));
      absl::StatusOr<PerfPeriod> p = ParsePerfInterval(v);
      if (!p.ok()) return WithExitCode(p.status(), kRecordUsageError);
      interval = *p;
    } else if (is("-F", "--frequency")) {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--frequency"));
      absl::StatusOr<PerfPeriod> p = ParsePerfFrequency(v);
      if (!p.ok()) return WithExitCode(p.status(), kRecordUsageError);
      frequency = *p;
    } else if (is("-f", "--file")) {
      FLAMEKIT_ASSIGN_OR_RETURN(flags.file, need("--file"));
      if (flags.file.empty()) return Usage("empty --file");
    } else if (is("-t", "--threads")) {
      flags.threads = true;
    } else if (arg == "--include") {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--include"));
      flags.includes.push_back(v);
    } else if (arg == "--exclude") {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--exclude"));
      flags.excludes.push_back(v);
    } else if (arg == "--transforms") {
      FLAMEKIT_ASSIGN_OR_RETURN(flags.transforms_path, need("--transforms"));
    } else if (arg == "--title") {
      FLAMEKIT_ASSIGN_OR_RETURN(flags.title, need("--title"));
    } else if (arg == "--minwidth") {
      FLAMEKIT_ASSIGN_OR_RETURN(std::string v, need("--minwidth"));
      if (absl::EndsWith(v, "%")) v.pop_back();
      if (!absl::SimpleAtod(v, &flags.minwidth) || flags.minwidth < 0 || flags.minwidth > 100) {
        return Usage(absl::StrCat("bad --minwidth '", v, "': give a percentage from 0 to 100"));
      }
    } else if (arg == "--inverted") {
      flags.inverted = true;
    } else if (is("-q", "--quiet")) {
      flags.quiet = true;
    } else if (arg == "--name") {
      FLAMEKIT_ASSIGN_OR_RETURN(flags.name_pattern, need("--name"));
      if (flags.name_pattern.empty()) return Usage("empty --name pattern");
    } else if (arg.size() > 1 && arg[0] == '-') {
      return Usage(absl::StrCat("unknown option '", arg, "'"));
    } else {
      pid_t pid = 0;
      if (!absl::SimpleAtoi(arg, &pid) || pid <= 0) {
        return Usage(absl::StrCat("'", arg,
                                  "' is not a PID; give a process id, --name REGEX, or -- COMMAND"));
      }
      if (flags.pid != 0) return Usage("more than one PID; profile one process at a time");
      flags.pid = pid;
    }
  }
  if (flags.help) return flags;
  int targets = (flags.pid != 0) + !flags.name_pattern.empty() + !flags.command.empty();
  if (targets == 0) return Usage("no target; give a PID, --name REGEX, or -- COMMAND");
  if (targets > 1) return Usage("give only one of PID, --name REGEX, -- COMMAND");
  if (interval && frequency) return Usage("give --interval or --frequency, not both");
  if (interval) flags.period = *interval;
  if (frequency) flags.period = *frequency;
  absl::StatusOr<ResolvedPerfPeriod> resolved = ResolvePeriod(flags.event, flags.period);
  if (!resolved.ok()) return WithExitCode(resolved.status(), kRecordUsageError);
  return flags;
}

inline RecordOutput DefaultRecordOutput() {
  RecordOutput out;
  out.validate = [](const RecordFlags& flags, absl::string_view path) {
    if (!attach_internal::EndsWithAny(path, {".collapsed", ".txt"})) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot write ", path, ": this build writes only collapsed text; use a .collapsed "
          "or .txt file name"));
    }
    if (!flags.includes.empty() || !flags.excludes.empty() || !flags.transforms_path.empty()) {
      return absl::InvalidArgumentError(
          "this build has no --include/--exclude/--transforms; drop them");
    }
    return absl::OkStatus();
  };
  out.transform = [](const RecordFlags&, Profile&) { return absl::OkStatus(); };
  out.write = [](const RecordFlags&, const Profile& profile, absl::string_view path) {
    std::string text;
    for (size_t i : profile.SortedStackIndices()) {
      attach_internal::WriteCollapsedLine(profile, profile.stack(i), profile.stack_count_at(i),
                                          &text);
    }
    return WriteFileAtomically(path, text);
  };
  return out;
}

inline std::vector<std::pair<std::string, uint64_t>> HottestFunctions(const Profile& profile,
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

namespace attach_internal {

// A child forked for `-- COMMAND`, held before exec until Release().
class LaunchedChild {
 public:
  static absl::StatusOr<LaunchedChild> Fork(const std::vector<std::string>& command) {
    int go[2], err[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      return absl::ErrnoToStatus(errno, "pipe2");
    }
    std::vector<char*> argv;
    for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid < 0) {
      return WithExitCode(absl::ErrnoToStatus(errno, "fork"), kRecordLaunchFailed);
    }
    if (pid == 0) {
      close(go[1]);
      close(err[0]);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      char c;
      if (read(go[0], &c, 1) != 1) _exit(kRecordLaunchFailed);
      execvp(argv[0], argv.data());
      int e = errno;
      ssize_t ignored = write(err[1], &e, sizeof(e));
      (void)ignored;
      _exit(127);
    }
    close(go[0]);
    close(err[1]);
    LaunchedChild child;
    child.pid_ = pid;
    child.go_ = go[1];
    child.err_ = err[0];
    child.name_ = command[0];
    return child;
  }

  LaunchedChild() = default;
  LaunchedChild(LaunchedChild&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), go_(std::exchange(o.go_, -1)),
        err_(std::exchange(o.err_, -1)), name_(std::move(o.name_)) {}
  LaunchedChild& operator=(LaunchedChild&&) = delete;
  ~LaunchedChild() {
    if (go_ >= 0) close(go_);  // an unreleased child exits at once
    if (err_ >= 0) close(err_);
    if (pid_ > 0) waitpid(pid_, nullptr, WNOHANG);
  }

  pid_t pid() const { return pid_; }

  // Lets the child exec; returns its exec error, if any.
  absl::Status Release() {
    char c = 'x';
    if (write(go_, &c, 1) != 1) return absl::ErrnoToStatus(errno, "releasing the child");
    close(go_);
    go_ = -1;
    int e = 0;
    ssize_t n = read(err_, &e, sizeof(e));
    close(err_);
    err_ = -1;
    if (n == sizeof(e)) {
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return WithExitCode(
          absl::NotFoundError(absl::StrCat("cannot run '", name_, "': ", strerror(e),
                                           "; check the command name and PATH")),
          kRecordLaunchFailed);
    }
    return absl::OkStatus();
  }

  // Reaps the child if it has exited; its wait status, or -1 if running.
  int TryReap() {
    if (pid_ <= 0) return status_;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = status;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  int err_ = -1;
  int status_ = -1;
  std::string name_;
};

inline void PrintProgress(std::ostream& err, const AttachProgress& p) {
  std::string line = absl::StrCat("\rflamekit: ", FormatSeconds(p.elapsed));
  if (p.duration != absl::InfiniteDuration()) absl::StrAppend(&line, "/", FormatSeconds(p.duration));
  absl::StrAppend(&line, "  samples ", p.samples, "  lost ", p.lost_samples, "  threads ",
                  p.threads_now, "   ");
  err << line << std::flush;
}

inline int Fail(std::ostream& err, const absl::Status& status) {
  err << "flamekit record: " << status.message() << "\n";
  return ExitCodeOf(status);
}

}  // namespace attach_internal

inline int RunRecord(int argc, char** argv, const RecordOutput& output) {
  return RunRecord(std::vector<std::string>(argv, argv + argc), output, std::cout, std::cerr);
}

inline int RunRecord(const std::vector<std::string>& args, const RecordOutput& output,
                     std::ostream& out, std::ostream& err) {
  auto Fail = [&err](const absl::Status& status) { return attach_internal::Fail(err, status); };
  absl::StatusOr<RecordFlags> parsed = ParseRecordArgs(args);
  if (!parsed.ok()) return Fail(parsed.status());
  RecordFlags flags = *std::move(parsed);
  if (flags.help) {
    out << RecordUsage();
    return kRecordOk;
  }
  attach_internal::ScopedRecordSignals signals;
  // One perf event (one descriptor) per thread: allow as many descriptors
  // as the hard limit does, as perf does.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  // 1. The target.
  std::optional<attach_internal::LaunchedChild> child;
  pid_t pid = flags.pid;
  if (!flags.name_pattern.empty()) {
    absl::StatusOr<ProcessMatch> match = FindSingleProcess(flags.name_pattern);
    if (!match.ok()) {
      return Fail(WithExitCode(match.status(), match.status().code() ==
                                                       absl::StatusCode::kInvalidArgument
                                                   ? kRecordUsageError
                                                   : kRecordNameMatch));
    }
    pid = match->pid;
  }

  // 2. The output, checked before spending time on a capture. (For a
  // launched command the PID is not known yet; the default name is made
  // after the fork.)
  auto check_output = [&](const std::string& path) -> absl::Status {
    absl::Status s = attach_internal::CheckOutputPath(path);
    if (s.ok() && output.validate) s = output.validate(flags, path);
    if (!s.ok()) {
      return WithExitCode(s, s.code() == absl::StatusCode::kInvalidArgument &&
                                     !absl::StrContains(s.message(), path)
                                 ? kRecordUsageError
                                 : kRecordOutputError);
    }
    return s;
  };
  if (!flags.file.empty()) {
    absl::Status s = check_output(flags.file);
    if (!s.ok()) return Fail(s);
  }
  if (!flags.command.empty()) {
    absl::StatusOr<attach_internal::LaunchedChild> forked =
        attach_internal::LaunchedChild::Fork(flags.command);
    if (!forked.ok()) return Fail(forked.status());
    child.emplace(std::move(*forked));
    pid = child->pid();
  }
  std::string path = flags.file.empty() ? attach_internal::DefaultOutputPath(pid) : flags.file;
  if (flags.file.empty()) {
    absl::Status s = check_output(path);
    if (!s.ok()) return Fail(s);
  }

  // 3. Attach.
  AttachOptions options;
  options.pid = pid;
  options.event = flags.event;
  options.period = flags.period;
  options.duration = flags.duration;
  options.split_threads = flags.threads;
  options.ring_pages = flags.ring_pages;
  options.stop = &attach_internal::g_record_stop;
  options.launch_mode = child.has_value();
  const bool progress = !flags.quiet && isatty(2);
  if (progress) {
    options.on_progress = [&err](const AttachProgress& p) { attach_internal::PrintProgress(err, p); };
  }
  // Events first: a permission problem then gets perf's message (the
  // paranoid level and the capability that would allow it).
  absl::StatusOr<std::unique_ptr<AttachSession>> session = AttachSession::Create(options, nullptr);
  if (!session.ok()) return Fail(session.status());
  {
    absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> s =
        SymbolizerAttachSymbols::ForProcess(pid);
    if (!s.ok()) {
      absl::Status st = s.status();
      if (st.code() == absl::StatusCode::kNotFound) {
        st = absl::NotFoundError(absl::StrCat(
            "no process ", pid, "; check the PID with `ps` or use --name REGEX"));
      }
      return Fail(st);
    }
    (*session)->set_symbols(std::move(*s));
  }
  if (child.has_value()) {
    absl::Status released = child->Release();
    if (!released.ok()) return Fail(released);
  }
  if (!flags.quiet) {
    std::string what = child.has_value() ? absl::StrCat("'", flags.command[0], "' (pid ", pid, ")")
                                         : absl::StrCat("pid ", pid);
    err << "flamekit: profiling " << what << ", event " << flags.event.name
        << (flags.duration == absl::InfiniteDuration()
                ? std::string()
                : absl::StrCat(", ", attach_internal::FormatSeconds(flags.duration)))
        << "; Ctrl-C to stop\n" << std::flush;
  }

  // 4. Capture.
  absl::Status ran = (*session)->Run();
  if (progress) err << "\n";
  if (!ran.ok()) return Fail(ran);
  const AttachProgress stats = (*session)->stats();
  Profile profile = (*session)->TakeProfile();
  if (!flags.title.empty()) profile.metadata().title = flags.title;
  int child_status = child.has_value() ? child->TryReap() : -1;

  // 5. Write.
  if (output.transform) {
    absl::Status s = output.transform(flags, profile);
    if (!s.ok()) return Fail(WithExitCode(s, kRecordUsageError));
  }
  absl::Status written = output.write(flags, profile, path);
  if (!written.ok()) return Fail(WithExitCode(written, kRecordOutputError));
  if (!flags.quiet) {
    struct stat st;
    uint64_t size = stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    std::string summary = absl::StrCat(
        "flamekit: ", AttachStopReasonName(stats.stop_reason), " after ",
        attach_internal::FormatSeconds(stats.elapsed), ": ", stats.samples, " samples, ",
        stats.lost_samples, " lost, ", profile.metadata().threads, " threads");
    if (stats.threads_followed > 1) {
      absl::StrAppend(&summary, " (", stats.threads_followed, " followed)");
    }
    if (stats.threads_failed > 0) {
      absl::StrAppend(&summary, "; ", stats.threads_failed,
                      " threads could not be followed: ", stats.thread_error);
    }
    if (stats.throttles > 0) {
      absl::StrAppend(&summary, ", throttled ", stats.throttles,
                      " times by the kernel (use a longer --interval)");
    }
    if (child_status >= 0) {
      if (WIFEXITED(child_status)) {
        absl::StrAppend(&summary, "; command exited with status ", WEXITSTATUS(child_status));
      } else if (WIFSIGNALED(child_status)) {
        absl::StrAppend(&summary, "; command killed by signal ", WTERMSIG(child_status));
      }
    }
    absl::StrAppend(&summary, "\n");
    uint64_t total = profile.total_samples();
    std::vector<std::pair<std::string, uint64_t>> hot = HottestFunctions(profile, 5);
    if (!hot.empty()) absl::StrAppend(&summary, "hottest functions (self):\n");
    for (const auto& [name, count] : hot) {
      absl::StrAppend(&summary,
                      absl::StrFormat("  %5.1f%%  %s\n", total ? 100.0 * count / total : 0.0,
                                      name.size() > 100 ? name.substr(0, 100) + "..." : name));
    }
    absl::StrAppend(&summary, "wrote ", path, " (", attach_internal::HumanBytes(size), ")\n");
    if (stats.samples == 0) {
      absl::StrAppend(&summary,
                      "note: no samples: the target used no CPU for this event while attached\n");
    }
    err << summary << std::flush;
  }
  return kRecordOk;
}

inline int RunList(int argc, char** argv) {
  return RunList(std::vector<std::string>(argv, argv + argc), std::cout, std::cerr);
}

inline int RunList(const std::vector<std::string>& args, std::ostream& os, std::ostream& err) {
  pid_t pid = 0;
  for (const std::string& a : args) {
    if (a == "-h" || a == "--help") {
      os << "usage: flamekit list [PID]\n"
            "Shows the events this machine offers (tried on PID, or on flamekit itself)\n"
            "and why any are missing.\n";
      return kRecordOk;
    }
    if (pid != 0 || !absl::SimpleAtoi(a, &pid) || pid <= 0) {
      err << "flamekit list: '" << a << "' is not a PID; usage: flamekit list [PID]\n";
      return kRecordUsageError;
    }
  }
  if (pid != 0 && kill(pid, 0) != 0 && errno == ESRCH) {
    err << "flamekit list: no process " << pid << "; check the PID with `ps`\n";
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
  }
  if (available == 0) {
    absl::StrAppend(&out, "no perf events can be opened here; the embedded profiler's timer "
                          "engines (itimer, ctimer) still work\n");
  }
  os << out << std::flush;
  return kRecordOk;
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_RECORD_CLI_H_
