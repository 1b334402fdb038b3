// SPDX-License-Identifier: Apache-2.0
// File: test_prometheus.h
//
// Testonly: runs a real server binary (Debian's `prometheus` or
// `prometheus-alertmanager`) as a child on a free 127.0.0.1 port with a
// config the test writes, waits until its /-/ready answers 200 (at most
// `ready_timeout`), and on destruction sends SIGTERM, waits up to 5 s,
// then SIGKILL, and reaps it, so no server outlives the test. Its output
// goes to a log file the test can print on failure.
//
// Thread-compatible; not async-signal-safe.
//
// Example:
//
//   if (!TestServer::Installed("prometheus")) GTEST_SKIP() << "apt-get install prometheus";
//   FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto prom, TestServer::StartPrometheus(dir, config_yaml));
//   FetchUrl(prom->Url("/api/v1/query?query=up"), absl::Seconds(1));

#ifndef FLAMEKIT_TRIGGER_TEST_PROMETHEUS_H_
#define FLAMEKIT_TRIGGER_TEST_PROMETHEUS_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/trigger/http_fetch.h"

namespace flamekit {

class TestServer {
 public:
  // Installed(): whether /usr/bin/NAME exists and is executable.
  static bool Installed(const std::string& name) {
    return ::access(("/usr/bin/" + name).c_str(), X_OK) == 0;
  }

  // FreePort(): a port nothing listens on right now (bound, then closed).
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    int port = 0;
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    if (fd >= 0) ::close(fd);
    return port;
  }

  // StartPrometheus(): prometheus with `config` (prometheus.yml text) in
  // `dir`, its TSDB in dir/data, /-/reload enabled.
  static absl::StatusOr<std::unique_ptr<TestServer>> StartPrometheus(
      const std::string& dir, const std::string& config, int port = 0) {
    if (port == 0) port = FreePort();
    std::string cfg = dir + "/prometheus.yml";
    if (!WriteText(cfg, config)) return absl::InternalError("cannot write " + cfg);
    return Start("/usr/bin/prometheus",
                 {"--config.file=" + cfg, "--storage.tsdb.path=" + dir + "/data",
                  absl::StrCat("--web.listen-address=127.0.0.1:", port),
                  "--web.enable-lifecycle", "--log.level=warn"},
                 port, dir + "/prometheus.log");
  }

  // StartAlertmanager(): prometheus-alertmanager with `config`
  // (alertmanager.yml) in `dir`, clustering off.
  static absl::StatusOr<std::unique_ptr<TestServer>> StartAlertmanager(
      const std::string& dir, const std::string& config, int port = 0) {
    if (port == 0) port = FreePort();
    std::string cfg = dir + "/alertmanager.yml";
    if (!WriteText(cfg, config)) return absl::InternalError("cannot write " + cfg);
    return Start("/usr/bin/prometheus-alertmanager",
                 {"--config.file=" + cfg, "--storage.path=" + dir + "/am-data",
                  absl::StrCat("--web.listen-address=127.0.0.1:", port),
                  "--cluster.listen-address=", "--log.level=warn"},
                 port, dir + "/alertmanager.log");
  }

  ~TestServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  std::string Url(const std::string& path = "") const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string Log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  TestServer(pid_t pid, int port, std::string log) : pid_(pid), port_(port), log_(log) {}

  static bool WriteText(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    return static_cast<bool>(out);
  }

  static absl::StatusOr<std::unique_ptr<TestServer>> Start(const std::string& binary,
                                                           std::vector<std::string> args,
                                                           int port, const std::string& log,
                                                           absl::Duration ready_timeout =
                                                               absl::Seconds(30)) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
    if (pid == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(binary.c_str(), argv.data());
      _exit(127);
    }
    std::unique_ptr<TestServer> server(new TestServer(pid, port, log));
    absl::Time deadline = absl::Now() + ready_timeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<HttpResponse> r =
          HttpGet(server->Url("/-/ready"), absl::Milliseconds(500));
      if (r.ok() && r->status == 200) return server;
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        server->pid_ = -1;
        return absl::InternalError(absl::StrCat(binary, " exited at start: ", server->Log()));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return absl::DeadlineExceededError(absl::StrCat(binary, " not ready in ",
                                                    absl::FormatDuration(ready_timeout), ": ",
                                                    server->Log()));
  }

  pid_t pid_;
  int port_;
  std::string log_;
};

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_TEST_PROMETHEUS_H_
