// SPDX-License-Identifier: Apache-2.0
// File: thread_list.h
//
// The threads of this process as /proc/self/task lists them, and their
// names (/proc/self/task/TID/comm). The profiler's collector polls these to
// arm threads created after Start() and to forget those that exited.
// Thread-compatible; not signal-safe (opendir, allocation).
//
// Example:
//
//   absl::StatusOr<std::vector<pid_t>> tids = flamekit::ListThreadIds();
//   std::string name = flamekit::ReadThreadName(tid);   // "" if gone

#ifndef FLAMEKIT_SAMPLE_THREAD_LIST_H_
#define FLAMEKIT_SAMPLE_THREAD_LIST_H_

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace flamekit {

// ListThreadIds()
//
// The ids of this process's threads, unordered. Internal on a /proc that
// cannot be read (mount /proc).
absl::StatusOr<std::vector<pid_t>> ListThreadIds(
    absl::string_view task_dir = "/proc/self/task");

// ReadThreadName()
//
// The thread's name (comm, at most 15 characters), or "" when it exited.
std::string ReadThreadName(pid_t tid);

// ThreadNameMatches()
//
// Whether `name` matches the shell glob `pattern` ("worker-*", "io?").
bool ThreadNameMatches(absl::string_view pattern, absl::string_view name);

// Implementation details follow.

inline absl::StatusOr<std::vector<pid_t>> ListThreadIds(absl::string_view task_dir) {
  std::string path(task_dir);
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    return absl::InternalError(absl::StrCat("opendir ", path, ": ", strerror(errno),
                                            "; is /proc mounted?"));
  }
  std::vector<pid_t> tids;
  while (struct dirent* entry = readdir(dir)) {
    int tid = 0;
    if (absl::SimpleAtoi(entry->d_name, &tid) && tid > 0) tids.push_back(tid);
  }
  closedir(dir);
  return tids;
}

inline std::string ReadThreadName(pid_t tid) {
  std::string path = absl::StrCat("/proc/self/task/", tid, "/comm");
  FILE* file = fopen(path.c_str(), "re");
  if (file == nullptr) return "";
  char buffer[64] = {0};
  size_t n = fread(buffer, 1, sizeof(buffer) - 1, file);
  fclose(file);
  std::string name(buffer, n);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  return name;
}

inline bool ThreadNameMatches(absl::string_view pattern, absl::string_view name) {
  std::string p(pattern), n(name);
  return fnmatch(p.c_str(), n.c_str(), 0) == 0;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_THREAD_LIST_H_
