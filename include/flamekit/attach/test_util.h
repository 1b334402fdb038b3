// SPDX-License-Identifier: Apache-2.0
// File: test_util.h
//
// Test helpers for the attach tests: find a Bazel data dependency, spawn a
// target process and wait until it is running, run a command and capture
// its exit code and output. Test-only; one thread; not for signal handlers.
//
// Example:
//
//   SpawnedProcess target = SpawnedProcess::Start(
//       {Runfile("testdata/attach/attach_workload"), "split", "5"});
//   ASSERT_TRUE(target.ok()) << target.error();
//   CommandResult r = RunCommand({tool, "record", "-d", "2",
//                                 absl::StrCat(target.pid())});

#ifndef FLAMEKIT_ATTACH_TEST_UTIL_H_
#define FLAMEKIT_ATTACH_TEST_UTIL_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace flamekit {
namespace attach_testing {

// Runfile()
//
// The path of a data dependency given by its workspace-relative path.
inline std::string Runfile(absl::string_view path) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  if (srcdir != nullptr && workspace != nullptr) {
    return absl::StrCat(srcdir, "/", workspace, "/", path);
  }
  return std::string(path);
}

// A temporary directory under TEST_TMPDIR (or /tmp), removed never: Bazel
// cleans TEST_TMPDIR.
inline std::string TempDir() {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string base = tmp != nullptr ? tmp : "/tmp";
  std::string templ = base + "/attachXXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) return base;
  return std::string(buf.data());
}

inline std::vector<char*> ArgvOf(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// SpawnedProcess
//
// A child started with fork+exec whose first stdout line ("ready PID") has
// been read. Killed (SIGKILL) and reaped on destruction unless Wait()ed.
class SpawnedProcess {
 public:
  static SpawnedProcess Start(const std::vector<std::string>& args,
                              absl::Duration ready_timeout = absl::Seconds(10)) {
    SpawnedProcess p;
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      p.error_ = "pipe2 failed";
      return p;
    }
    std::vector<char*> argv = ArgvOf(args);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out[1], 1);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    p.pid_ = pid;
    p.out_ = out[0];
    // Wait for the "ready" line.
    std::string line;
    absl::Time deadline = absl::Now() + ready_timeout;
    while (line.find('\n') == std::string::npos && absl::Now() < deadline) {
      pollfd pfd{out[0], POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    if (line.rfind("ready", 0) != 0) {
      p.error_ = absl::StrCat("target did not start: '", line, "' from ", args[0]);
    }
    return p;
  }

  SpawnedProcess() = default;
  SpawnedProcess(SpawnedProcess&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), out_(std::exchange(o.out_, -1)),
        error_(std::move(o.error_)) {}
  SpawnedProcess& operator=(SpawnedProcess&& o) noexcept {
    std::swap(pid_, o.pid_);
    std::swap(out_, o.out_);
    std::swap(error_, o.error_);
    return *this;
  }
  ~SpawnedProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }

  bool ok() const { return pid_ > 0 && error_.empty(); }
  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }

  // Wait()
  //
  // Sends `signal` (0 = none) and reaps the child; returns its wait status
  // and its CPU time (user + system) in `cpu`.
  int Wait(int signal = 0, absl::Duration* cpu = nullptr) {
    if (pid_ <= 0) return -1;
    if (signal != 0) kill(pid_, signal);
    int status = 0;
    rusage ru{};
    wait4(pid_, &status, 0, &ru);
    pid_ = -1;
    if (cpu != nullptr) {
      *cpu = absl::DurationFromTimeval(ru.ru_utime) + absl::DurationFromTimeval(ru.ru_stime);
    }
    return status;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string error_;
};

// ProcessCpuMs()
//
// Milliseconds the process `pid` has run on a CPU so far, all threads
// (from /proc/PID/task/*/schedstat; threads that exited are not counted).
inline int64_t ProcessCpuMs(pid_t pid) {
  int64_t total_ns = 0;
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string path = absl::StrCat(dir, "/", e->d_name, "/schedstat");
    FILE* f = fopen(path.c_str(), "re");
    if (f == nullptr) continue;
    long long ns = 0;
    if (fscanf(f, "%lld", &ns) == 1) total_ns += ns;
    fclose(f);
  }
  closedir(d);
  return total_ns / 1000000;
}

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
  absl::Duration cpu;  // children's user + system CPU
  std::string Describe() const {
    return absl::StrCat("exit ", exit_code, "\n--- stdout ---\n", out, "\n--- stderr ---\n", err);
  }
};

// RunCommand()
//
// Runs args[0] with args, stdin from /dev/null, and collects stdout and
// stderr; kills it after `timeout`.
inline CommandResult RunCommand(const std::vector<std::string>& args,
                                absl::Duration timeout = absl::Seconds(60)) {
  CommandResult r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return r;
  std::vector<char*> argv = ArgvOf(args);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  absl::Time deadline = absl::Now() + timeout;
  bool out_open = true, err_open = true, killed = false;
  while (out_open || err_open) {
    if (!killed && absl::Now() > deadline) {
      kill(pid, SIGKILL);
      killed = true;
    }
    pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (poll(fds, 2, 100) <= 0) continue;
    char buf[4096];
    if (fds[0].revents) {
      ssize_t n = read(out[0], buf, sizeof(buf));
      if (n <= 0) out_open = false; else r.out.append(buf, static_cast<size_t>(n));
    }
    if (fds[1].revents) {
      ssize_t n = read(err[0], buf, sizeof(buf));
      if (n <= 0) err_open = false; else r.err.append(buf, static_cast<size_t>(n));
    }
  }
  close(out[0]);
  close(err[0]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  r.cpu = absl::DurationFromTimeval(ru.ru_utime) + absl::DurationFromTimeval(ru.ru_stime);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
  return r;
}

}  // namespace attach_testing
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_TEST_UTIL_H_
