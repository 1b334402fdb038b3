// SPDX-License-Identifier: Apache-2.0
// While the real profiler samples the demo service, 20 keep-alive
// connections fetch the list and metrics pages for 10 s: no request may
// fail. The service's throughput drop is printed (the benchmark
// ui_load_benchmark measures it with more rounds).

#include <stdio.h>

#include "benchmarks/ui/ui_load.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

TEST(UiLoadTest, TwentyConnectionsForTenSecondsWithoutErrors) {
  ui_bench::LoadExperiment e =
      ui_bench::RunLoadExperiment(/*rounds=*/1, absl::Seconds(10), /*connections=*/20,
                                  /*period=*/absl::Milliseconds(50));
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.http_errors, 0u) << e.first_error;
  // The loop ran: at least half of the 20 x 200 requests it schedules.
  EXPECT_GE(e.http_requests, 2000u);
  EXPECT_GT(e.base_rps, 0);
  EXPECT_GT(e.loaded_rps, 0);  // the service kept working
  EXPECT_GT(e.profile_samples, 0u);
  printf("service per CPU second: %.1f alone, %.1f under UI load (drop %.2f%%); "
         "process cores %.2f -> %.2f\n",
         e.base_per_cpu_s, e.loaded_per_cpu_s, e.cpu_drop_percent, e.base_cores, e.loaded_cores);
  printf("service: %.1f req/s alone, %.1f req/s under UI load (drop %.2f%%); "
         "UI: %llu requests, p50 %s, p99 %s; profile %llu samples\n",
         e.base_rps, e.loaded_rps, e.drop_percent,
         static_cast<unsigned long long>(e.http_requests), absl::FormatDuration(e.p50).c_str(),
         absl::FormatDuration(e.p99).c_str(), static_cast<unsigned long long>(e.profile_samples));
  RecordProperty("drop_percent", std::to_string(e.drop_percent));
}

}  // namespace
}  // namespace flamekit
