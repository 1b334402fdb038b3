// SPDX-License-Identifier: Apache-2.0
// File: test_metrics_server.h
//
// Testonly: a real /metrics endpoint (cpp-httplib server on 127.0.0.1, an
// ephemeral port) whose page a test changes while a watcher polls it.
// Thread-safe: SetPage() may race with requests.
//
// Example:
//
//   TestMetricsServer server;
//   server.SetPage("# TYPE q gauge\nq 5\n");
//   FetchUrl(server.Url(), absl::Seconds(1));

#ifndef FLAMEKIT_TRIGGER_TEST_METRICS_SERVER_H_
#define FLAMEKIT_TRIGGER_TEST_METRICS_SERVER_H_

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace flamekit {

class TestMetricsServer {
 public:
  // With a `token`, /metrics answers 401 unless the request carries
  // `Authorization: Bearer <token>` (as the flamekit UI does).
  explicit TestMetricsServer(std::string token = "") : token_(std::move(token)) {
    server_.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      requests_.fetch_add(1, std::memory_order_relaxed);
      if (!token_.empty() && req.get_header_value("Authorization") != "Bearer " + token_) {
        res.status = 401;
        res.set_content("missing or wrong token", "text/plain");
        return;
      }
      std::lock_guard<std::mutex> lock(mu_);
      res.set_content(page_, "text/plain; version=0.0.4");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~TestMetricsServer() {
    server_.stop();
    thread_.join();
  }
  TestMetricsServer(const TestMetricsServer&) = delete;
  TestMetricsServer& operator=(const TestMetricsServer&) = delete;

  void SetPage(std::string page) {
    std::lock_guard<std::mutex> lock(mu_);
    page_ = std::move(page);
  }
  std::string Url(absl::string_view path = "/metrics") const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  int requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  std::string token_;
  httplib::Server server_;
  std::mutex mu_;
  std::string page_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_TEST_METRICS_SERVER_H_
