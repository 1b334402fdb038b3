// SPDX-License-Identifier: Apache-2.0
// File: proc_files.h
//
// The one place flamekit reads small files and /proc: a regular file opened
// safely (O_NONBLOCK, so a FIFO planted where a file was expected is refused
// instead of hanging the reader; S_ISREG checked on the descriptor), a whole
// small file, an integer file (/proc/sys/...), a process's threads, command
// line and thread names, and whether it is still alive. Errors name the path
// and say what to do (FileErrorStatus()).
//
// Thread-safe (no shared state). Not for signal handlers: they allocate.
//
// Example:
//
//   absl::StatusOr<int64_t> paranoid = ReadIntFile("/proc/sys/kernel/perf_event_paranoid");
//   std::vector<pid_t> tids = ListProcessThreads(pid);   // sorted; empty when gone
//   std::string command = ProcessCommandLine(pid);       // "redis-server *:6379"

#ifndef FLAMEKIT_BASE_PROC_FILES_H_
#define FLAMEKIT_BASE_PROC_FILES_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"

namespace flamekit {

// FileErrorStatus()
//
// errno -> Status for `what` ("cannot open") on `path`, with a hint where a
// user can fix it: ENOENT/ESRCH -> NotFound, EACCES/EPERM ->
// PermissionDenied (ptrace access), EMFILE/ENFILE -> ResourceExhausted.
absl::Status FileErrorStatus(int err, absl::string_view what, absl::string_view path);

// OpenRegularFile()
//
// Opens `path` read-only, non-blocking and close-on-exec, and fills *st
// from the descriptor. InvalidArgument "not a regular file" for anything
// else (a FIFO, a device, a directory).
absl::StatusOr<ScopedFd> OpenRegularFile(absl::string_view path, struct stat* st);

// ReadSmallFile()
//
// Reads a whole regular file (a /proc file, whose stat size is 0, included)
// into a string, up to `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(absl::string_view path,
                                          size_t max_bytes = size_t{1} << 30);

// ReadIntFile()
//
// A file holding one integer (/proc/sys/kernel/perf_event_paranoid).
absl::StatusOr<int64_t> ReadIntFile(absl::string_view path);

// ListProcessThreads()
//
// The thread ids of `pid` (0: this process) from /proc/PID/task, sorted;
// empty when the process is gone or /proc cannot be read.
std::vector<pid_t> ListProcessThreads(pid_t pid);

// ProcessCommandLine()
//
// The command line of `pid` (0: this process) with its arguments separated
// by spaces; "" when unreadable.
std::string ProcessCommandLine(pid_t pid);

// ThreadName()
//
// /proc/PID/task/TID/comm without its newline (pid 0: this process); ""
// when the thread is gone.
std::string ThreadName(pid_t pid, pid_t tid);

// ProcessAlive()
//
// Whether /proc/PID exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// Implementation details follow.

namespace base_internal {

inline std::string ProcDir(pid_t pid) {
  return pid == 0 ? std::string("/proc/self") : absl::StrCat("/proc/", pid);
}

}  // namespace base_internal

inline absl::Status FileErrorStatus(int err, absl::string_view what, absl::string_view path) {
  std::string msg = absl::StrCat(what, " ", path);
  switch (err) {
    case ENOENT:
    case ESRCH:
      return absl::NotFoundError(absl::StrCat(msg, ": no such file or process"));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(
          msg, ": permission denied; run as the process's user or as root "
               "(reading another process's files needs ptrace access: "
               "see /proc/sys/kernel/yama/ptrace_scope)"));
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(
          absl::StrCat(msg, ": too many open files; raise `ulimit -n`"));
    default:
      return absl::ErrnoToStatus(err, msg);
  }
}

inline absl::StatusOr<ScopedFd> OpenRegularFile(absl::string_view path, struct stat* st) {
  std::string p(path);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  ScopedFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return FileErrorStatus(errno, "cannot open", path);
  if (::fstat(fd.get(), st) != 0) return FileErrorStatus(errno, "cannot stat", path);
  if (!S_ISREG(st->st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  return fd;
}

inline absl::StatusOr<std::string> ReadSmallFile(absl::string_view path, size_t max_bytes) {
  struct stat st;
  absl::StatusOr<ScopedFd> fd = OpenRegularFile(path, &st);
  if (!fd.ok()) return fd.status();
  std::string out;
  char buf[65536];
  while (out.size() < max_bytes) {
    ssize_t n = ::read(fd->get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileErrorStatus(errno, "cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  if (out.size() > max_bytes) out.resize(max_bytes);
  return out;
}

inline absl::StatusOr<int64_t> ReadIntFile(absl::string_view path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, 4096);
  if (!text.ok()) return text.status();
  int64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return absl::InternalError(absl::StrCat(path, ": not a number: ", *text));
  }
  return value;
}

inline std::vector<pid_t> ListProcessThreads(pid_t pid) {
  std::vector<pid_t> tids;
  std::string dir = base_internal::ProcDir(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return tids;
  while (dirent* e = readdir(d)) {
    pid_t tid = 0;
    if (absl::SimpleAtoi(e->d_name, &tid) && tid > 0) tids.push_back(tid);
  }
  closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

inline std::string ProcessCommandLine(pid_t pid) {
  absl::StatusOr<std::string> cmd =
      ReadSmallFile(base_internal::ProcDir(pid) + "/cmdline", 1 << 16);
  if (!cmd.ok()) return "";
  while (!cmd->empty() && cmd->back() == '\0') cmd->pop_back();
  std::replace(cmd->begin(), cmd->end(), '\0', ' ');
  return *std::move(cmd);
}

inline std::string ThreadName(pid_t pid, pid_t tid) {
  absl::StatusOr<std::string> comm =
      ReadSmallFile(absl::StrCat(base_internal::ProcDir(pid), "/task/", tid, "/comm"), 256);
  if (!comm.ok()) return "";
  return std::string(absl::StripTrailingAsciiWhitespace(*comm));
}

inline bool ProcessAlive(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadSmallFile(base_internal::ProcDir(pid) + "/stat", 4096);
  if (!stat.ok() || stat->empty()) return false;
  size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size()) return true;
  char state = (*stat)[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace flamekit

#endif  // FLAMEKIT_BASE_PROC_FILES_H_
