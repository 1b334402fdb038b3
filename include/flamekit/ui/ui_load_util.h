// SPDX-License-Identifier: Apache-2.0
// File: ui_load_util.h
//
// A bounded HTTP load for the UI: N client threads on 127.0.0.1, each with
// one keep-alive connection (cpp-httplib's client), alternately fetching
// /api/profiles and /metrics at a fixed rate for a fixed time. Test and
// benchmark only; RunUiLoad() may be called from any ordinary thread.
//
// Example:
//
//   UiLoadResult r = RunUiLoad(port, /*connections=*/20, absl::Seconds(10),
//                              /*period=*/absl::Milliseconds(50), "");
//   EXPECT_EQ(r.errors, 0u);

#ifndef FLAMEKIT_UI_UI_LOAD_UTIL_H_
#define FLAMEKIT_UI_UI_LOAD_UTIL_H_

#include <stdint.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "httplib.h"

namespace flamekit {
namespace ui_testing {

struct UiLoadResult {
  uint64_t requests = 0;
  uint64_t errors = 0;       // no response, or a status other than 200
  std::string first_error;
  absl::Duration p50 = absl::ZeroDuration();
  absl::Duration p99 = absl::ZeroDuration();
};

UiLoadResult RunUiLoad(int port, int connections, absl::Duration duration, absl::Duration period,
                       absl::string_view token);

// Implementation details follow.

inline UiLoadResult RunUiLoad(int port, int connections, absl::Duration duration,
                              absl::Duration period, absl::string_view token) {
  std::atomic<uint64_t> requests{0}, errors{0};
  std::mutex mu;
  std::string first_error;
  std::vector<absl::Duration> latencies;
  absl::Time end = absl::Now() + duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(true);
      client.set_connection_timeout(5, 0);
      client.set_read_timeout(10, 0);
      if (!token.empty()) client.set_bearer_token_auth(std::string(token));
      std::vector<absl::Duration> mine;
      // Spread the clients over the period so they do not fire together.
      absl::Time next = absl::Now() + period * c / std::max(connections, 1);
      int i = 0;
      while (true) {
        absl::Time now = absl::Now();
        if (now >= end) break;
        if (next > now) absl::SleepFor(std::min(next - now, end - now));
        if (absl::Now() >= end) break;
        next += period;
        const char* path = (i++ % 2 == 0) ? "/api/profiles" : "/metrics";
        absl::Time sent = absl::Now();
        httplib::Result result = client.Get(path);
        mine.push_back(absl::Now() - sent);
        requests.fetch_add(1, std::memory_order_relaxed);
        if (!result || result->status != 200) {
          errors.fetch_add(1, std::memory_order_relaxed);
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) {
            first_error = result ? absl::StrCat(path, ": HTTP ", result->status)
                                 : absl::StrCat(path, ": ", httplib::to_string(result.error()));
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  UiLoadResult r;
  r.requests = requests.load();
  r.errors = errors.load();
  r.first_error = first_error;
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    r.p50 = latencies[latencies.size() / 2];
    r.p99 = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  return r;
}

}  // namespace ui_testing
}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_LOAD_UTIL_H_
