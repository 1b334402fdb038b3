// SPDX-License-Identifier: Apache-2.0
// File: test_ingest_receiver.h
//
// Testonly: a Pyroscope /ingest stand-in (a real cpp-httplib server on
// 127.0.0.1, an ephemeral port) that keeps every request it accepts, and
// PprofRaw(), which decodes a pushed body with `go tool pprof -raw`: the
// pusher's tests and the CLI's `record --continuous --push` tests check
// what a real server would receive through the same two helpers.
// Thread-safe: requests are served on the server's threads while the test
// reads got()/seen().
//
// Example:
//
//   IngestReceiver receiver({.fail_first = 2});
//   ... push to receiver.Url() ...
//   std::string raw = PprofRaw(receiver.got()[0].body, TestDir(), &skip);

#ifndef FLAMEKIT_TRIGGER_TEST_INGEST_RECEIVER_H_
#define FLAMEKIT_TRIGGER_TEST_INGEST_RECEIVER_H_

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace flamekit {
namespace trigger_testing {

struct IngestRequest {
  std::string path;
  std::string target;  // path and query string as sent
  std::map<std::string, std::string> params;
  std::string body;
};

struct IngestBehaviour {
  int fail_first = 0;                           // answer these with 503
  absl::Duration delay = absl::ZeroDuration();  // before each answer
  // Hold every request (at most 30 s) until the receiver is destroyed, then
  // answer 503: a server that accepts and never replies.
  bool hang = false;
};

class IngestReceiver {
 public:
  explicit IngestReceiver(IngestBehaviour behaviour = {}) : behaviour_(behaviour) {
    // Any path ending in /ingest: a URL prefix (a reverse proxy's) is kept
    // by the pusher, and the tests check `path`.
    server_.Post(R"(/(.*/)?ingest)", [this](const httplib::Request& req, httplib::Response& res) {
      absl::SleepFor(behaviour_.delay);
      std::unique_lock<std::mutex> lock(mu_);
      ++seen_;
      if (behaviour_.hang) {
        cv_.wait_for(lock, std::chrono::seconds(30), [&] { return closing_; });
        res.status = 503;
        return;
      }
      if (behaviour_.fail_first > 0) {
        --behaviour_.fail_first;
        res.status = 503;
        return;
      }
      IngestRequest r{req.path, req.target, {}, req.body};
      for (const auto& [k, v] : req.params) r.params[k] = v;
      got_.push_back(std::move(r));
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib 0.11's stop() does nothing until listen_after_bind() has set
    // is_running() (cpp-httplib issues 1371, 1645; wait_until_ready() came
    // in 0.12): without this wait, a destructor that runs first joins a
    // thread that never ends. That race once made the pusher's test time
    // out after 60 s under ASan on a loaded machine.
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!server_.is_running() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  }
  ~IngestReceiver() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    server_.stop();
    thread_.join();
  }
  IngestReceiver(const IngestReceiver&) = delete;
  IngestReceiver& operator=(const IngestReceiver&) = delete;

  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  // The requests accepted (not those refused or held).
  std::vector<IngestRequest> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  // Every request that arrived.
  int seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  IngestBehaviour behaviour_;
  httplib::Server server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool closing_ = false;
  int seen_ = 0;
  std::vector<IngestRequest> got_;
  int port_ = 0;
  std::thread thread_;
};

// TestDir()
//
// $TEST_TMPDIR, or /tmp outside Bazel.
inline std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp ? tmp : "/tmp";
}

// PprofRaw()
//
// `go tool pprof -raw` of one pushed body (written to DIR/NAME), with Go's
// caches under DIR. Sets *skip and returns "" when Go is not installed
// (apt-get install golang-go).
inline std::string PprofRaw(const std::string& body, const std::string& dir,
                            const std::string& name, bool* skip) {
  if (::access("/usr/bin/go", X_OK) != 0) {
    *skip = true;
    return "";
  }
  const std::string file = absl::StrCat(dir, "/", name);
  std::ofstream(file, std::ios::binary) << body;
  const std::string cmd = absl::StrCat("HOME=", dir, " GOCACHE=", dir, "/gocache GOPATH=", dir,
                                       "/gopath go tool pprof -raw ", file, " 2>&1");
  std::string out;
  std::FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

}  // namespace trigger_testing
}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_TEST_INGEST_RECEIVER_H_
