// SPDX-License-Identifier: Apache-2.0
// File: container_helper.h
//
// The code of `flamekit_container`, the helper for profiling inside
// containers:
//   flags --runtime docker|podman|kubernetes
//       the least privilege that makes cpu profiling work, ready to paste
//   profile (--container NAME | --pod NAME [--namespace NS] [-c CONTAINER])
//           --pid PID [-d 30] [-f out.html] [--runtime docker|podman|kubectl]
//           [--flamekit PATH] [--dry-run] [-- extra record flags]
//       copies the static flamekit CLI into the container, runs
//       `flamekit record` there, copies the result out and removes both,
//       printing each step; --dry-run prints the commands only.
// The host-side way needs none of this: `flamekit record HOST_PID` works on
// a containerized process through /proc/PID/root (see FlagsText()).
//
// Thread-safety: thread-compatible functions; ExecuteSteps() forks and
// waits, so call it from the main thread of a command-line process. Not
// async-signal-safe.
//
// Example:
//
//   ContainerProfileOptions o;
//   o.runtime = "docker"; o.container = "api"; o.pid = 1;
//   FLAMEKIT_ASSIGN_OR_RETURN(std::vector<ContainerStep> steps, PlanContainerProfile(o));
//   FLAMEKIT_RETURN_IF_ERROR(ExecuteSteps(steps, std::cout, /*dry_run=*/true));

#ifndef FLAMEKIT_EXAMPLES_CONTAINER_CONTAINER_HELPER_H_
#define FLAMEKIT_EXAMPLES_CONTAINER_CONTAINER_HELPER_H_

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
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
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/types/span.h"

namespace flamekit {

// FlagsText()
//
// The paste-ready least-privilege settings for `runtime` ("docker",
// "podman" or "kubernetes"); InvalidArgument for anything else.
absl::StatusOr<std::string> FlagsText(absl::string_view runtime);

// ContainerProfileOptions: what `flamekit_container profile` was asked.
struct ContainerProfileOptions {
  std::string runtime = "docker";  // docker | podman | kubectl
  std::string container;           // docker/podman container name or id
  std::string pod;                 // kubectl pod
  std::string ns;                  // kubectl namespace ("" = the context's)
  std::string kube_container;      // kubectl -c (a pod's container)
  int pid = 0;                     // PID inside the container (1 = its main process)
  int64_t duration_s = 30;
  std::string output = "flamekit.html";     // local output path
  std::string flamekit = "flamekit";        // the static CLI here (searched in PATH)
  std::string remote_dir = "/tmp";          // where to put it in the container
  std::string token = "0";                  // makes remote names unique
  std::vector<std::string> record_flags;    // passed on to `flamekit record`
};

// ContainerStep: one command to run; cleanup steps run even after a
// failure.
struct ContainerStep {
  std::string what;  // "copy flamekit into api"
  std::vector<std::string> argv;
  bool cleanup = false;
};

// PlanContainerProfile()
//
// The four steps (copy in, record, copy out, remove) for the options.
// InvalidArgument naming the flag for missing/contradictory options.
absl::StatusOr<std::vector<ContainerStep>> PlanContainerProfile(
    const ContainerProfileOptions& options);

// ShellQuote()
//
// argv as one line a POSIX shell would split back into the same words.
std::string ShellQuote(absl::Span<const std::string> argv);

// ExecuteSteps()
//
// Prints "[i/n] what" and "+ command" for each step on `log`; with
// `dry_run` only prints. Otherwise runs each (fork + execvp, stdout and
// stderr inherited); after the first failure only cleanup steps run, and
// the first failure is returned naming the step and the exit status
// (NotFound when the program is not installed).
absl::Status ExecuteSteps(const std::vector<ContainerStep>& steps, std::ostream& log,
                          bool dry_run);

// CheckStaticBinary()
//
// OK when `path` is an ELF executable without a PT_INTERP (no dynamic
// loader needed, so it runs in any image); FailedPrecondition with the
// build command otherwise, NotFound when missing.
absl::Status CheckStaticBinary(const std::string& path);

// RunContainerHelper()
//
// The whole program on `args` (without the program name). Returns the exit
// status: 0, 1 (a step failed), 2 (bad usage).
int RunContainerHelper(absl::Span<const std::string> args, std::ostream& out, std::ostream& err);

// Implementation details follow.

namespace container_internal {

inline constexpr char kUsage[] =
    "usage:\n"
    "  flamekit_container flags --runtime docker|podman|kubernetes\n"
    "  flamekit_container profile (--container NAME | --pod NAME [--namespace NS] [-c C])\n"
    "      --pid PID [-d SECONDS] [-f OUTPUT]\n"
    "      [--runtime docker|podman|kubectl (= kubernetes)]\n"
    "      [--flamekit PATH] [--dry-run] [-- RECORD_FLAGS...]\n"
    "  profile copies the static flamekit CLI (bazel build -c opt --config=static\n"
    "  //examples/cli:flamekit) into the container, runs `flamekit record` there,\n"
    "  copies the result out and removes both. PID is as seen inside the container.\n"
    "  flags --runtime docker lists the options that let perf events through Docker's\n"
    "  default seccomp profile (examples/container/seccomp-perf.json, PERFMON on\n"
    "  Docker 23+, SYS_ADMIN). From the host, no helper is needed:\n"
    "  sudo flamekit record --container NAME [--all].\n";

inline bool IsSafeWord(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
          c == '.' || c == '/' || c == ':' || c == '=' || c == '@' || c == ',' || c == '+')) {
      return false;
    }
  }
  return true;
}

inline absl::string_view Extension(absl::string_view path) {
  size_t slash = path.rfind('/');
  absl::string_view base = slash == absl::string_view::npos ? path : path.substr(slash + 1);
  // .pb.gz is one extension for flamekit record.
  if (absl::EndsWith(base, ".pb.gz")) return ".pb.gz";
  size_t dot = base.rfind('.');
  return dot == absl::string_view::npos || dot == 0 ? absl::string_view(".html")
                                                    : base.substr(dot);
}

// `name` as execvp would find it: itself when it has a '/', else the first
// PATH entry that has it; "" when none does.
inline std::string FindInPath(const std::string& name) {
  if (absl::StrContains(name, '/')) return name;
  const char* path = getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace container_internal

// The seccomp profile shipped beside this file: Docker 20.10's default
// profile plus an unconditional allow of perf_event_open.
inline constexpr char kSeccompProfilePath[] = "examples/container/seccomp-perf.json";

inline absl::StatusOr<std::string> FlagsText(absl::string_view runtime) {
  const std::string host =
      "# Host settings (a container cannot change them; run on the host):\n"
      "sudo sysctl -w kernel.perf_event_paranoid=2   # processes without CAP_PERFMON: own "
      "processes, user-space frames\n"
      "sudo sysctl -w kernel.perf_event_paranoid=1   # ...and kernel frames\n"
      "sudo sysctl -w kernel.kptr_restrict=0         # kernel symbol names\n"
      "# keep them across reboots: /etc/sysctl.d/60-flamekit.conf with the same "
      "key=value lines\n";
  const std::string none =
      "# Where none of this is allowed (managed platforms, locked-down clusters):\n"
      "#   the embedded profiler's timer engines (ctimer, itimer) need no capability,\n"
      "#   no sysctl and no seccomp change: link flamekit into the service and use\n"
      "#   -e ctimer (or the /ui endpoint). `flamekit doctor` in the container says\n"
      "#   which events work there.\n";
  const std::string host_side =
      "# Or profile from the host, with no change to the container at all:\n"
      "#   sudo flamekit record -d 30 -f out.html HOST_PID\n"
      "#   (symbols resolve through /proc/HOST_PID/root)\n";
  if (runtime == "docker") {
    // Each option below was run against Docker 20.10.24 (Debian's docker.io)
    // by tools/checks/containers.sh, which fails when one stops working.
    return absl::StrCat(
        "# CPU profiling (perf events) inside a Docker container, least privilege first.\n"
        "# Docker's default seccomp profile refuses perf_event_open (EPERM) unless the\n"
        "# container has CAP_SYS_ADMIN (Docker 20.10) or CAP_PERFMON (Docker 23+).\n"
        "docker run --security-opt seccomp=", kSeccompProfilePath, " ... IMAGE\n"
        "#   Docker's default profile with perf_event_open allowed, nothing else changed\n"
        "#   (the file ships in flamekit's repository). No capability added: enough for\n"
        "#   the container's own processes, user-space frames, at the host's\n"
        "#   kernel.perf_event_paranoid 2.\n"
        "docker run --cap-add PERFMON ... IMAGE\n"
        "#   Docker 23+ and kernel 5.8+ only (Docker 20.10 refuses it: \"unknown\n"
        "#   capability: CAP_PERFMON\"); its default profile then allows perf_event_open.\n"
        "docker run --cap-add SYS_ADMIN ... IMAGE\n"
        "#   Works with Docker 20.10's default profile, but SYS_ADMIN also allows mount,\n"
        "#   setns, bpf, ...: prefer the seccomp profile above.\n"
        "#   --cap-add SYS_PTRACE: only to profile a process of another user.\n"
        "#   An already running container cannot gain either: recreate it, or\n"
        "#   profile it from the host (below).\n",
        host, none,
        "# Or profile from the host, with no change to the container at all:\n"
        "#   sudo flamekit record --container CONTAINER -d 30 -f out.html\n"
        "#   (--all: every process of the container; symbols resolve through\n"
        "#   /proc/PID/root)\n");
  }
  if (runtime == "podman") {
    std::string rt(runtime);
    std::string text = absl::StrCat(
        "# Least privilege for cpu profiling (perf events) inside a ", rt, " container:\n",
        rt, " run --cap-add PERFMON --cap-add SYS_PTRACE ... IMAGE\n",
        "#   PERFMON (kernel 5.8+): ", rt,
        "'s default seccomp profile allows perf_event_open only to a container\n"
        "#   with CAP_PERFMON or CAP_SYS_ADMIN; prefer PERFMON (SYS_ADMIN is far broader).\n"
        "#   SYS_PTRACE: only needed to profile a process of another user.\n"
        "#   Kernels before 5.8 have no PERFMON: --cap-add SYS_ADMIN instead.\n"
        "#   Or, with no capability: --security-opt seccomp=", kSeccompProfilePath, "\n"
        "#   An already running container cannot gain capabilities: recreate it, or\n"
        "#   profile it from the host (below).\n"
        "#   Rootless podman runs in a user namespace, where capabilities do not count\n"
        "#   for perf events: the host's kernel.perf_event_paranoid decides (2 or lower\n"
        "#   lets a process profile its own user's processes).\n");
    absl::StrAppend(&text, host, none, "# Host PID of a container's main process: ", rt,
                    " inspect -f '{{.State.Pid}}' CONTAINER\n", host_side);
    return text;
  }
  if (runtime == "kubernetes") {
    return absl::StrCat(
        "# Least privilege for cpu profiling (perf events) in a Kubernetes container:\n"
        "securityContext:\n"
        "  capabilities:\n"
        "    add: [\"PERFMON\", \"SYS_PTRACE\"]   # PERFMON: kernel 5.8+; SYS_PTRACE only "
        "for other users' processes\n"
        "  seccompProfile:\n"
        "    type: RuntimeDefault   # containerd/CRI-O default profiles are derived from\n"
        "                           # Docker's: perf_event_open allowed with PERFMON or "
        "SYS_ADMIN\n"
        "#   Kernels before 5.8: add [\"SYS_ADMIN\"] instead of PERFMON.\n"
        "#   `flamekit_container profile --pod POD` uses kubectl cp, which needs `tar` in\n"
        "#   the container; for images without it, run flamekit from an ephemeral debug\n"
        "#   container sharing the target's process namespace:\n"
        "#   kubectl debug -it POD --image=IMAGE_WITH_FLAMEKIT --target=CONTAINER "
        "--profile=general\n",
        host, none, host_side);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown --runtime '", runtime, "': expected docker, podman or kubernetes"));
}

inline absl::StatusOr<std::vector<ContainerStep>> PlanContainerProfile(
    const ContainerProfileOptions& o) {
  using container_internal::IsSafeWord;
  auto bad = [](absl::string_view what) { return absl::InvalidArgumentError(what); };
  bool kube = o.runtime == "kubectl" || o.runtime == "kubernetes";
  if (!kube && o.runtime != "docker" && o.runtime != "podman") {
    return bad(absl::StrCat("unknown --runtime '", o.runtime,
                            "': expected docker, podman or kubectl"));
  }
  if (kube && o.pod.empty()) return bad("kubectl needs --pod NAME");
  if (!kube && o.container.empty()) {
    return bad(absl::StrCat(o.runtime, " needs --container NAME"));
  }
  if (!o.pod.empty() && !o.container.empty()) {
    return bad("give --container (docker/podman) or --pod (kubectl), not both");
  }
  if (!kube && (!o.ns.empty() || !o.kube_container.empty())) {
    return bad("--namespace and -c are for --pod (kubectl)");
  }
  if (o.pid <= 0) return bad("--pid PID is required: the PID inside the container (1 = main)");
  if (o.duration_s <= 0) return bad("-d must be a positive number of seconds");
  if (o.output.empty()) return bad("-f OUTPUT must not be empty");
  for (const std::string* name : {&o.container, &o.pod, &o.ns, &o.kube_container}) {
    if (!name->empty() && !IsSafeWord(*name)) {
      return bad(absl::StrCat("'", *name, "' is not a valid container, pod or namespace name"));
    }
  }
  const std::string base = absl::StrCat(o.remote_dir, "/flamekit-", o.token);
  const std::string remote_bin = base;
  const std::string remote_out =
      absl::StrCat(base, container_internal::Extension(o.output));
  std::vector<std::string> record = {remote_bin, "record", "-d", absl::StrCat(o.duration_s),
                                     "-f", remote_out};
  for (const std::string& f : o.record_flags) record.push_back(f);
  record.push_back(absl::StrCat(o.pid));

  std::vector<ContainerStep> steps;
  if (!kube) {
    const std::string& rt = o.runtime;
    const std::string& c = o.container;
    steps.push_back({absl::StrCat("copy flamekit into ", c),
                     {rt, "cp", o.flamekit, absl::StrCat(c, ":", remote_bin)}});
    std::vector<std::string> exec = {rt, "exec", c};
    exec.insert(exec.end(), record.begin(), record.end());
    steps.push_back({absl::StrCat("record pid ", o.pid, " in ", c, " for ", o.duration_s, " s"),
                     exec});
    steps.push_back({absl::StrCat("copy the result out to ", o.output),
                     {rt, "cp", absl::StrCat(c, ":", remote_out), o.output}});
    steps.push_back({absl::StrCat("remove flamekit and the result from ", c),
                     {rt, "exec", c, "rm", "-f", remote_bin, remote_out},
                     /*cleanup=*/true});
    return steps;
  }
  std::vector<std::string> where;  // -n NS -c C
  if (!o.ns.empty()) where.insert(where.end(), {"-n", o.ns});
  if (!o.kube_container.empty()) where.insert(where.end(), {"-c", o.kube_container});
  auto with = [&](std::vector<std::string> head, std::vector<std::string> tail) {
    head.insert(head.end(), where.begin(), where.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  const std::string& p = o.pod;
  steps.push_back({absl::StrCat("copy flamekit into pod ", p, " (kubectl cp needs tar there)"),
                   with({"kubectl", "cp"}, {o.flamekit, absl::StrCat(p, ":", remote_bin)})});
  std::vector<std::string> exec_tail = {p, "--"};
  exec_tail.insert(exec_tail.end(), record.begin(), record.end());
  steps.push_back({absl::StrCat("record pid ", o.pid, " in pod ", p, " for ", o.duration_s, " s"),
                   with({"kubectl", "exec"}, exec_tail)});
  steps.push_back({absl::StrCat("copy the result out to ", o.output),
                   with({"kubectl", "cp"}, {absl::StrCat(p, ":", remote_out), o.output})});
  steps.push_back({absl::StrCat("remove flamekit and the result from pod ", p),
                   with({"kubectl", "exec"}, {p, "--", "rm", "-f", remote_bin, remote_out}),
                   /*cleanup=*/true});
  return steps;
}

inline std::string ShellQuote(absl::Span<const std::string> argv) {
  std::vector<std::string> words;
  for (const std::string& a : argv) {
    if (container_internal::IsSafeWord(a)) {
      words.push_back(a);
      continue;
    }
    std::string q = "'";
    for (char c : a) {
      if (c == '\'') {
        q += "'\\''";
      } else {
        q.push_back(c);
      }
    }
    q += "'";
    words.push_back(std::move(q));
  }
  return absl::StrJoin(words, " ");
}

inline absl::Status ExecuteSteps(const std::vector<ContainerStep>& steps, std::ostream& log,
                                 bool dry_run) {
  absl::Status first_error;
  for (size_t i = 0; i < steps.size(); ++i) {
    const ContainerStep& step = steps[i];
    if (!first_error.ok() && !step.cleanup) continue;
    log << "[" << i + 1 << "/" << steps.size() << "] " << step.what << "\n"
        << "+ " << ShellQuote(step.argv) << "\n";
    log.flush();
    if (dry_run) continue;
    std::vector<char*> argv;
    for (const std::string& a : step.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int err_pipe[2];
    if (pipe2(err_pipe, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
    pid_t pid = fork();
    if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
    if (pid == 0) {
      execvp(argv[0], argv.data());
      int e = errno;
      ssize_t ignored = write(err_pipe[1], &e, sizeof(e));
      (void)ignored;
      _exit(127);
    }
    close(err_pipe[1]);
    int exec_errno = 0;
    ssize_t n = read(err_pipe[0], &exec_errno, sizeof(exec_errno));
    close(err_pipe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    absl::Status result;
    if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
      result = exec_errno == ENOENT
                   ? absl::NotFoundError(absl::StrCat(
                         "step ", i + 1, " (", step.what, "): '", step.argv[0],
                         "' is not installed or not in PATH"))
                   : absl::ErrnoToStatus(exec_errno, absl::StrCat("step ", i + 1, ": exec ",
                                                                  step.argv[0]));
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      result = absl::UnknownError(absl::StrCat(
          "step ", i + 1, " (", step.what, ") failed: ", step.argv[0],
          WIFEXITED(status) ? absl::StrCat(" exited with status ", WEXITSTATUS(status))
                            : absl::StrCat(" was killed by signal ", WTERMSIG(status))));
    }
    if (!result.ok()) {
      log << "  failed: " << result.message() << "\n";
      if (step.cleanup) {
        log << "  (files may be left in the container: remove them by hand; images without "
               "`rm` keep them)\n";
      }
      if (first_error.ok()) first_error = result;
    }
  }
  return first_error;
}

inline absl::Status CheckStaticBinary(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(
        "cannot open the flamekit binary ", path, ": ", strerror(errno),
        "; build it with `bazel build -c opt --config=static //examples/cli:flamekit` and pass "
        "--flamekit PATH"));
  }
  Elf64_Ehdr eh;
  bool ok = pread(fd, &eh, sizeof(eh), 0) == static_cast<ssize_t>(sizeof(eh)) &&
            memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64;
  bool interp = false;
  for (int i = 0; ok && i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (pread(fd, &ph, sizeof(ph), static_cast<off_t>(eh.e_phoff + i * eh.e_phentsize)) !=
        static_cast<ssize_t>(sizeof(ph))) {
      ok = false;
      break;
    }
    if (ph.p_type == PT_INTERP) interp = true;
  }
  close(fd);
  if (!ok) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a 64-bit ELF executable; pass the flamekit CLI with --flamekit"));
  }
  if (interp) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is dynamically linked and will not run in images without its libraries; "
              "build the static one: bazel build -c opt --config=static //examples/cli:flamekit"));
  }
  return absl::OkStatus();
}

inline int RunContainerHelper(absl::Span<const std::string> args, std::ostream& out,
                              std::ostream& err) {
  auto usage = [&](absl::string_view message) {
    err << "flamekit_container: " << message << "\n" << container_internal::kUsage;
    return 2;
  };
  if (args.empty()) return usage("missing command (flags or profile)");
  const std::string& command = args[0];
  if (command == "-h" || command == "--help" || command == "help") {
    out << container_internal::kUsage;
    return 0;
  }
  auto value = [&](size_t* i, absl::string_view flag, std::string* v) {
    if (*i + 1 >= args.size()) return false;
    *v = args[++*i];
    (void)flag;
    return true;
  };
  if (command == "flags") {
    std::string runtime = "docker";
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--runtime") {
        if (!value(&i, "--runtime", &runtime)) return usage("--runtime needs a value");
      } else if (absl::StartsWith(args[i], "--runtime=")) {
        runtime = args[i].substr(10);
      } else {
        return usage(absl::StrCat("unknown argument '", args[i], "'"));
      }
    }
    absl::StatusOr<std::string> text = FlagsText(runtime);
    if (!text.ok()) return usage(text.status().message());
    out << *text;
    return 0;
  }
  if (command != "profile") return usage(absl::StrCat("unknown command '", command, "'"));
  ContainerProfileOptions o;
  o.token = absl::StrCat(getpid());
  bool dry_run = false;
  bool runtime_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    std::string v;
    auto need = [&](absl::string_view flag) {
      if (!value(&i, flag, &v)) {
        usage(absl::StrCat(flag, " needs a value"));
        return false;
      }
      return true;
    };
    if (a == "--") {
      o.record_flags.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    } else if (a == "--dry-run") {
      dry_run = true;
    } else if (a == "--container") {
      if (!need(a)) return 2;
      o.container = v;
    } else if (a == "--pod") {
      if (!need(a)) return 2;
      o.pod = v;
    } else if (a == "--namespace" || a == "-n") {
      if (!need(a)) return 2;
      o.ns = v;
    } else if (a == "-c") {
      if (!need(a)) return 2;
      o.kube_container = v;
    } else if (a == "--runtime") {
      if (!need(a)) return 2;
      o.runtime = v;
      runtime_given = true;
    } else if (a == "--flamekit") {
      if (!need(a)) return 2;
      o.flamekit = v;
    } else if (a == "-f" || a == "--file") {
      if (!need(a)) return 2;
      o.output = v;
    } else if (a == "--pid" || a == "-p") {
      if (!need(a)) return 2;
      if (!absl::SimpleAtoi(v, &o.pid) || o.pid <= 0) {
        return usage(absl::StrCat("--pid '", v, "' is not a positive number"));
      }
    } else if (a == "-d" || a == "--duration") {
      if (!need(a)) return 2;
      absl::string_view d = v;
      absl::ConsumeSuffix(&d, "s");
      if (!absl::SimpleAtoi(d, &o.duration_s) || o.duration_s <= 0) {
        return usage(absl::StrCat("-d '", v, "' is not a positive number of seconds"));
      }
    } else {
      return usage(absl::StrCat("unknown argument '", a, "'"));
    }
  }
  if (!runtime_given && !o.pod.empty()) o.runtime = "kubectl";
  absl::StatusOr<std::vector<ContainerStep>> steps = PlanContainerProfile(o);
  if (!steps.ok()) return usage(steps.status().message());
  if (!dry_run) {
    std::string found = container_internal::FindInPath(o.flamekit);
    absl::Status binary = CheckStaticBinary(found.empty() ? o.flamekit : found);
    if (!binary.ok()) {
      err << "flamekit_container: " << binary.message() << "\n";
      return 1;
    }
  }
  absl::Status run = ExecuteSteps(*steps, out, dry_run);
  if (!run.ok()) {
    err << "flamekit_container: " << run.message() << "\n";
    return 1;
  }
  if (!dry_run) out << "wrote " << o.output << "\n";
  return 0;
}

}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CONTAINER_CONTAINER_HELPER_H_
