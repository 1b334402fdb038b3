// SPDX-License-Identifier: Apache-2.0
// What `flamekit watch` costs while it waits: one poll of each metric
// source, parsing a /metrics page, the look-back ring's Add/Snapshot, and a
// whole Watcher::PollOnce(). At the default --every 1s, watch's own CPU use
// is (cost of one poll) / 1 s: e.g. 30 us per poll = 0.003 % of a core.
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/lookback_ring.h"
#include "flamekit/trigger/metric_source.h"
#include "flamekit/trigger/metric_watch.h"
#include "flamekit/trigger/metric_selector.h"
#include "flamekit/trigger/prometheus_text.h"
#include "flamekit/trigger/test_metrics_server.h"

namespace flamekit {
namespace {

std::string MakePage(int series) {
  std::string page = "# HELP req_total Requests.\n# TYPE req_total counter\n";
  for (int i = 0; i < series; ++i) {
    absl::StrAppend(&page, "req_total{code=\"", 200 + i % 5, "\",handler=\"/api/v1/h", i,
                    "\",method=\"GET\"} ", 1000 + i, "\n");
  }
  return page;
}

void BM_ProcessCpuSourcePoll(benchmark::State& state) {
  auto source = ProcessCpuSource::Create(getpid());
  for (auto _ : state) benchmark::DoNotOptimize((*source)->Poll());
}
BENCHMARK(BM_ProcessCpuSourcePoll);

void BM_ProcessRssSourcePoll(benchmark::State& state) {
  auto source = ProcessRssSource::Create(getpid());
  for (auto _ : state) benchmark::DoNotOptimize((*source)->Poll());
}
BENCHMARK(BM_ProcessRssSourcePoll);

void BM_ParsePrometheusPage(benchmark::State& state) {
  std::string page = MakePage(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(ParsePrometheusText(page));
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(page.size()));
}
BENCHMARK(BM_ParsePrometheusPage)->Arg(10)->Arg(1000);

void BM_SelectWithRegex(benchmark::State& state) {
  auto page = ParsePrometheusText(MakePage(1000));
  auto sel = MetricSelector::Parse(R"(req_total{code=~"5..",handler=~"/api/.*"})");
  for (auto _ : state) benchmark::DoNotOptimize(SelectValue(*page, *sel));
}
BENCHMARK(BM_SelectWithRegex);

// One poll over HTTP to a local endpoint (client side; the server runs on
// another thread of this process).
void BM_PrometheusSourcePollHttp(benchmark::State& state) {
  TestMetricsServer server;
  server.SetPage(MakePage(static_cast<int>(state.range(0))));
  std::string url = server.Url();
  PrometheusSource source(url, *MetricSelector::Parse(R"(req_total{code="500"})"),
                          [url] { return FetchUrl(url, absl::Seconds(2)); });
  for (auto _ : state) benchmark::DoNotOptimize(source.Poll());
}
BENCHMARK(BM_PrometheusSourcePollHttp)->Arg(10)->Arg(1000)->UseRealTime();

void BM_LookbackRingAdd(benchmark::State& state) {
  LookbackRing ring(absl::Seconds(10), LookbackRing::CapacityFor(absl::Seconds(10), 19, 8));
  absl::Time t = absl::Now();
  LookbackSample s;
  s.frames.assign(static_cast<size_t>(state.range(0)), 0x400000);
  for (auto _ : state) {
    t += absl::Milliseconds(7);
    s.time = t;
    ring.Add(s);  // a copy, as a sampler would hand over a fresh stack
  }
}
BENCHMARK(BM_LookbackRingAdd)->Arg(16)->Arg(64);

void BM_LookbackRingSnapshot(benchmark::State& state) {
  LookbackRing ring(absl::Seconds(10), LookbackRing::CapacityFor(absl::Seconds(10), 19, 8));
  absl::Time t = absl::Now();
  for (int i = 0; i < 19 * 10 * 8; ++i) {
    LookbackSample s;
    s.time = t + absl::Microseconds(6579 * i);
    s.frames.assign(32, 0x400000);
    ring.Add(std::move(s));
  }
  absl::Time now = t + absl::Seconds(10);
  for (auto _ : state) benchmark::DoNotOptimize(ring.Snapshot(now));
}
BENCHMARK(BM_LookbackRingSnapshot);

// A whole idle poll: read the metric, run the trigger (no capture).
void BM_WatcherPollOnceIdle(benchmark::State& state) {
  WatchOptions o;
  o.id = "bench";
  o.dir = absl::StrCat("/tmp/flamekit-watch-bench-", getpid());
  o.trigger.threshold = 1e9;  // never fires
  auto watcher = Watcher::Create(o, std::move(*ProcessCpuSource::Create(getpid())),
                                 [](const CaptureRequest&) { return absl::OkStatus(); });
  for (auto _ : state) benchmark::DoNotOptimize((*watcher)->PollOnce());
}
BENCHMARK(BM_WatcherPollOnceIdle);

}  // namespace
}  // namespace flamekit
