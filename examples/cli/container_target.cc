// SPDX-License-Identifier: Apache-2.0
// Resolving `record --container NAME|ID` to host PIDs (container_target.h).
#include "examples/cli/container_target.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "flamekit/base/proc_files.h"

namespace flamekit {
namespace cli {
namespace {

bool IsHex(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// What one runtime CLI run printed, and how it ended.
struct RunResult {
  bool not_installed = false;
  bool timed_out = false;
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv with stdout and stderr captured (each cut at
// kContainerInspectMaxBytes), killed after kContainerInspectTimeout.
absl::StatusOr<RunResult> RunCaptured(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return absl::ErrnoToStatus(errno, "pipe2");
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execvp(args[0], args.data());
    int e = errno;
    ssize_t ignored = write(exec_pipe[1], &e, sizeof(e));
    (void)ignored;
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_pipe[1]);
  RunResult result;
  int exec_errno = 0;
  if (read(exec_pipe[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno)) {
    result.not_installed = exec_errno == ENOENT;
  }
  close(exec_pipe[0]);
  const absl::Time deadline = absl::Now() + kContainerInspectTimeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      result.timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[1024];
      ssize_t got = read(fds[i].fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      size_t room = kContainerInspectMaxBytes - std::min(kContainerInspectMaxBytes,
                                                         sinks[i]->size());
      sinks[i]->append(buf, std::min(room, static_cast<size_t>(got)));
    }
  }
  for (pollfd& p : fds) {
    if (p.fd >= 0) close(p.fd);
  }
  if (result.timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// Host PIDs whose cgroup names container `id` (a full ID or a prefix).
// Returns the full ID found in *full_id.
std::vector<pid_t> PidsInContainer(absl::string_view id, std::string* full_id) {
  std::vector<pid_t> pids;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return pids;
  while (dirent* e = readdir(dir)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid <= 0) continue;
    absl::StatusOr<std::string> cgroup =
        ReadSmallFile(absl::StrCat("/proc/", pid, "/cgroup"), 64 * 1024);
    if (!cgroup.ok()) continue;  // exited meanwhile, or not ours to read
    std::string found = ContainerIdFromCgroup(*cgroup);
    if (found.empty() || !absl::StartsWith(found, id)) continue;
    if (full_id->empty()) *full_id = found;
    if (found != *full_id) continue;  // an ambiguous prefix: keep the first
    pids.push_back(pid);
  }
  closedir(dir);
  std::sort(pids.begin(), pids.end());
  return pids;
}

pid_t ParentOf(pid_t pid) {
  absl::StatusOr<std::string> status =
      ReadSmallFile(absl::StrCat("/proc/", pid, "/status"), 64 * 1024);
  if (!status.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::ConsumePrefix(&line, "PPid:")) {
      pid_t ppid = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &ppid)) return ppid;
    }
  }
  return 0;
}

}  // namespace

bool LooksLikeContainerId(absl::string_view text) {
  return text.size() >= 12 && text.size() <= 64 && IsHex(text);
}

std::string ContainerIdFromCgroup(absl::string_view cgroup_text) {
  for (absl::string_view line : absl::StrSplit(cgroup_text, '\n')) {
    // "4:memory:/docker/ID", "0::/system.slice/docker-ID.scope",
    // "0::/kubepods.slice/.../cri-containerd-ID.scope", ".../crio-ID.scope",
    // "3:cpu:/kubepods/burstable/podUID/ID".
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    colon = line.find(':', colon + 1);
    if (colon == absl::string_view::npos) continue;
    absl::string_view path = line.substr(colon + 1);
    std::vector<absl::string_view> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      absl::string_view part = *it;
      absl::ConsumeSuffix(&part, ".scope");
      for (absl::string_view prefix : {"docker-", "cri-containerd-", "crio-", "libpod-"}) {
        if (absl::ConsumePrefix(&part, prefix)) break;
      }
      if (part.size() == 64 && IsHex(part)) return std::string(part);
    }
  }
  return "";
}

absl::StatusOr<ContainerTarget> ParseInspectOutput(absl::string_view name,
                                                   absl::string_view output) {
  std::vector<absl::string_view> words =
      absl::StrSplit(absl::StripAsciiWhitespace(output), absl::ByAnyChar(" \t\n"),
                     absl::SkipEmpty());
  ContainerTarget t;
  t.found_by = "inspect";
  if (words.size() != 2 || !IsHex(words[0]) || !absl::SimpleAtoi(words[1], &t.main_pid) ||
      t.main_pid < 0) {
    return absl::InternalError(absl::StrCat("unexpected inspect output for container ", name,
                                            ": '", absl::StripAsciiWhitespace(output), "'"));
  }
  t.id = std::string(words[0]);
  if (t.main_pid == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container ", name, " is not running; start it (docker start ", name,
        ") or pick a running one (docker ps)"));
  }
  return t;
}

absl::StatusOr<ContainerTarget> ResolveContainer(absl::string_view name,
                                                 absl::string_view runtime) {
  if (name.empty() || name[0] == '-' ||
      !std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
               c == '.';
      })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name, "' is not a container name or ID (letters, digits, _ . - only)"));
  }
  if (runtime != "docker" && runtime != "podman") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --runtime '", runtime, "': expected docker or podman"));
  }
  ContainerTarget target;
  std::string why_not_inspect;
  absl::StatusOr<RunResult> run =
      RunCaptured({std::string(runtime), "inspect", "--type", "container", "--format",
                   "{{.Id}} {{.State.Pid}}", std::string(name)});
  if (!run.ok()) return run.status();
  if (run->not_installed) {
    why_not_inspect = absl::StrCat(runtime, " is not installed here");
  } else if (run->timed_out) {
    why_not_inspect = absl::StrCat(runtime, " inspect did not answer within ",
                                   absl::FormatDuration(kContainerInspectTimeout));
  } else if (run->exit_code == 0) {
    absl::StatusOr<ContainerTarget> parsed = ParseInspectOutput(name, run->out);
    if (!parsed.ok()) return parsed.status();
    target = *parsed;
    target.found_by = absl::StrCat(runtime, " inspect");
  } else {
    std::string message(absl::StripAsciiWhitespace(run->err));
    if (absl::StrContains(absl::AsciiStrToLower(message), "no such")) {
      return absl::NotFoundError(absl::StrCat("no container ", name, " (", runtime,
                                              " says: ", message, "); list them with ",
                                              runtime, " ps"));
    }
    why_not_inspect = absl::StrCat(runtime, " inspect failed: ", message);
  }

  std::string full_id = target.id;
  std::vector<pid_t> pids;
  if (target.id.empty()) {
    // The runtime could not be asked: an ID still finds the container in
    // /proc, a name cannot.
    if (!LooksLikeContainerId(name)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot resolve container '", name, "': ", why_not_inspect,
          "; give its ID (12-64 hex digits, found by cgroup) or the host PID instead"));
    }
    pids = PidsInContainer(name, &full_id);
    if (pids.empty()) {
      return absl::NotFoundError(absl::StrCat(
          "no process in a cgroup of container ", name, " (", why_not_inspect,
          "); check the ID, and run as root to see every process"));
    }
    absl::flat_hash_set<pid_t> in(pids.begin(), pids.end());
    target.id = full_id;
    target.found_by = "cgroup scan";
    target.main_pid = pids.front();
    for (pid_t p : pids) {
      if (!in.contains(ParentOf(p))) {
        target.main_pid = p;
        break;
      }
    }
  } else {
    pids = PidsInContainer(target.id, &full_id);
  }
  // Main first, then the others in PID order; the main one is there even
  // when its cgroup could not be read.
  target.pids = {target.main_pid};
  for (pid_t p : pids) {
    if (p != target.main_pid) target.pids.push_back(p);
  }
  return target;
}

std::string SeccompRefusalHint(const absl::Status& status, absl::string_view self_status) {
  if (status.code() != absl::StatusCode::kPermissionDenied ||
      !absl::StrContains(status.message(), "perf_event_open")) {
    return "";
  }
  bool filtered = false;
  for (absl::string_view line : absl::StrSplit(self_status, '\n')) {
    if (absl::ConsumePrefix(&line, "Seccomp:")) {
      filtered = absl::StripAsciiWhitespace(line) == "2";
    }
  }
  if (!filtered) return "";
  return "\nflamekit record: this process runs under a seccomp filter (Seccomp: 2 in "
         "/proc/self/status), the likely cause: Docker's default profile refuses the "
         "perf_event_open syscall with EPERM whatever perf_event_paranoid says. Least "
         "privilege that allows it: docker run --security-opt "
         "seccomp=examples/container/seccomp-perf.json (perf_event_open only); or "
         "--cap-add PERFMON (Docker 23+), --cap-add SYS_ADMIN (Docker 20.10, far broader). "
         "Or record from the host: flamekit record --container NAME. "
         "`flamekit_container flags --runtime docker` prints these.";
}

}  // namespace cli
}  // namespace flamekit
