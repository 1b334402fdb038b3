// SPDX-License-Identifier: Apache-2.0
// The profiled service's throughput with and without a bounded UI load
// (20 keep-alive connections, each fetching /api/profiles or /metrics every
// 50 ms), alternating 5 s phases, 4 rounds. Counters: base and loaded
// requests/s of the service, the drop in percent, UI requests, errors and
// latency.
//
//   bazel run -c opt //benchmarks/ui:ui_load_benchmark

#include <cstdlib>

#include "benchmark/benchmark.h"
#include "benchmarks/ui/ui_load.h"

namespace flamekit {
namespace {

void BM_ServiceThroughputUnderUiLoad(benchmark::State& state) {
  // FLAMEKIT_BENCHMARK_QUICK=1 (tools/run_benchmarks.sh --quick): one round
  // of 1 s phases, proving the benchmark runs (2 s instead of 40 s).
  const char* quick_env = getenv("FLAMEKIT_BENCHMARK_QUICK");
  const bool quick = quick_env != nullptr && quick_env[0] == '1';
  for (auto _ : state) {
    ui_bench::LoadExperiment e = ui_bench::RunLoadExperiment(
        /*rounds=*/quick ? 1 : 4, quick ? absl::Seconds(1) : absl::Seconds(5),
        /*connections=*/static_cast<int>(state.range(0)),
        /*period=*/absl::Milliseconds(50));
    if (!e.error.empty()) {
      state.SkipWithError(e.error.c_str());
      return;
    }
    state.counters["base_rps"] = e.base_rps;
    state.counters["loaded_rps"] = e.loaded_rps;
    state.counters["drop_pct"] = e.drop_percent;
    state.counters["per_cpu_s_base"] = e.base_per_cpu_s;
    state.counters["per_cpu_s_loaded"] = e.loaded_per_cpu_s;
    state.counters["cpu_drop_pct"] = e.cpu_drop_percent;
    state.counters["cores_base"] = e.base_cores;
    state.counters["cores_loaded"] = e.loaded_cores;
    state.counters["http_requests"] = static_cast<double>(e.http_requests);
    state.counters["http_errors"] = static_cast<double>(e.http_errors);
    state.counters["p50_ms"] = absl::ToDoubleMilliseconds(e.p50);
    state.counters["p99_ms"] = absl::ToDoubleMilliseconds(e.p99);
  }
}
BENCHMARK(BM_ServiceThroughputUnderUiLoad)->Arg(20)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();

}  // namespace
}  // namespace flamekit
