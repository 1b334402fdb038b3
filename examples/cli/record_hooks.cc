// SPDX-License-Identifier: Apache-2.0
// File: record_hooks.cc
//
// `flamekit record -e alloc|live|lock -- COMMAND`: these events come from
// hooks inside the process (malloc, new, pthread_mutex_lock, ...), which
// perf cannot supply from outside, so record launches COMMAND with the
// LD_PRELOAD agent (examples/agent) set to the event, waits for it, and
// reports the profile the agent wrote when COMMAND exited. A running
// process (PID, --name) cannot be given the hooks: ParseRecordArgs()
// refuses that with what to do instead.
//
// Main thread only (as RunRecord()). The child is started with
// posix_spawnp() and an environment built before it, so nothing unsafe
// runs between fork and exec.

#include <errno.h>
#include <spawn.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "examples/cli/record_command.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/base/human_units.h"
#include "flamekit/render/write_profile.h"

extern char** environ;

namespace flamekit {
namespace cli {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string AbsolutePath(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return absl::StrCat(cwd, "/", path);
}

}  // namespace

absl::StatusOr<std::string> FindAgent() {
  if (const char* given = getenv("FLAMEKIT_AGENT"); given != nullptr && given[0] != '\0') {
    if (IsFile(given)) return AbsolutePath(given);
    return WithExitCode(
        absl::NotFoundError(absl::StrCat("FLAMEKIT_AGENT=", given,
                                         " is not a file; point it at libflamekit_agent.so")),
        kRecordLaunchFailed);
  }
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  std::vector<std::string> tried;
  if (n > 0) {
    exe[n] = '\0';
    const std::string self(exe);
    const std::string dir = Dirname(self);
    // bazel run/build: the agent is a data dependency of the binary; an
    // install puts it beside the binary or in ../lib/flamekit.
    tried = {self + ".runfiles/flamekit/examples/agent/libflamekit_agent.so",
             dir + "/../agent/libflamekit_agent.so", dir + "/libflamekit_agent.so",
             dir + "/../lib/flamekit/libflamekit_agent.so"};
    for (const std::string& path : tried) {
      if (IsFile(path)) return path;
    }
  }
  return WithExitCode(
      absl::NotFoundError(
          "libflamekit_agent.so not found beside flamekit; build it (bazel build "
          "//examples/agent:libflamekit_agent.so) and set FLAMEKIT_AGENT to its path"),
      kRecordLaunchFailed);
}

int RunHookRecord(const RecordFlags& flags, CommandIo& io) {
  std::ostream& err = io.err;
  auto fail = [&err](const absl::Status& status) {
    err << "flamekit record: " << status.message() << "\n";
    return ExitCodeOf(status);
  };
  absl::StatusOr<std::string> agent = FindAgent();
  if (!agent.ok()) return fail(agent.status());
  // The agent names the file (%p: the command's pid) and writes it at exit.
  const std::string pattern =
      AbsolutePath(flags.file.empty() ? absl::StrCat(flags.hook_event, "-%p.html") : flags.file);
  {
    // Checked now, not after the whole run: directory, format, writable.
    const std::string probe_path = absl::StrCat(Dirname(pattern), "/.flamekit-probe.html");
    absl::StatusOr<OutputFormat> format = ResolveFormat(pattern, {});
    if (!format.ok()) return fail(WithExitCode(format.status(), kRecordOutputError));
    absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Open(probe_path);
    if (!writer.ok()) {
      return fail(WithExitCode(
          absl::PermissionDeniedError(absl::StrCat("cannot write in ", Dirname(pattern), ": ",
                                                   writer.status().message(),
                                                   "; choose another -f")),
          kRecordOutputError));
    }
  }
  // The command's environment: ours, with the agent first in LD_PRELOAD (a
  // replacement allocator preloaded by the user comes after it, so its
  // malloc is still what the program gets, and every call is seen).
  std::vector<std::string> env;
  std::string preload = *agent;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (absl::StartsWith(entry, "LD_PRELOAD=")) {
      if (entry.size() > 11) absl::StrAppend(&preload, " ", entry.substr(11));
      continue;
    }
    if (absl::StartsWith(entry, "FLAMEKIT_EVENT=") ||
        absl::StartsWith(entry, "FLAMEKIT_INTERVAL=") ||
        absl::StartsWith(entry, "FLAMEKIT_OUTPUT=")) {
      continue;
    }
    env.push_back(entry);
  }
  env.push_back(absl::StrCat("LD_PRELOAD=", preload));
  env.push_back(absl::StrCat("FLAMEKIT_EVENT=", flags.hook_event));
  if (!flags.hook_interval.empty()) {
    env.push_back(absl::StrCat("FLAMEKIT_INTERVAL=", flags.hook_interval));
  }
  env.push_back(absl::StrCat("FLAMEKIT_OUTPUT=", pattern));
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = flags.command;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), envp.data());
  if (spawned != 0) {
    return fail(WithExitCode(
        absl::NotFoundError(absl::StrCat("cannot run '", flags.command[0], "': ",
                                         strerror(spawned), "; check the command name and PATH")),
        kRecordLaunchFailed));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return fail(absl::ErrnoToStatus(errno, "waitpid"));
  }
  const std::string path = absl::StrReplaceAll(pattern, {{"%p", absl::StrCat(pid)}});
  std::string how = WIFEXITED(status) ? absl::StrCat("exited with status ", WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? absl::StrCat("was killed by signal ", WTERMSIG(status))
                                          : std::string("ended");
  if (!IsFile(path)) {
    return fail(WithExitCode(
        absl::InternalError(absl::StrCat(
            "'", flags.command[0], "' (pid ", pid, ") ", how, " and left no ", flags.hook_event,
            " profile at ", path,
            ": the agent writes it when the command exits normally (not by a signal or "
            "_exit()); its own line above says why if it did not start")),
        kRecordInternalError));
  }
  if (!flags.quiet) {
    struct stat st;
    stat(path.c_str(), &st);
    err << "flamekit record: '" << flags.command[0] << "' (pid " << pid << ") " << how << "; "
        << flags.hook_event << " profile ("
        << (flags.hook_event == "lock" ? "time waited" : "bytes") << ") -> " << path << " ("
        << HumanBytes(static_cast<uint64_t>(st.st_size)) << ")\n";
  }
  return kRecordOk;
}

}  // namespace cli
}  // namespace flamekit
