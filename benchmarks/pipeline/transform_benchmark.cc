// SPDX-License-Identifier: Apache-2.0
//
// Transforms over a profile of 50,000 stacks (depth 10-60, 5,000 frames):
// each kind alone and a typical cleanup list.

#include <string>

#include "benchmark/benchmark.h"
#include "benchmarks/pipeline/synthetic_profile.h"
#include "flamekit/profile/transform.h"

namespace flamekit {
namespace bench {
namespace {

Profile Input() {
  std::vector<std::string> names = FrameNames(5000);
  Profile p;
  for (const std::string& n : names) p.InternFrame(n);
  for (const auto& s : UniqueStacks(50000, names.size(), 10, 60)) p.AddStack(s, 3);
  return p;
}

void RunList(benchmark::State& state, const char* json) {
  static const Profile* input = new Profile(Input());
  absl::StatusOr<TransformList> list = TransformList::FromJson(json);
  if (!list.ok()) {
    state.SkipWithError(std::string(list.status().message()).c_str());
    return;
  }
  size_t out_stacks = 0;
  for (auto _ : state) {
    Profile out = ApplyTransforms(*input, *list);
    out_stacks = out.stack_count();
    benchmark::DoNotOptimize(out_stacks);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * input->stack_count()));
  state.counters["stacks_out"] = static_cast<double>(out_stacks);
}

void BM_TransformReplace(benchmark::State& state) {
  RunList(state, R"js([{"replace": "std::__1::", "with": "std::"}])js");
}
BENCHMARK(BM_TransformReplace)->Unit(benchmark::kMillisecond);

void BM_TransformFilter(benchmark::State& state) {
  RunList(state, R"js([{"filter": "RequestHandler::Fn[0-9]*_Handle"}])js");
}
BENCHMARK(BM_TransformFilter)->Unit(benchmark::kMillisecond);

void BM_TransformHide(benchmark::State& state) {
  RunList(state, R"js([{"hide": "^absl::"}])js");
}
BENCHMARK(BM_TransformHide)->Unit(benchmark::kMillisecond);

void BM_TransformCollapseRecursionAndMaxDepth(benchmark::State& state) {
  RunList(state, R"js([{"collapse_recursion": true}, {"max_depth": 20}])js");
}
BENCHMARK(BM_TransformCollapseRecursionAndMaxDepth)->Unit(benchmark::kMillisecond);

void BM_TransformCleanupList(benchmark::State& state) {
  RunList(state, R"js([
    {"replace": "std::__1::", "with": "std::"},
    {"replace": "\\{lambda\\(([^)]*)\\)#\\d+\\}", "with": "{lambda(\\1)}"},
    {"replace": "<[^<>]*>", "with": "<>"},
    {"remove": "Codec::Fn1[0-9]_"},
    {"hide": "^proto2::"},
    {"collapse_recursion": true},
    {"max_depth": 40}])js");
}
BENCHMARK(BM_TransformCleanupList)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bench
}  // namespace flamekit
