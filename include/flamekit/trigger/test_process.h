// SPDX-License-Identifier: Apache-2.0
// File: test_process.h
//
// Testonly: runs spike_workload (or any program printing "ready" on its
// first stdout line) as a child for the watch tests and benchmarks, and
// finds it in the runfiles. Thread-compatible; not async-signal-safe.
//
// Example:
//
//   FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess p, TestProcess::Start(SpikeWorkloadPath()));
//   kill(p.pid(), SIGUSR1);   // spike
//   p.Kill();                 // SIGTERM, reap

#ifndef FLAMEKIT_TRIGGER_TEST_PROCESS_H_
#define FLAMEKIT_TRIGGER_TEST_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace flamekit {

// SpikeWorkloadPath()
//
// The spike_workload binary in this test's runfiles.
std::string SpikeWorkloadPath();

// TestProcess
//
// A child process; the destructor sends SIGKILL and reaps it if still
// running. Move-only.
class TestProcess {
 public:
  // Start()
  //
  // Forks and execs `path args...`, waits for its "ready" line.
  static absl::StatusOr<TestProcess> Start(const std::string& path,
                                           std::vector<std::string> args = {});
  TestProcess(TestProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  TestProcess& operator=(TestProcess&& o) noexcept {
    if (this != &o) {
      Kill(SIGKILL);
      pid_ = std::exchange(o.pid_, -1);
    }
    return *this;
  }
  TestProcess(const TestProcess&) = delete;
  TestProcess& operator=(const TestProcess&) = delete;
  ~TestProcess() { Kill(SIGKILL); }

  pid_t pid() const { return pid_; }
  void Signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Kill()
  //
  // Sends `sig` and reaps the child.
  void Kill(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  explicit TestProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// Implementation details follow.

inline std::string SpikeWorkloadPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/flamekit/include/flamekit/trigger/spike_workload");
}

inline absl::StatusOr<TestProcess> TestProcess::Start(const std::string& path,
                                                      std::vector<std::string> args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  std::vector<std::string> argv_storage;
  argv_storage.push_back(path);
  for (auto& a : args) argv_storage.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::execv(path.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  TestProcess process(pid);
  std::string line;
  char c;
  while (true) {
    ssize_t n = ::read(fds[0], &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line.push_back(c);
  }
  ::close(fds[0]);
  if (!absl::StartsWith(line, "ready")) {
    return absl::InternalError(absl::StrCat(path, " did not start (first line: '", line, "')"));
  }
  return process;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_TEST_PROCESS_H_
