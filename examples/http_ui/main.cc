// SPDX-License-Identifier: Apache-2.0
// http_ui_demo: a small service that embeds the flamekit UI. It runs
// realistic background work (CPU-bound request handling, lock contention,
// a sleeping log writer) and serves the profiler UI, printing its URL.
//
//   bazel run //examples/http_ui:http_ui_demo -- --port=8080
//   bazel run //examples/http_ui:http_ui_demo -- --host=0.0.0.0 --token=$(openssl rand -hex 16)

#include <signal.h>
#include <stdio.h>

#include <atomic>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/http_ui/demo_service.h"
#include "flamekit/profile/transform.h"
#include "flamekit/profiler.h"
#include "flamekit/ui/ui_server.h"

ABSL_FLAG(std::string, host, "127.0.0.1",
          "Address to serve the UI on; anything but loopback needs --token");
ABSL_FLAG(int, port, 8080, "Port for the UI (0: any free port)");
ABSL_FLAG(std::string, token, "", "Token every request must carry (Bearer or the login page)");
ABSL_FLAG(std::string, dir, "",
          "Where profiles are kept, a directory of this user that nobody else may write to "
          "(default: $STATE_DIRECTORY, else $XDG_STATE_HOME/flamekit-ui, else "
          "~/.local/state/flamekit-ui)");
ABSL_FLAG(int, max_store_mb, 512, "Cap on the stored profiles; the oldest go first");
ABSL_FLAG(int, request_threads, 1, "CPU-bound request handler threads");
ABSL_FLAG(std::string, default_event, "cpu", "Event the UI pre-selects");
ABSL_FLAG(std::string, default_interval, "10ms", "Interval the UI pre-fills");
ABSL_FLAG(std::string, transforms, "",
          "Transform list (JSON, see transform.h) applied to every profile from the UI");
ABSL_FLAG(int, exit_after_s, 0, "Exit after this many seconds (0: run until Ctrl-C)");

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "a demo service that embeds the flamekit profiler UI: it runs CPU-bound request "
      "handling, lock contention and a sleeping log writer, and serves the UI.\n"
      "  http_ui --port=8080\n"
      "  http_ui --host=0.0.0.0 --token=$(openssl rand -hex 16)\n"
      "Flags: --host --port --token --dir --max_store_mb --request_threads --default_event "
      "--default_interval --transforms --exit_after_s (--helpfull lists them all)");
  absl::ParseCommandLine(argc, argv);

  // A bad transform list is refused now, in one line, not at the first
  // Start from the UI.
  const std::string transforms = absl::GetFlag(FLAGS_transforms);
  if (!transforms.empty()) {
    absl::StatusOr<flamekit::TransformList> parsed =
        flamekit::TransformList::FromJson(transforms, "--transforms");
    if (!parsed.ok()) {
      fprintf(stderr, "http_ui: --transforms: %s\n", std::string(parsed.status().message()).c_str());
      return 2;
    }
  }

  flamekit::ProfilerOptions defaults;
  defaults.event = absl::GetFlag(FLAGS_default_event);
  absl::StatusOr<flamekit::PerfPeriod> interval =
      flamekit::ParsePerfInterval(absl::GetFlag(FLAGS_default_interval));
  if (!interval.ok()) {
    fprintf(stderr, "--default_interval: %s\n", interval.status().ToString().c_str());
    return 2;
  }
  if (interval->interval > absl::ZeroDuration()) defaults.interval = interval->interval;
  defaults.interval_events = interval->count;
  defaults.transforms_json = absl::GetFlag(FLAGS_transforms);
  absl::Status set = flamekit::Profiler::Global().SetDefaultOptions(defaults);
  if (!set.ok()) {
    fprintf(stderr, "default options: %s\n", set.ToString().c_str());
    return 2;
  }

  flamekit::demo::DemoServiceOptions service_options;
  service_options.request_threads = absl::GetFlag(FLAGS_request_threads);
  flamekit::demo::DemoService service;
  service.Start(service_options);

  flamekit::UiOptions options;
  options.dir = absl::GetFlag(FLAGS_dir);
  options.token = absl::GetFlag(FLAGS_token);
  options.max_store_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_max_store_mb)) << 20;
  absl::StatusOr<std::unique_ptr<flamekit::UiServer>> ui =
      flamekit::ServeUi(absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port), options);
  if (!ui.ok()) {
    fprintf(stderr, "cannot start the profiler UI: %s\n", ui.status().ToString().c_str());
    service.Stop();
    return ui.status().code() == absl::StatusCode::kUnavailable ? 3 : 2;
  }
  printf("flamekit profiler UI: %s\n", (*ui)->url().c_str());
  printf("profiles are kept in %s\n", (*ui)->store().directory().c_str());
  if (!options.token.empty()) printf("sign in with the token given in --token\n");
  printf("press Ctrl-C to stop\n");
  fflush(stdout);

  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  absl::Time end = absl::GetFlag(FLAGS_exit_after_s) > 0
                       ? absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_exit_after_s))
                       : absl::InfiniteFuture();
  while (!g_stop.load() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(100));
  (*ui)->Stop();
  service.Stop();
  printf("handled %llu requests\n", static_cast<unsigned long long>(service.requests_handled()));
  return 0;
}
