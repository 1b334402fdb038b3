// SPDX-License-Identifier: Apache-2.0
// File: ui_load.h
//
// The UI load experiment shared by ui_load_test and ui_load_benchmark: the
// demo service runs (one CPU-bound request thread, lock contention, IO)
// while the real profiler samples it, started through the UI; phases
// without and with a bounded HTTP load (N keep-alive connections to the
// list and metrics pages) alternate, and the service's own throughput is
// compared. Test/benchmark only; call from an ordinary thread.

#ifndef FLAMEKIT_BENCHMARKS_UI_UI_LOAD_H_
#define FLAMEKIT_BENCHMARKS_UI_UI_LOAD_H_

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/http_ui/demo_service.h"
#include "flamekit/profiler.h"
#include "flamekit/ui/ui_load_util.h"
#include "flamekit/ui/ui_server.h"

namespace flamekit {
namespace ui_bench {

struct LoadExperiment {
  double base_rps = 0;    // service requests/s without HTTP load
  double loaded_rps = 0;  // ... with it
  double drop_percent = 0;
  // The same per CPU second of the request thread: what the UI's work does
  // to the service itself (cache, signals), whatever else the machine runs.
  double base_per_cpu_s = 0;
  double loaded_per_cpu_s = 0;
  double cpu_drop_percent = 0;
  // Process CPU (all threads, clients included) per wall second, in cores,
  // without and with the load: what the UI costs the machine.
  double base_cores = 0;
  double loaded_cores = 0;
  uint64_t http_requests = 0;
  uint64_t http_errors = 0;
  std::string first_error;
  absl::Duration p50 = absl::ZeroDuration();
  absl::Duration p99 = absl::ZeroDuration();
  uint64_t profile_samples = 0;
  std::string error;  // set when the experiment could not run
};

inline LoadExperiment RunLoadExperiment(int rounds, absl::Duration phase, int connections,
                                        absl::Duration period) {
  LoadExperiment out;
  const char* tmp = ::getenv("TEST_TMPDIR");
  UiOptions options;
  options.dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/ui_load_", ::getpid());
  absl::StatusOr<std::unique_ptr<UiServer>> ui = ServeUi("127.0.0.1", 0, options);
  if (!ui.ok()) {
    out.error = ui.status().ToString();
    return out;
  }
  // A few stored profiles so the list page has something to list.
  for (int i = 0; i < 5; ++i) {
    Profile p;
    FrameId f = p.InternFrame("main");
    FrameId s[] = {f};
    p.AddStack(s, 1000 + i);
    (void)(*ui)->store().Save(p);
  }
  demo::DemoService service;
  demo::DemoServiceOptions service_options;
  service.Start(service_options);
  UiStartOptions start;
  start.event = "cpu";
  start.interval = absl::Milliseconds(10);
  absl::Status started = (*ui)->StartProfiling(start);
  if (!started.ok()) {
    out.error = started.ToString();
    return out;
  }
  absl::SleepFor(absl::Milliseconds(500));  // warm up
  double base_requests = 0, base_seconds = 0, loaded_requests = 0, loaded_seconds = 0;
  double base_cpu = 0, loaded_cpu = 0, base_process_cpu = 0, loaded_process_cpu = 0;
  auto process_cpu = [] {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  for (int round = 0; round < rounds; ++round) {
    for (bool loaded : {false, true}) {
      uint64_t before = service.requests_handled();
      double cpu_before = service.request_cpu_seconds();
      double process_before = process_cpu();
      absl::Time t0 = absl::Now();
      if (loaded) {
        ui_testing::UiLoadResult r =
            ui_testing::RunUiLoad((*ui)->port(), connections, phase, period, "");
        out.http_requests += r.requests;
        out.http_errors += r.errors;
        if (out.first_error.empty()) out.first_error = r.first_error;
        out.p50 = std::max(out.p50, r.p50);
        out.p99 = std::max(out.p99, r.p99);
      } else {
        absl::SleepFor(phase);
      }
      double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
      double done = static_cast<double>(service.requests_handled() - before);
      (loaded ? loaded_requests : base_requests) += done;
      (loaded ? loaded_seconds : base_seconds) += seconds;
      (loaded ? loaded_cpu : base_cpu) += service.request_cpu_seconds() - cpu_before;
      (loaded ? loaded_process_cpu : base_process_cpu) += process_cpu() - process_before;
    }
  }
  absl::StatusOr<StoredProfile> saved = (*ui)->StopProfiling();
  if (saved.ok()) out.profile_samples = saved->samples;
  service.Stop();
  (*ui)->Stop();
  out.base_rps = base_requests / base_seconds;
  out.loaded_rps = loaded_requests / loaded_seconds;
  out.drop_percent = 100.0 * (1.0 - out.loaded_rps / out.base_rps);
  out.base_per_cpu_s = base_requests / base_cpu;
  out.loaded_per_cpu_s = loaded_requests / loaded_cpu;
  out.cpu_drop_percent = 100.0 * (1.0 - out.loaded_per_cpu_s / out.base_per_cpu_s);
  out.base_cores = base_process_cpu / base_seconds;
  out.loaded_cores = loaded_process_cpu / loaded_seconds;
  return out;
}

}  // namespace ui_bench
}  // namespace flamekit

#endif  // FLAMEKIT_BENCHMARKS_UI_UI_LOAD_H_
