// SPDX-License-Identifier: Apache-2.0
// `flamekit record` after parsing: find or launch the target, check the
// output before spending time on a capture, attach, capture, write, and
// print the summary. Main thread only (SIGINT/SIGTERM handlers while it
// runs, restored after).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "examples/cli/container_target.h"
#include "examples/cli/input.h"
#include "examples/cli/output.h"
#include "examples/cli/record_command.h"
#include "flamekit/attach/attach.h"
#include "flamekit/attach/process_finder.h"
#include "flamekit/attach/target_symbols.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/base/human_units.h"
#include "flamekit/env/doctor.h"

namespace flamekit {
namespace cli {
namespace {

std::atomic<int> g_record_signals{0};
std::atomic<bool> g_record_stop{false};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

// First SIGINT/SIGTERM: stop and write. Second: leave now, writing nothing
// (the output is written to a temporary name and renamed, so no
// half-written profile is left). Only atomics, write(2) and _exit(2).
void RecordSignalHandler(int) {
  int n = g_record_signals.fetch_add(1, std::memory_order_relaxed) + 1;
  g_record_stop.store(true, std::memory_order_relaxed);
  if (n >= 2) {
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

std::string FormatSeconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

std::string DefaultOutputPath(pid_t pid) {
  return absl::StrCat("flame-", pid, "-",
                      absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::LocalTimeZone()),
                      ".html");
}

// Checks, before the capture, that `path` can be created: its directory
// exists and is writable, and the path is not a directory.
absl::Status CheckOutputPath(absl::string_view path) {
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
  // access() does not know every filesystem (root may "write" to /proc):
  // create the temporary file the writer will use, and remove it.
  absl::StatusOr<AtomicFileWriter> probe = AtomicFileWriter::Open(p);
  if (!probe.ok()) {
    // ENOENT in a directory that exists: a filesystem such as /proc or
    // /sys that takes no new files. Other errors (full disk, read-only)
    // already say what to do.
    if (absl::StrContains(probe.status().message(), "does not exist")) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot write ", p, ": ", dir, " takes no new files (a special filesystem such "
          "as /proc or /sys); choose another -f"));
    }
    return probe.status();
  }
  return absl::OkStatus();
}

RenderOptions RecordRenderOptions(const RecordFlags& flags) {
  RenderOptions options;
  options.title = flags.title;
  options.minwidth = flags.minwidth;
  options.inverted = flags.inverted;
  options.reverse = flags.reverse;
  options.format = flags.format;
  return options;
}

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
    if (pid < 0) return WithExitCode(absl::ErrnoToStatus(errno, "fork"), kRecordLaunchFailed);
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

void PrintProgress(std::ostream& err, const AttachProgress& p) {
  std::string line = absl::StrCat("\rflamekit: ", FormatSeconds(p.elapsed));
  if (p.duration != absl::InfiniteDuration()) absl::StrAppend(&line, "/", FormatSeconds(p.duration));
  absl::StrAppend(&line, "  samples ", p.samples, "  lost ", p.lost_samples, "  threads ",
                  p.threads_now, "   ");
  err << line << std::flush;
}

}  // namespace

absl::Status CheckMayProfile(pid_t pid, uid_t self_euid, std::optional<uint64_t> self_caps,
                             absl::string_view target_status, std::optional<int> paranoid) {
  std::optional<std::string> uids = StatusField(target_status, "Uid");
  if (!uids.has_value()) return absl::OkStatus();
  if (self_euid == 0 || (self_caps.has_value() && (*self_caps >> kCapSysPtrace) & 1)) {
    return absl::OkStatus();
  }
  // Uid: real, effective, saved, filesystem. The kernel's ptrace check
  // (which perf_event_open makes for another process) wants ours to match
  // the first three.
  std::vector<std::string> ids = absl::StrSplit(*uids, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  for (size_t i = 0; i < ids.size() && i < 3; ++i) {
    uid_t uid = 0;
    if (!absl::SimpleAtoi(ids[i], &uid) || uid == self_euid) continue;
    return absl::PermissionDeniedError(absl::StrCat(
        "pid ", pid, " runs as uid ", uid, " and flamekit as uid ", self_euid,
        ": profiling another user's process needs CAP_SYS_PTRACE or root (run flamekit as "
        "that user, with sudo, or after setcap cap_sys_ptrace,cap_perfmon+ep on it); ",
        paranoid.has_value() ? absl::StrCat("perf_event_paranoid is ", *paranoid, ", which ")
                             : std::string("perf_event_paranoid "),
        "is not the cause: lowering it does not help, nor does CAP_PERFMON alone"));
  }
  return absl::OkStatus();
}

std::string FormatRecordSummary(const AttachProgress& stats, const Profile& profile,
                                int child_status, absl::string_view path, uint64_t size) {
  // Threads: those that got samples, of those followed (when several).
  const uint64_t sampled = profile.metadata().threads;
  std::string threads = absl::StrCat(sampled, sampled == 1 ? " thread" : " threads");
  if (stats.threads_followed > 1) {
    absl::StrAppend(&threads, " sampled of ", stats.threads_followed, " followed");
  }
  std::string summary = absl::StrCat(
      "flamekit: ", AttachStopReasonName(stats.stop_reason), " after ",
      FormatSeconds(stats.elapsed), ": ", stats.samples, " samples, ", stats.lost_samples,
      " lost, ", threads);
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
  if (stats.rule_walks > 0) {
    // How the .eh_frame walk did: the stacks it could not finish are in the
    // profile under [truncated] (raise --stack-size if many are).
    absl::StrAppend(&summary, "stacks: ", stats.rule_walks, " walked by .eh_frame rules (",
                    stats.rule_walks_complete, " to the outermost frame), ", stats.chain_walks,
                    " by frame pointers\n");
  }
  // What this machine could not give (e.g. -e wall's off-CPU stacks).
  if (!stats.note.empty()) absl::StrAppend(&summary, "note: ", stats.note, "\n");
  const double seconds = absl::ToDoubleSeconds(stats.elapsed);
  if (stats.lost_samples > 0 && seconds > 0) {
    // What this machine kept up with: samples written per second per
    // sampled thread. Ask for about half of it so bursts fit.
    const double per_thread =
        static_cast<double>(stats.samples) / seconds / static_cast<double>(sampled ? sampled : 1);
    uint64_t suggest = static_cast<uint64_t>(per_thread / 2);
    uint64_t unit = 1;  // keep two significant digits: 18962 -> 18000
    while (suggest / unit >= 100) unit *= 10;
    suggest = std::max<uint64_t>(1, suggest / unit * unit);
    absl::StrAppend(
        &summary, absl::StrFormat("note: %d of %d samples were lost (%.1f%%): this machine "
                                  "sustained %.0f samples/s per thread; use -F %d or lower "
                                  "(or -i %s)\n",
                                  stats.lost_samples, stats.samples + stats.lost_samples,
                                  100.0 * static_cast<double>(stats.lost_samples) /
                                      static_cast<double>(stats.samples + stats.lost_samples),
                                  per_thread, suggest,
                                  absl::FormatDuration(absl::Microseconds(std::ceil(
                                      1e6 / static_cast<double>(suggest))))));
  }
  uint64_t total = profile.total_samples();
  std::vector<std::pair<std::string, uint64_t>> hot = HottestFunctions(profile, 5);
  if (!hot.empty()) absl::StrAppend(&summary, "hottest functions (self):\n");
  for (const auto& [name, count] : hot) {
    absl::StrAppend(&summary,
                    absl::StrFormat("  %5.1f%%  %s\n", total ? 100.0 * count / total : 0.0,
                                    name.size() > 100 ? name.substr(0, 100) + "..." : name));
  }
  absl::StrAppend(&summary, "wrote ", path, " (", HumanBytes(size), ")\n");
  if (stats.samples == 0) {
    absl::StrAppend(&summary,
                    "note: no samples: the target used no CPU for this event while attached\n");
  }
  return summary;
}

int RunRecord(const RecordFlags& flags, CommandIo& io) {
  if (!flags.hook_event.empty()) return RunHookRecord(flags, io);
  std::ostream& err = io.err;
  auto Fail = [&err](const absl::Status& status) {
    err << "flamekit record: " << status.message()
        << SeccompRefusalHint(status, env_internal::ReadFile("/proc/self/status").value_or(""))
        << "\n";
    return ExitCodeOf(status);
  };
  ScopedRecordSignals signals;
  // One perf event (one descriptor) per thread: allow as many descriptors
  // as the hard limit does, as perf does.
  rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  // 1. The target.
  std::optional<LaunchedChild> child;
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
  // --container: its main process (and, for --all, the others: see step 4).
  std::optional<ContainerTarget> container;
  if (!flags.container.empty()) {
    absl::StatusOr<ContainerTarget> found = ResolveContainer(flags.container, flags.runtime);
    if (!found.ok()) {
      return Fail(WithExitCode(found.status(), found.status().code() ==
                                                       absl::StatusCode::kInvalidArgument
                                                   ? kRecordUsageError
                                                   : kRecordNoProcess));
    }
    container = std::move(*found);
    pid = container->main_pid;
    if (!flags.quiet) {
      err << "flamekit: container " << flags.container << " (" << container->id.substr(0, 12)
          << ", found by " << container->found_by << "): main process is pid " << pid
          << " on this host, " << container->pids.size() << " process"
          << (container->pids.size() == 1 ? "" : "es") << " in its cgroup\n";
    }
  }

  if (flags.continuous.enabled) {  // windows pushed, no file (record_continuous.cc)
    return RunContinuousRecord(flags, pid, container.has_value() ? container->id : "",
                               &g_record_stop, io);
  }

  // 2. The output, checked before spending time on a capture. (For a
  // launched command the PID is not known yet; the default name is made
  // after the fork.)
  const RenderOptions render = RecordRenderOptions(flags);
  absl::StatusOr<TransformList> transforms =
      BuildTransformList(flags.transforms_path, flags.includes, flags.excludes);
  auto check_output = [&](const std::string& path) -> absl::Status {
    absl::Status s = CheckOutputPath(path);
    if (s.ok()) s = CheckOutputFormat(path, /*diff=*/false, render);
    if (s.ok()) s = transforms.status();
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
    absl::StatusOr<LaunchedChild> forked = LaunchedChild::Fork(flags.command);
    if (!forked.ok()) return Fail(forked.status());
    child.emplace(std::move(*forked));
    pid = child->pid();
  }
  std::string path = flags.file.empty() ? DefaultOutputPath(pid) : flags.file;
  if (flags.file.empty()) {
    absl::Status s = check_output(path);
    if (!s.ok()) return Fail(s);
  }

  // 3. Attach. Another user's process first: perf's own message would
  // blame perf_event_paranoid, which is not the cause then.
  if (!child.has_value()) {
    std::optional<std::string> self_status = env_internal::ReadFile("/proc/self/status");
    std::optional<std::string> target_status =
        env_internal::ReadFile(absl::StrCat("/proc/", pid, "/status"));
    absl::StatusOr<int> paranoid = PerfEventParanoid();
    absl::Status may = CheckMayProfile(
        pid, geteuid(), self_status.has_value() ? ParseCapEff(*self_status) : std::nullopt,
        target_status.value_or(""),
        paranoid.ok() ? std::optional<int>(*paranoid) : std::nullopt);
    if (!may.ok()) return Fail(may);
  }
  AttachOptions options = AttachOptionsFromFlags(flags, pid);
  options.stop = &g_record_stop;
  options.launch_mode = child.has_value();
  const bool progress = !flags.quiet && isatty(2);
  if (progress) {
    options.on_progress = [&err](const AttachProgress& p) { PrintProgress(err, p); };
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
                : absl::StrCat(", ", FormatSeconds(flags.duration)))
        << "; Ctrl-C to stop\n" << std::flush;
  }

  // --all: one more session per other process of the container, each run
  // on its own thread until the main one stops (duration, Ctrl-C, or the
  // main process exiting), then merged. A process that exits before its
  // events open is skipped and counted, as a thread would be.
  std::vector<std::unique_ptr<AttachSession>> others;
  std::atomic<bool> others_stop{false};
  uint32_t others_missed = 0;
  if (container.has_value() && flags.all_processes) {
    for (size_t i = 1; i < container->pids.size(); ++i) {
      AttachOptions o = options;
      o.pid = container->pids[i];
      o.stop = &others_stop;
      o.on_progress = nullptr;
      absl::StatusOr<std::unique_ptr<AttachSession>> s = AttachSession::Create(o, nullptr);
      absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> sym =
          s.ok() ? SymbolizerAttachSymbols::ForProcess(o.pid)
                 : absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>>(s.status());
      if (!sym.ok()) {
        ++others_missed;
        continue;
      }
      (*s)->set_symbols(std::move(*sym));
      others.push_back(std::move(*s));
    }
    if (!flags.quiet) {
      err << "flamekit: --all: " << others.size() + 1 << " processes of the container followed";
      if (others_missed > 0) err << ", " << others_missed << " exited or could not be opened";
      err << "\n";
    }
  }
  std::vector<std::thread> other_threads;
  std::vector<absl::Status> other_results(others.size());
  for (size_t i = 0; i < others.size(); ++i) {
    other_threads.emplace_back([&, i] { other_results[i] = others[i]->Run(); });
  }

  // 4. Capture.
  absl::Status ran = (*session)->Run();
  others_stop.store(true);
  for (std::thread& t : other_threads) t.join();
  if (progress) err << "\n";
  if (!ran.ok()) return Fail(ran);
  AttachProgress stats = (*session)->stats();
  Profile profile = (*session)->TakeProfile();
  for (size_t i = 0; i < others.size(); ++i) {
    if (!other_results[i].ok()) continue;  // its process went away: nothing to add
    const AttachProgress& s = others[i]->stats();
    stats.samples += s.samples;
    stats.lost_samples += s.lost_samples;
    stats.threads_followed += s.threads_followed;
    profile.Merge(others[i]->TakeProfile());
  }
  if (!flags.title.empty()) profile.metadata().title = flags.title;
  int child_status = child.has_value() ? child->TryReap() : -1;

  // 5. Write.
  if (!transforms->empty()) profile = ApplyTransforms(profile, *transforms);
  OutputOptions output;
  output.render = render;
  absl::Status written = WriteOutput(profile, path, output);
  if (!written.ok()) return Fail(WithExitCode(written, kRecordOutputError));
  if (!flags.quiet) {
    struct stat st;
    uint64_t size = stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    err << FormatRecordSummary(stats, profile, child_status, path, size) << std::flush;
  }
  return kRecordOk;
}

}  // namespace cli
}  // namespace flamekit
