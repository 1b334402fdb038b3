// SPDX-License-Identifier: Apache-2.0
// Render benchmarks on the input: 1,000,000 samples over 50,000
// unique stacks of depth 10-60 with C++-style names (generated here, as
// render_testing::LargeProfile: stacks share prefixes like a call tree).
//
//   bazel run -c opt //benchmarks/render:render_benchmark
//
// BM_CollapsedToHtml is the end-to-end number to compare with flamegraph.pl
// (6.9 s to SVG) and async-profiler's converter (1.1 s to HTML): parse the
// collapsed text (about 100 MB) and render the page. Targets: < 0.6 s, HTML
// < 4.5 MB. Peak memory: run_peak_memory.sh.

#include <string>

#include "benchmark/benchmark.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/render/flame_tree.h"
#include "flamekit/render/render_test_util.h"
#include "flamekit/render/write_profile.h"

namespace flamekit {
namespace {

const Profile& BigProfile() {
  static const Profile* profile = new Profile(render_testing::LargeProfile(1000000, 50000));
  return *profile;
}

const std::string& BigCollapsed() {
  static const std::string* text = new std::string(RenderCollapsed(BigProfile()));
  return *text;
}

void BM_CollapsedToHtml(benchmark::State& state) {
  const std::string& text = BigCollapsed();
  size_t html_size = 0;
  for (auto _ : state) {
    absl::StatusOr<Profile> profile = ParseCollapsed(text, "big.collapsed");
    if (!profile.ok()) {
      state.SkipWithError(profile.status().ToString().c_str());
      return;
    }
    absl::StatusOr<std::string> html = RenderFlameGraphHtml(*profile);
    html_size = html->size();
    benchmark::DoNotOptimize(html->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["collapsed_MB"] = static_cast<double>(text.size()) / 1e6;
  state.counters["html_MB"] = static_cast<double>(html_size) / 1e6;
}
BENCHMARK(BM_CollapsedToHtml)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProfileToHtml(benchmark::State& state) {
  const Profile& profile = BigProfile();
  size_t html_size = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> html = RenderFlameGraphHtml(profile);
    html_size = html->size();
    benchmark::DoNotOptimize(html->data());
  }
  state.counters["html_MB"] = static_cast<double>(html_size) / 1e6;
}
BENCHMARK(BM_ProfileToHtml)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BuildFlameTree(benchmark::State& state) {
  const Profile& profile = BigProfile();
  size_t nodes = 0;
  for (auto _ : state) {
    FlameTree tree = BuildFlameTree(profile, RenderOptions{});
    nodes = tree.nodes.size();
    benchmark::DoNotOptimize(tree.nodes.data());
  }
  state.counters["nodes"] = static_cast<double>(nodes);
}
BENCHMARK(BM_BuildFlameTree)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProfileToSvg(benchmark::State& state) {
  const Profile& profile = BigProfile();
  size_t size = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> svg = RenderFlameGraphSvg(profile);
    size = svg->size();
    benchmark::DoNotOptimize(svg->data());
  }
  state.counters["svg_MB"] = static_cast<double>(size) / 1e6;
}
BENCHMARK(BM_ProfileToSvg)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProfileToPprof(benchmark::State& state) {
  const Profile& profile = BigProfile();
  size_t size = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> gz = RenderPprof(profile);
    size = gz->size();
    benchmark::DoNotOptimize(gz->data());
  }
  state.counters["pb_gz_MB"] = static_cast<double>(size) / 1e6;
}
BENCHMARK(BM_ProfileToPprof)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ProfileToCollapsed(benchmark::State& state) {
  const Profile& profile = BigProfile();
  for (auto _ : state) {
    std::string text = RenderCollapsed(profile);
    benchmark::DoNotOptimize(text.data());
  }
}
BENCHMARK(BM_ProfileToCollapsed)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace flamekit
