// SPDX-License-Identifier: Apache-2.0
// File: process_finder.h
//
// Finding the process to attach to by a regular expression over its command
// line (/proc/PID/cmdline, arguments joined by spaces), like `jcmd | grep
// app` for the JVM. FindProcessesByCommand() lists every match;
// FindSingleProcess() insists on exactly one and otherwise says which
// processes matched so the user can pick a PID.
//
// Thread-safety: thread-compatible functions that read /proc; not for
// signal handlers.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(ProcessMatch target,
//                             FindSingleProcess("checkout-service"));
//   options.pid = target.pid;

#ifndef FLAMEKIT_ATTACH_PROCESS_FINDER_H_
#define FLAMEKIT_ATTACH_PROCESS_FINDER_H_

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/attach/attach.h"
#include "re2/re2.h"

namespace flamekit {

struct ProcessMatch {
  pid_t pid = 0;
  std::string command;  // cmdline, arguments joined by spaces
};

// FindProcessesByCommand()
//
// Every process whose command line matches `pattern` (RE2, unanchored),
// sorted by PID. Never matched: this process, `exclude_pid`, kernel threads
// (empty cmdline), and command lines that carry the pattern as an argument
// of --name (other flamekit runs, or the shell or `bazel run` that started
// this one). InvalidArgument for a bad pattern.
absl::StatusOr<std::vector<ProcessMatch>> FindProcessesByCommand(absl::string_view pattern,
                                                                 pid_t exclude_pid = 0);

// FindSingleProcess()
//
// The one process matching `pattern`. Otherwise FailedPrecondition, listing
// what matched: none ("no process matches ...; check `ps -ef`")
// or several ("3 processes match ...: 12 a, 34 b, ...; give a PID or a
// narrower pattern"). InvalidArgument for a bad pattern.
absl::StatusOr<ProcessMatch> FindSingleProcess(absl::string_view pattern,
                                               pid_t exclude_pid = 0);

// Implementation details follow.

inline absl::StatusOr<std::vector<ProcessMatch>> FindProcessesByCommand(
    absl::string_view pattern, pid_t exclude_pid) {
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), RE2::Quiet);
  if (!re.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("bad --name pattern '", pattern,
                                                   "': ", re.error(),
                                                   "; give an RE2 regular expression"));
  }
  std::vector<ProcessMatch> matches;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return absl::ErrnoToStatus(errno, "opendir(/proc)");
  const pid_t self = getpid();
  while (dirent* e = readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid) || pid <= 0) continue;
    if (pid == self || pid == exclude_pid) continue;
    std::string cmd = ProcessCommandLine(pid);
    if (cmd.empty()) continue;
    if (!RE2::PartialMatch(cmd, re)) continue;
    // The shell or `bazel run` that started a flamekit with this --name
    // carries the pattern in its own command line; never what was meant.
    if (cmd.find(absl::StrCat("--name ", pattern)) != std::string::npos ||
        cmd.find(absl::StrCat("--name=", pattern)) != std::string::npos) {
      continue;
    }
    matches.push_back(ProcessMatch{pid, std::move(cmd)});
  }
  closedir(proc);
  std::sort(matches.begin(), matches.end(),
            [](const ProcessMatch& a, const ProcessMatch& b) { return a.pid < b.pid; });
  return matches;
}

inline absl::StatusOr<ProcessMatch> FindSingleProcess(absl::string_view pattern,
                                                      pid_t exclude_pid) {
  absl::StatusOr<std::vector<ProcessMatch>> matches =
      FindProcessesByCommand(pattern, exclude_pid);
  if (!matches.ok()) return matches.status();
  if (matches->size() == 1) return (*matches)[0];
  if (matches->empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no process matches --name '", pattern,
        "' (matched against /proc/*/cmdline); check the name with `ps -ef`, or give a PID"));
  }
  std::string list;
  size_t shown = 0;
  for (const ProcessMatch& m : *matches) {
    if (shown++ == 10) {
      absl::StrAppend(&list, "\n  ... and ", matches->size() - 10, " more");
      break;
    }
    std::string cmd = m.command.size() > 100 ? m.command.substr(0, 100) + "..." : m.command;
    absl::StrAppend(&list, "\n  ", m.pid, "  ", cmd);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      matches->size(), " processes match --name '", pattern,
      "'; give one PID, or a narrower pattern:", list));
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_PROCESS_FINDER_H_
