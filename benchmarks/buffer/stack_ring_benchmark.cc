// SPDX-License-Identifier: Apache-2.0
// StackRing: TryPush of a 64-frame stack plus its share of the drain, in ns
// per sample, with 1 and 2 pushing threads (thread 0 also drains, as the
// collector would). Target: under 100 ns uncontended.
//
//   bazel run -c opt //benchmarks/buffer:stack_ring_benchmark

#include <stdint.h>

#include <atomic>
#include <memory>

#include "benchmark/benchmark.h"
#include "flamekit/buffer/stack_ring.h"

namespace flamekit {
namespace {

StackRing* SharedRing() {
  static StackRing* ring = StackRing::Create(4096)->release();
  return ring;
}

void BM_StackRingPushDrain64(benchmark::State& state) {
  StackRing* ring = SharedRing();
  uint64_t frames[64];
  for (int i = 0; i < 64; ++i) frames[i] = 0x400000 + i * 64;
  uint64_t drained = 0, checksum = 0;
  const uint64_t dropped_before = ring->dropped();
  int64_t n = 0;
  for (auto _ : state) {
    frames[0] = static_cast<uint64_t>(n);
    ring->TryPush(static_cast<uint32_t>(state.thread_index() + 1), n, 1, frames, 64, 0);
    if (state.thread_index() == 0 && (++n & 63) == 0) {
      drained += ring->Drain([&](const StackRecord& r) { checksum += r.frames[63]; });
    } else if (state.thread_index() != 0) {
      ++n;
    }
  }
  if (state.thread_index() == 0) {
    drained += ring->Drain([&](const StackRecord& r) { checksum += r.frames[63]; });
    state.counters["drained"] = static_cast<double>(drained);
    state.counters["dropped"] = static_cast<double>(ring->dropped() - dropped_before);
  }
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StackRingPushDrain64)->Threads(1)->Threads(2)->UseRealTime();

// The push alone, into a ring that is drained outside the timed region.
// One ring for every run of this function (Google Benchmark calls it several
// times while it sizes the iteration count): a new ring of kMaxCapacity per
// call was half a gigabyte to fault in each time, 45 s of a --quick run
// spent in the kernel, and timed pushes into untouched pages.
constexpr size_t kTryPushRingCapacity = size_t{1} << 16;

void BM_StackRingTryPush64(benchmark::State& state) {
  static StackRing* ring = StackRing::Create(kTryPushRingCapacity)->release();
  ring->Drain([](const StackRecord&) {});
  uint64_t frames[64] = {};
  size_t pushed = 0;
  for (auto _ : state) {
    ring->TryPush(1, 0, 1, frames, 64, 0);
    if (++pushed == kTryPushRingCapacity) {
      state.PauseTiming();
      ring->Drain([](const StackRecord&) {});
      pushed = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StackRingTryPush64);

}  // namespace
}  // namespace flamekit
