// SPDX-License-Identifier: Apache-2.0
//
// Collapsed text: parse speed in MB/s (target: at least 300 MB/s on one
// core) for sorted input (as FlameGraph writes it) and shuffled input, and
// write speed.

#include <stdlib.h>

#include <string>

#include "benchmark/benchmark.h"
#include "benchmarks/pipeline/synthetic_profile.h"
#include "flamekit/profile/collapsed_io.h"

namespace flamekit {
namespace bench {
namespace {

// 64 MB of text; 8 MB when tools/run_benchmarks.sh --quick sets
// FLAMEKIT_BENCHMARK_QUICK=1 (proves the benchmark runs; timings noisy).
size_t TextBytes() {
  const char* quick = getenv("FLAMEKIT_BENCHMARK_QUICK");
  return (quick != nullptr && quick[0] == '1') ? size_t{8} << 20 : size_t{64} << 20;
}

void BM_ParseCollapsed(benchmark::State& state) {
  const bool sorted = state.range(0) != 0;
  const size_t unique = static_cast<size_t>(state.range(1));
  const std::string text = CollapsedText(TextBytes(), unique, sorted);
  for (auto _ : state) {
    Profile p;
    CollapsedParser parser(&p, "bench");
    // Chunks of 1 MB, as ReadCollapsedFile reads files.
    absl::string_view rest = text;
    absl::Status s;
    while (!rest.empty() && s.ok()) {
      size_t n = std::min(rest.size(), size_t{1} << 20);
      s = parser.Feed(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    if (s.ok()) s = parser.Finish();
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
    benchmark::DoNotOptimize(p.total_samples());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(absl::StrCat(sorted ? "sorted" : "shuffled", ", ", unique,
                              " unique stacks, ", text.size() >> 20, " MB"));
}
BENCHMARK(BM_ParseCollapsed)
    ->Args({1, 50000})
    ->Args({0, 50000})
    ->Args({1, 2000})
    ->Unit(benchmark::kMillisecond);

void BM_WriteCollapsed(benchmark::State& state) {
  absl::StatusOr<Profile> p = ParseCollapsed(CollapsedText(TextBytes() / 4, 50000, true));
  if (!p.ok()) {
    state.SkipWithError("parse failed");
    return;
  }
  size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    absl::Status s = WriteCollapsed(*p, [&](absl::string_view text) {
      bytes += text.size();
      return absl::OkStatus();
    });
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_WriteCollapsed)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bench
}  // namespace flamekit
