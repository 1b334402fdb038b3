// SPDX-License-Identifier: Apache-2.0
// The cost of one sample in the signal handler path: read registers from a
// ucontext, find the thread's stack bounds, walk 64 frame pointers, push to
// the StackRing (drained every 1,024 samples, included); the same walked
// by .eh_frame rules, and the cost of building those rules. Also one real
// signal round trip to the calling thread (kernel delivery + handler).
//
//   bazel run -c opt //benchmarks/profiler:handler_benchmark

#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <memory>

#include "benchmark/benchmark.h"
#include "flamekit/buffer/stack_ring.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/collect/cfi_table_builder.h"
#include "flamekit/unwind/stack_bounds.h"

namespace flamekit {
namespace {

struct Context {
  std::unique_ptr<StackRing> ring;
  ThreadStackTable table{64};
};

// Builds a 64-deep call chain and runs the benchmark loop at its bottom.
__attribute__((noinline)) void AtDepth(int depth, benchmark::State& state, Context& c) {
  if (depth > 0) {
    AtDepth(depth - 1, state, c);
    asm volatile("" ::: "memory");
    return;
  }
  ucontext_t uc;
  getcontext(&uc);
  uint64_t frames = 0, drained = 0;
  int n = 0;
  for (auto _ : state) {
    sample_internal::RecordSample(SampleSource::kCtimer, false, nullptr, &uc);
    if (++n == 1024) {
      n = 0;
      drained += c.ring->Drain([&](const StackRecord& r) { frames += r.frame_count; });
    }
  }
  drained += c.ring->Drain([&](const StackRecord& r) { frames += r.frame_count; });
  state.counters["frames_per_sample"] = drained ? static_cast<double>(frames) / drained : 0;
  state.SetItemsProcessed(state.iterations());
}

void BM_HandlerPathUnwind64AndPush(benchmark::State& state) {
  Context c;
  c.ring = std::move(*StackRing::Create(4096));
  c.table.Insert(static_cast<uint32_t>(CurrentTid()), *CurrentThreadStackBounds());
  ActivateSampling(SamplingTarget{c.ring.get(), &c.table, 64}, SampleSource::kCtimer);
  AtDepth(64, state, c);
  DeactivateSampling();
}
BENCHMARK(BM_HandlerPathUnwind64AndPush);

// The same 64 frames walked by .eh_frame rules (unwind = "dwarf"): one
// binary search of the process's rule table per frame on top.
void BM_HandlerPathCfiUnwind64AndPush(benchmark::State& state) {
  Context c;
  c.ring = std::move(*StackRing::Create(4096));
  c.table.Insert(static_cast<uint32_t>(CurrentTid()), *CurrentThreadStackBounds());
  absl::StatusOr<std::unique_ptr<Symbolizer>> symbolizer = Symbolizer::ForSelf();
  if (!symbolizer.ok()) {
    state.SkipWithError("cannot read /proc/self/maps");
    return;
  }
  CfiTableStats stats;
  std::unique_ptr<CfiTable> cfi = BuildCfiTable(**symbolizer, &stats);
  ActivateSampling(SamplingTarget{c.ring.get(), &c.table, 64, cfi.get()}, SampleSource::kCtimer);
  AtDepth(64, state, c);
  DeactivateSampling();
  state.counters["rules"] = static_cast<double>(stats.rows);
}
BENCHMARK(BM_HandlerPathCfiUnwind64AndPush);

// Building that table for this process (at Start, and after a dlopen).
void BM_BuildCfiTable(benchmark::State& state) {
  absl::StatusOr<std::unique_ptr<Symbolizer>> symbolizer = Symbolizer::ForSelf();
  if (!symbolizer.ok()) {
    state.SkipWithError("cannot read /proc/self/maps");
    return;
  }
  CfiTableStats stats;
  for (auto _ : state) {
    std::unique_ptr<CfiTable> cfi = BuildCfiTable(**symbolizer, &stats);
    benchmark::DoNotOptimize(cfi.get());
  }
  state.counters["rules"] = static_cast<double>(stats.rows);
  state.counters["bytes"] = static_cast<double>(stats.bytes);
}
BENCHMARK(BM_BuildCfiTable)->Unit(benchmark::kMillisecond);

// A real signal: tgkill to ourselves with SI_QUEUE + the wall cookie, so the
// dispatcher claims it and records a sample; the kernel's delivery cost is
// included (on this VM it dominates).
void BM_SignalRoundTrip(benchmark::State& state) {
  Context c;
  c.ring = std::move(*StackRing::Create(4096));
  c.table.Insert(static_cast<uint32_t>(CurrentTid()), *CurrentThreadStackBounds());
  ActivateSampling(SamplingTarget{c.ring.get(), &c.table, 64}, SampleSource::kWall);
  if (!InstallSignalHandler(SIGPROF, &SampleSignalCallback).ok()) {
    state.SkipWithError("cannot install SIGPROF handler");
    return;
  }
  const pid_t tid = CurrentTid();
  int n = 0;
  for (auto _ : state) {
    QueueSampleSignal(tid, SIGPROF, kWallCookie);
    if (++n == 1024) {
      n = 0;
      c.ring->Drain([](const StackRecord&) {});
    }
  }
  RestoreSignalHandler(SIGPROF);
  DeactivateSampling();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignalRoundTrip);

}  // namespace
}  // namespace flamekit
