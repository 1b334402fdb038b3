// SPDX-License-Identifier: Apache-2.0
// `flamekit record --continuous --push URL`: flags and the window loop
// (contract in record_continuous.h).
#include "examples/cli/record_continuous.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "examples/cli/container_target.h"
#include "examples/cli/flags.h"
#include "examples/cli/input.h"
#include "examples/cli/record_command.h"
#include "flamekit/attach/attach.h"
#include "flamekit/attach/process_build_id.h"
#include "flamekit/attach/target_symbols.h"
#include "flamekit/env/doctor.h"
#include "flamekit/render/pprof.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/pyroscope_push.h"

namespace flamekit {
namespace cli {
namespace {

absl::Status Usage(absl::string_view message) {
  return WithExitCode(absl::InvalidArgumentError(message), kRecordUsageError);
}

bool ValidLabelKey(absl::string_view key) { return ValidPushLabelKey(key); }
bool ValidLabelValue(absl::string_view value) { return ValidPushLabelValue(value); }

// An application name Pyroscope accepts, from the target's comm.
std::string AppName(pid_t pid) {
  std::string comm(absl::StripTrailingAsciiWhitespace(
      env_internal::ReadFile(absl::StrCat("/proc/", pid, "/comm")).value_or("")));
  std::string app;
  for (char c : comm) app += (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-') ? c : '_';
  return app.empty() ? "flamekit" : app;
}

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return std::string();
  return buf;
}

// Lends one SymbolizerAttachSymbols to each window's session, so the
// target's ELF files, symbol tables and .eh_frame rules are read once, not
// once a window (under ASan that reread took ~1 s a window). Windows run
// one after another and a session makes these calls from its own two
// threads as it would on the owner itself, so plain forwarding is enough.
class LentSymbols : public AttachSymbols {
 public:
  explicit LentSymbols(AttachSymbols* owner) : owner_(owner) {}
  Name Lookup(uint64_t address, bool kernel) override { return owner_->Lookup(address, kernel); }
  void OnMmap(const PerfMmapRecord& record) override { owner_->OnMmap(record); }
  void OnExec() override { owner_->OnExec(); }
  void Warm(bool kernel_frames) override { owner_->Warm(kernel_frames); }
  std::optional<uint32_t> FramelessReturnSlot(uint64_t pc) override {
    return owner_->FramelessReturnSlot(pc);
  }
  bool IsCode(uint64_t address) override { return owner_->IsCode(address); }
  void ForgetFrameRules() override { owner_->ForgetFrameRules(); }
  const CfiTable* FrameRules() override { return owner_->FrameRules(); }
  void NoteFrameMmap(const PerfMmapRecord& record) override { owner_->NoteFrameMmap(record); }
  bool WantFrameRulesAt(uint64_t pc) override { return owner_->WantFrameRulesAt(pc); }

 private:
  AttachSymbols* owner_;
};

std::string LabelText(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) absl::StrAppend(&out, out.empty() ? "" : ",", k, "=", v);
  return out;
}

}  // namespace

absl::Status ParseContinuousFlags(const ParsedArgs& args, RecordFlags* flags) {
  ContinuousFlags& c = flags->continuous;
  c.enabled = args.Has("--continuous");
  for (const char* flag : {"--every", "--push", "--label", "--app"}) {
    if (args.Has(flag) && !c.enabled) {
      return Usage(absl::StrCat(flag, " goes with --continuous (record --continuous --every 10s "
                                      "--push URL PID)"));
    }
  }
  if (!c.enabled) return absl::OkStatus();
  if (!args.Has("--push")) {
    return Usage("--continuous needs --push URL, the Pyroscope server that takes the windows "
                 "(e.g. --push http://127.0.0.1:4040)");
  }
  c.push_url = args.Value("--push");
  // A path is a prefix (Pyroscope behind a reverse proxy); a query,
  // fragment or other scheme is refused here, before anything attaches.
  absl::StatusOr<ParsedUrl> url = ParsePushUrl(c.push_url);
  if (!url.ok()) return Usage(absl::StrCat("--push: ", url.status().message()));
  if (args.Has("--every")) {
    DurationRange range;
    range.min = absl::Seconds(1);
    absl::StatusOr<absl::Duration> every =
        ParseDurationFlag("--every", args.Value("--every"), range);
    if (!every.ok()) return WithExitCode(every.status(), kRecordUsageError);
    if (*every > absl::Hours(1)) return Usage("--every: at most 1h (one window's profile)");
    c.every = *every;
  }
  if (args.Has("--app")) {
    c.app = args.Value("--app");
    if (!ValidLabelValue(c.app) || c.app.find_first_of(" \t") != std::string::npos) {
      return Usage(absl::StrCat("--app '", c.app, "': give a name without spaces or , = { }"));
    }
  }
  for (const std::string& label : args.Values("--label")) {
    size_t eq = label.find('=');
    std::string key = label.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : label.substr(eq + 1);
    if (eq == std::string::npos || !ValidLabelKey(key) || !ValidLabelValue(value)) {
      return Usage(absl::StrCat("--label '", label,
                                "': use key=value, the key made of letters, digits, _ and . "
                                "(not starting with a digit), the value non-empty without , = { }"));
    }
    c.labels[key] = value;
  }
  if (args.Has("--file") || args.Has("--format")) {
    return Usage("--continuous sends each window to --push as pprof and writes no file; drop "
                 "-f/--format (or record once without --continuous)");
  }
  if (!flags->command.empty() || !flags->hook_event.empty()) {
    return Usage("--continuous attaches to a running process: give a PID, --name REGEX or "
                 "--container NAME, not -- COMMAND or -e alloc|live|lock");
  }
  if (flags->all_processes) {
    return Usage("--continuous follows the container's main process only; drop --all");
  }
  return absl::OkStatus();
}

int RunContinuousRecord(const RecordFlags& flags, pid_t pid, absl::string_view container_id,
                        const std::atomic<bool>* stop, CommandIo& io) {
  std::ostream& err = io.err;
  auto Fail = [&err](const absl::Status& status) {
    err << "flamekit record: " << status.message() << "\n";
    return ExitCodeOf(status);
  };
  const ContinuousFlags& c = flags.continuous;
  {
    std::optional<std::string> self_status = env_internal::ReadFile("/proc/self/status");
    absl::StatusOr<int> paranoid = PerfEventParanoid();
    absl::Status may = CheckMayProfile(
        pid, geteuid(), self_status.has_value() ? ParseCapEff(*self_status) : std::nullopt,
        env_internal::ReadFile(absl::StrCat("/proc/", pid, "/status")).value_or(""),
        paranoid.ok() ? std::optional<int>(*paranoid) : std::nullopt);
    if (!may.ok()) return Fail(may);
  }
  absl::StatusOr<TransformList> transforms =
      BuildTransformList(flags.transforms_path, flags.includes, flags.excludes);
  if (!transforms.ok()) return Fail(WithExitCode(transforms.status(), kRecordUsageError));

  // Labels: ours first, the user's --label overrides any of them.
  PushOptions push;
  push.url = c.push_url;
  push.app = c.app.empty() ? AppName(pid) : c.app;
  std::string host = HostName();
  if (ValidLabelValue(host)) push.labels["host"] = host;
  push.labels["pid"] = absl::StrCat(pid);
  std::string build_id = ProcessBuildId(pid);
  if (!build_id.empty()) push.labels["build_id"] = build_id;
  std::string container(container_id);
  if (container.empty()) {
    container = ContainerIdFromCgroup(
        env_internal::ReadFile(absl::StrCat("/proc/", pid, "/cgroup")).value_or(""));
  }
  if (!container.empty()) push.labels["container"] = container.substr(0, 12);
  for (const auto& [k, v] : c.labels) push.labels[k] = v;
  push.max_queue = kContinuousMaxQueue;
  push.max_queue_bytes = kContinuousMaxQueueBytes;
  // One attempt may take at most a window's length (and 5 s): a slow
  // server then costs dropped windows, never a growing backlog.
  push.timeout = std::min(absl::Seconds(5), c.every);
  push.backoff = std::min(absl::Milliseconds(500), c.every / 4);
  absl::StatusOr<std::unique_ptr<ProfilePusher>> pusher = ProfilePusher::Start(push);
  if (!pusher.ok()) {
    return Fail(WithExitCode(pusher.status(), pusher.status().code() ==
                                                      absl::StatusCode::kInvalidArgument
                                                  ? kRecordUsageError
                                                  : kRecordInternalError));
  }
  if (!flags.quiet) {
    err << "flamekit: pushing pid " << pid << " to " << c.push_url << " as " << push.app << "{"
        << LabelText(push.labels) << "} every " << absl::FormatDuration(c.every)
        << "; Ctrl-C to stop\n"
        << std::flush;
  }

  const absl::Time start = absl::Now();
  const absl::Time end = flags.duration == absl::InfiniteDuration()
                             ? absl::InfiniteFuture()
                             : start + flags.duration;
  uint64_t windows = 0, samples = 0, lost = 0;
  // Time inside windows: the rest is the gap while a window is encoded and
  // the next one's events are opened.
  absl::Duration covered;
  std::string stopped = "stopped";
  absl::Status failure;
  absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> symbols =
      SymbolizerAttachSymbols::ForProcess(pid);
  if (!symbols.ok()) {
    absl::Status st = symbols.status();
    if (st.code() == absl::StatusCode::kNotFound) {
      st = absl::NotFoundError(absl::StrCat("no process ", pid,
                                            "; check the PID with `ps` or use --name REGEX"));
    }
    return Fail(st);
  }
  while (!stop->load(std::memory_order_relaxed)) {
    if (absl::Now() >= end) {
      stopped = "duration reached";
      break;
    }
    // One attach session per window: each window's profile starts empty.
    AttachOptions options = AttachOptionsFromFlags(flags, pid);
    options.duration = std::min(c.every, end - absl::Now());
    options.stop = stop;
    absl::StatusOr<std::unique_ptr<AttachSession>> session =
        AttachSession::Create(options, std::make_unique<LentSymbols>(symbols->get()));
    if (!session.ok()) {
      if (windows > 0 && kill(pid, 0) != 0) {
        stopped = "target exited";
      } else {
        failure = session.status();
      }
      break;
    }
    const absl::Time from = absl::Now();
    absl::Status ran = (*session)->Run();
    const absl::Time until = absl::Now();
    if (!ran.ok()) {
      failure = ran;
      break;
    }
    const AttachProgress& stats = (*session)->stats();
    samples += stats.samples;
    lost += stats.lost_samples;
    covered += stats.elapsed;
    Profile profile = (*session)->TakeProfile();
    if (!transforms->empty()) profile = ApplyTransforms(profile, *transforms);
    absl::StatusOr<std::string> gz = RenderPprof(profile);
    if (gz.ok()) {
      ++windows;
      // Never waits: a full queue drops the window (counted by the pusher).
      (*pusher)->Offer(std::move(*gz), from, until);
    } else {
      err << "flamekit: a window could not be encoded (" << gz.status().message()
          << "); skipped\n";
    }
    if (stats.stop_reason == AttachStopReason::kTargetExited) {
      stopped = "target exited";
      break;
    }
  }
  // The last window gets at most one attempt's time to go out.
  PushStats s = (*pusher)->Stop(push.timeout);
  if (!failure.ok() && windows == 0) return Fail(failure);
  if (!flags.quiet) {
    err << "flamekit: " << stopped << " after "
        << absl::StrFormat("%.1fs", absl::ToDoubleSeconds(absl::Now() - start)) << ": "
        << windows << " windows covering "
        << absl::StrFormat("%.1fs", absl::ToDoubleSeconds(covered)) << ", " << samples
        << " samples (" << lost << " lost); pushed "
        << s.sent_windows << ", dropped " << s.dropped_windows << ", failed "
        << s.failed_windows << "\n";
    if (!failure.ok()) err << "flamekit: profiling stopped: " << failure.message() << "\n";
    if (!s.last_error.empty() && s.sent_windows < windows) {
      err << "flamekit: last push error: " << s.last_error << "\n";
    }
  }
  if (windows > 0 && s.sent_windows == 0) {
    err << "flamekit record: no window reached " << c.push_url
        << "; check that the server runs and takes /ingest\n";
    return kRecordPushFailed;
  }
  return failure.ok() ? kRecordOk : ExitCodeOf(failure);
}

}  // namespace cli
}  // namespace flamekit
