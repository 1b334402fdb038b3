// SPDX-License-Identifier: Apache-2.0
// File: thread_list.h
//
// The threads of this process as /proc/self/task lists them, and their
// names (/proc/self/task/TID/comm), and whether any task was created since
// the last look. The profiler's collector polls these to arm threads created
// after Start() and to forget those that exited.
// Thread-compatible; not signal-safe (opendir, allocation).
//
// Example:
//
//   absl::StatusOr<std::vector<pid_t>> tids = flamekit::ListThreadIds();
//   std::string name = flamekit::ReadThreadName(tid);   // "" if gone
//   flamekit::TaskCreationWatch created;
//   if (created.Changed()) { /* list again */ }

#ifndef FLAMEKIT_SAMPLE_THREAD_LIST_H_
#define FLAMEKIT_SAMPLE_THREAD_LIST_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/proc_files.h"

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

// ThreadNameFilter
//
// Which threads to sample, by name: with `include` empty every thread not
// excluded; otherwise only those matching one of `include`; `exclude` wins.
// Patterns are shell globs (ThreadNameMatches()). Immutable after
// construction: safe to share between threads.
class ThreadNameFilter {
 public:
  ThreadNameFilter(std::vector<std::string> include, std::vector<std::string> exclude)
      : include_(std::move(include)), exclude_(std::move(exclude)) {}
  bool Wants(absl::string_view name) const;

 private:
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
};

// TaskCreationWatch
//
// Tells whether any process or thread was created in this pid namespace
// since the last call, from the last id the kernel handed out
// (/proc/sys/kernel/ns_last_pid, one pread() a call). The thread count alone
// cannot tell: a thread that exits while another starts leaves it equal.
// On a /proc where the file cannot be read, Changed() is always false and
// available() says so.
class TaskCreationWatch {
 public:
  TaskCreationWatch();
  ~TaskCreationWatch();
  TaskCreationWatch(const TaskCreationWatch&) = delete;
  TaskCreationWatch& operator=(const TaskCreationWatch&) = delete;

  bool available() const { return fd_ >= 0; }
  // True when the last id handed out moved since the previous call (or the
  // construction). Other processes' forks count too: a hint, not a proof.
  bool Changed();

 private:
  long ReadLastPid() const;

  int fd_ = -1;
  long last_ = -1;
};

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

inline std::string ReadThreadName(pid_t tid) { return ThreadName(0, tid); }

inline bool ThreadNameFilter::Wants(absl::string_view name) const {
  for (const std::string& pattern : exclude_) {
    if (ThreadNameMatches(pattern, name)) return false;
  }
  if (include_.empty()) return true;
  for (const std::string& pattern : include_) {
    if (ThreadNameMatches(pattern, name)) return true;
  }
  return false;
}

inline TaskCreationWatch::TaskCreationWatch() {
  fd_ = open("/proc/sys/kernel/ns_last_pid", O_RDONLY | O_CLOEXEC);
  last_ = ReadLastPid();
  if (last_ < 0 && fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

inline TaskCreationWatch::~TaskCreationWatch() {
  if (fd_ >= 0) close(fd_);
}

inline long TaskCreationWatch::ReadLastPid() const {
  if (fd_ < 0) return -1;
  char buffer[32];
  ssize_t n = pread(fd_, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return -1;
  long value = 0;
  absl::string_view text(buffer, static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return absl::SimpleAtoi(text, &value) ? value : -1;
}

inline bool TaskCreationWatch::Changed() {
  const long now = ReadLastPid();
  if (now < 0 || now == last_) return false;
  last_ = now;
  return true;
}

inline bool ThreadNameMatches(absl::string_view pattern, absl::string_view name) {
  std::string p(pattern), n(name);
  return fnmatch(p.c_str(), n.c_str(), 0) == 0;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_THREAD_LIST_H_
