// SPDX-License-Identifier: Apache-2.0
//
// Folding: 1,000,000 samples over 50,000 unique stacks of depth 10-60 into
// a Profile (target: under 0.3 s), and the operations run on a folded
// profile (sorting for output, merge, thread merge, hot functions, diff).

#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "benchmarks/pipeline/synthetic_profile.h"
#include "flamekit/profile/diff.h"
#include "flamekit/profile/hot_functions.h"
#include "flamekit/profile/profile.h"

namespace flamekit {
namespace bench {
namespace {

constexpr size_t kSamples = 1000000;
constexpr size_t kUnique = 50000;

struct FoldInput {
  std::vector<std::string> names;
  std::vector<std::vector<FrameId>> stacks;
  std::vector<uint32_t> samples;  // indices into stacks
  // The samples' frames back to back, as a drained StackRing delivers
  // them: sample i is flat[offsets[i], offsets[i + 1]).
  std::vector<FrameId> flat;
  std::vector<size_t> offsets;
};

const FoldInput& Input() {
  static const FoldInput* input = [] {
    auto* in = new FoldInput;
    in->names = FrameNames(5000);
    in->stacks = UniqueStacks(kUnique, in->names.size(), 10, 60);
    std::mt19937 rng(4);
    in->samples.resize(kSamples);
    // Every stack at least once, the rest skewed towards a hot subset.
    for (size_t i = 0; i < kSamples; ++i) {
      if (i < kUnique) {
        in->samples[i] = static_cast<uint32_t>(i);
      } else {
        uint32_t r = rng() % kUnique;
        in->samples[i] = (rng() & 1) ? r % 1000 : r;
      }
    }
    std::shuffle(in->samples.begin(), in->samples.end(), rng);
    in->offsets.push_back(0);
    for (uint32_t s : in->samples) {
      in->flat.insert(in->flat.end(), in->stacks[s].begin(), in->stacks[s].end());
      in->offsets.push_back(in->flat.size());
    }
    return in;
  }();
  return *input;
}

Profile Folded() {
  const FoldInput& in = Input();
  Profile p;
  for (const std::string& n : in.names) p.InternFrame(n);
  for (uint32_t s : in.samples) p.AddStack(in.stacks[s], 1);
  return p;
}

void BM_Fold1MSamples50kStacks(benchmark::State& state) {
  const FoldInput& in = Input();
  const FrameId* flat = in.flat.data();
  for (auto _ : state) {
    Profile p;
    for (const std::string& n : in.names) p.InternFrame(n);
    for (size_t i = 0; i < kSamples; ++i) {
      p.AddStack(absl::MakeConstSpan(flat + in.offsets[i], flat + in.offsets[i + 1]), 1);
    }
    benchmark::DoNotOptimize(p.stack_count());
    if (p.stack_count() != kUnique) state.SkipWithError("wrong stack count");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSamples));
  state.counters["frames_per_sample"] = static_cast<double>(in.flat.size()) / kSamples;
}
BENCHMARK(BM_Fold1MSamples50kStacks)->Unit(benchmark::kMillisecond);

void BM_SortedStackIndices(benchmark::State& state) {
  Profile p = Folded();
  for (auto _ : state) benchmark::DoNotOptimize(p.SortedStackIndices());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * p.stack_count()));
}
BENCHMARK(BM_SortedStackIndices)->Unit(benchmark::kMillisecond);

void BM_MergeProfiles(benchmark::State& state) {
  Profile a = Folded();
  Profile b = Folded();
  for (auto _ : state) {
    Profile m = a;
    m.Merge(b);
    benchmark::DoNotOptimize(m.total_samples());
  }
}
BENCHMARK(BM_MergeProfiles)->Unit(benchmark::kMillisecond);

void BM_HotFunctions(benchmark::State& state) {
  Profile p = Folded();
  for (auto _ : state) benchmark::DoNotOptimize(ComputeHotFunctions(p, 20));
}
BENCHMARK(BM_HotFunctions)->Unit(benchmark::kMillisecond);

void BM_ComputeDiff(benchmark::State& state) {
  Profile a = Folded();
  Profile b = Folded();
  for (auto _ : state) benchmark::DoNotOptimize(ComputeDiff(a, b).stacks.size());
}
BENCHMARK(BM_ComputeDiff)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bench
}  // namespace flamekit
