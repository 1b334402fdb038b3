// SPDX-License-Identifier: Apache-2.0
#include "flamekit/trigger/attach_capture.h"

#include <signal.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/trigger/test_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string OnsetWorkloadPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/flamekit/include/flamekit/trigger/onset_workload");
}

std::string TempDir(absl::string_view name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// CPU time the process has used so far, in seconds (-1 when unreadable).
double ProcessCpuSeconds(pid_t pid) {
  clockid_t clock;
  if (clock_getcpuclockid(pid, &clock) != 0) return -1;
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return -1;
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Skips when perf events cannot be opened on a child here.
#define SKIP_WITHOUT_PERF(status)                                                  \
  if ((status).code() == absl::StatusCode::kPermissionDenied ||                    \
      (status).code() == absl::StatusCode::kFailedPrecondition) {                  \
    GTEST_SKIP() << "perf events unavailable: " << (status).message();             \
  }

TEST(LookbackSamplerTest, FillsTheRingWithNamedStacksAtTheLowRate) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  target.Signal(SIGUSR1);  // busy in OnsetSpikeFunction
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<SharedAttachSymbols> symbols,
                                SharedAttachSymbols::ForProcess(target.pid()));
  auto ring = std::make_shared<LookbackRing>(absl::Seconds(10), 4096);
  LookbackSamplerOptions options;
  options.pid = target.pid();
  double cpu0 = ProcessCpuSeconds(target.pid());
  absl::StatusOr<std::unique_ptr<LookbackSampler>> sampler =
      LookbackSampler::Start(options, ring, symbols);
  SKIP_WITHOUT_PERF(sampler.status());
  ASSERT_THAT(sampler.status(), IsOk());
  absl::SleepFor(absl::Milliseconds(4500));
  std::vector<LookbackSample> tail = (*sampler)->Pause();
  double cpu = ProcessCpuSeconds(target.pid()) - cpu0;
  std::vector<LookbackSample> samples = ring->Snapshot(absl::Now());
  for (LookbackSample& s : tail) samples.push_back(std::move(s));
  LookbackSampler::Stats stats = (*sampler)->stats();
  absl::Time stopping = absl::Now();
  (*sampler)->Stop();
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(2)) << "Stop() must join promptly";
  EXPECT_GE(stats.batches, 2u);  // whole 2 s batches and the one Pause() cut
  if (cpu < 1.0) GTEST_SKIP() << "the target got only " << cpu << " s of CPU in 4.5 s";

  uint64_t total = 0, hot = 0;
  for (const LookbackSample& s : samples) {
    total += s.weight;
    for (uint64_t id : s.frames) {
      if (absl::StrContains((*sampler)->names().Get(id).name, "OnsetSpikeFunction")) {
        hot += s.weight;
        break;
      }
    }
  }
  // FLAMEKIT_LOOKBACK_HZ per second of the target's CPU time, less up to
  // one sample per batch (each batch's events start a fresh period).
  double expected = cpu * FLAMEKIT_LOOKBACK_HZ;
  EXPECT_GE(total, expected * 0.6 - stats.batches) << "cpu " << cpu << " s";
  EXPECT_LE(total, expected * 1.5 + 3) << "cpu " << cpu << " s";
  EXPECT_GE(hot, total * 8 / 10) << "leaf frames should be named OnsetSpikeFunction";
  EXPECT_EQ(stats.samples, total);
}

TEST(LookbackSamplerTest, StopsWhenTheTargetExits) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<SharedAttachSymbols> symbols,
                                SharedAttachSymbols::ForProcess(target.pid()));
  auto ring = std::make_shared<LookbackRing>(absl::Seconds(10), 1024);
  LookbackSamplerOptions options;
  options.pid = target.pid();
  absl::StatusOr<std::unique_ptr<LookbackSampler>> sampler =
      LookbackSampler::Start(options, ring, symbols);
  SKIP_WITHOUT_PERF(sampler.status());
  ASSERT_THAT(sampler.status(), IsOk());
  absl::SleepFor(absl::Milliseconds(300));
  target.Kill();
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!(*sampler)->stats().target_gone && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE((*sampler)->stats().target_gone);
  (void)(*sampler)->Pause();  // returns at once once the target is gone
  (*sampler)->Stop();
}

// What `flamekit watch PID --cpu-above 50 [--event E] [--lookback L]`
// parses to (the parser is the CLI's, examples/cli/watch_command.cc).
WatchCommandOptions CpuWatch(pid_t pid, const std::string& event = "cpu",
                             absl::Duration lookback = absl::Seconds(10)) {
  WatchCommandOptions o;
  o.pid = pid;
  o.watch.id = absl::StrCat(pid);
  o.watch.event = event;
  o.watch.lookback = lookback;
  o.watch.trigger.threshold = 50;
  return o;
}

TEST(AttachCaptureTest, MetricWatchWithoutPidSaysWhatToDo) {
  WatchCommandOptions o;  // --metric http://127.0.0.1:9/metrics up --above 1
  o.source = WatchCommandOptions::Source::kMetric;
  o.url = "http://127.0.0.1:9/metrics";
  o.selector = "up";
  o.watch.id = "127.0.0.1_9";
  EXPECT_THAT(MakeAttachWatchCapture(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give the PID")));
}

TEST(AttachCaptureTest, UnknownEventFailsAtStartup) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  WatchCommandOptions o = CpuWatch(target.pid(), "nosuch");
  EXPECT_THAT(MakeAttachWatchCapture(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nosuch")));
}

TEST(AttachCaptureTest, GoneProcessFailsAtStartup) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  pid_t pid = target.pid();
  target.Kill();
  WatchCommandOptions o = CpuWatch(pid);
  EXPECT_THAT(MakeAttachWatchCapture(o).status(), StatusIs(absl::StatusCode::kNotFound));
}

// The synthetic roots are markers, drawn in the marker colour (grey in the
// SVG: r = g = b), not as user code (orange-red).
TEST(AttachCaptureTest, RootsAreMarkersNotUserCode) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  std::string dir = TempDir("capture_marker");
  absl::StatusOr<std::shared_ptr<SharedAttachSymbols>> symbols =
      SharedAttachSymbols::ForProcess(target.pid());
  ASSERT_THAT(symbols.status(), IsOk());
  AttachCaptureOptions options;
  options.pid = target.pid();
  CaptureRequest request;
  request.path = dir + "/capture.svg";
  request.reason = "cpu_above_50";
  request.fired_at = absl::Now();
  request.duration = absl::Milliseconds(500);
  absl::Status written = WriteWatchCapture(options, request, {}, nullptr, **symbols);
  SKIP_WITHOUT_PERF(written);
  ASSERT_THAT(written, IsOk());
  std::string svg = ReadFile(request.path);
  size_t at = svg.find("<title>[capture after trigger]");
  ASSERT_NE(at, std::string::npos) << svg.substr(0, 2000);
  size_t fill = svg.find("fill=\"rgb(", at);
  ASSERT_NE(fill, std::string::npos);
  int r = -1, g = -2, b = -3;
  ASSERT_EQ(sscanf(svg.c_str() + fill, "fill=\"rgb(%d,%d,%d)", &r, &g, &b), 3);
  EXPECT_TRUE(r == g && g == b) << "rgb(" << r << "," << g << "," << b << ")";
}

// The capture function on its own, into collapsed text: the look-back
// part holds BaselineFunction (which only runs before SIGUSR1) under its
// root, the full-rate part the spike under the other.
TEST(AttachCaptureTest, CaptureHasTheLookbackBeforeTheTriggerAndTheSpikeAfter) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  std::string dir = TempDir("capture_collapsed");
  WatchCommandOptions o = CpuWatch(target.pid(), "cpu", absl::Seconds(3));
  absl::StatusOr<WatchCapture> wc = MakeAttachWatchCapture(o);
  SKIP_WITHOUT_PERF(wc.status());
  ASSERT_THAT(wc.status(), IsOk());
  ASSERT_NE(wc->lookback, nullptr);
  double cpu0 = ProcessCpuSeconds(target.pid());
  absl::SleepFor(absl::Milliseconds(2500));
  double baseline_cpu = ProcessCpuSeconds(target.pid()) - cpu0;
  absl::Time signalled = absl::Now();
  target.Signal(SIGUSR1);
  absl::SleepFor(absl::Milliseconds(300));
  CaptureRequest request;
  request.path = dir + "/capture.collapsed";
  request.reason = "cpu_above_50";
  request.value = 99;
  request.fired_at = absl::Now();
  request.duration = absl::Seconds(1);
  request.lookback_window = absl::Seconds(3);
  request.lookback = wc->lookback->Snapshot(request.fired_at);
  double cpu1 = ProcessCpuSeconds(target.pid());
  ASSERT_THAT(wc->capture(request), IsOk());
  double spike_cpu = ProcessCpuSeconds(target.pid()) - cpu1;
  for (const LookbackSample& s : request.lookback) EXPECT_LE(s.time, request.fired_at);

  std::string text = ReadFile(request.path);
  uint64_t lookback_baseline = 0, lookback_total = 0, capture_spike = 0, capture_baseline = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t space = line.rfind(' ');
    ASSERT_NE(space, absl::string_view::npos) << line;
    uint64_t count = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(space + 1), &count)) << line;
    if (absl::StartsWith(line, kLookbackRootName)) {
      lookback_total += count;
      if (absl::StrContains(line, "BaselineFunction")) lookback_baseline += count;
    } else {
      ASSERT_TRUE(absl::StartsWith(line, kCaptureRootName)) << line;
      if (absl::StrContains(line, "OnsetSpikeFunction")) capture_spike += count;
      if (absl::StrContains(line, "BaselineFunction")) capture_baseline += count;
    }
  }
  EXPECT_EQ(capture_baseline, 0u) << "the baseline stopped at SIGUSR1, before the capture";
  // Each look-back batch (2 s) samples a thread only after 1/19 s of its
  // CPU: judge the look-back only when the baseline got clearly more.
  if (baseline_cpu < 0.25) {
    GTEST_SKIP() << "the baseline got only " << baseline_cpu << " s of CPU in 2.5 s";
  }
  EXPECT_GT(lookback_total, 0u) << text;
  EXPECT_GT(lookback_baseline, 0u) << "no look-back sample from before the signal at "
                                   << signalled << ":\n" << text;
  if (spike_cpu >= 0.3) {
    EXPECT_GT(capture_spike, 0u) << text;
  }
}

}  // namespace
}  // namespace flamekit
