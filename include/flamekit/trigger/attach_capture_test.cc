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

TEST(AttachCaptureTest, MetricWatchWithoutPidSaysWhatToDo) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      WatchCommandOptions o,
      ParseWatchArgs({"--metric", "http://127.0.0.1:9/metrics", "up", "--above", "1"}));
  EXPECT_THAT(MakeAttachWatchCapture(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give the PID")));
}

TEST(AttachCaptureTest, UnknownEventFailsAtStartup) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      WatchCommandOptions o,
      ParseWatchArgs({absl::StrCat(target.pid()), "--cpu-above", "50", "--event", "nosuch"}));
  EXPECT_THAT(MakeAttachWatchCapture(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nosuch")));
}

TEST(AttachCaptureTest, GoneProcessFailsAtStartup) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  pid_t pid = target.pid();
  target.Kill();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(WatchCommandOptions o,
                                ParseWatchArgs({absl::StrCat(pid), "--cpu-above", "50"}));
  EXPECT_THAT(MakeAttachWatchCapture(o).status(), StatusIs(absl::StatusCode::kNotFound));
}

// The capture function on its own, into collapsed text: the look-back
// part holds BaselineFunction (which only runs before SIGUSR1) under its
// root, the full-rate part the spike under the other.
TEST(AttachCaptureTest, CaptureHasTheLookbackBeforeTheTriggerAndTheSpikeAfter) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  std::string dir = TempDir("capture_collapsed");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      WatchCommandOptions o,
      ParseWatchArgs({absl::StrCat(target.pid()), "--cpu-above", "50", "--lookback", "3s"}));
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

// End to end through RunWatchCommand with the attach capture:
// flamekit watch PID --cpu-above 50 --for 2 --every 200ms --duration 2s
//   --lookback 3s --dir DIR --max-captures 1
TEST(AttachCaptureTest, WatchCapturesTheSpikeWithItsOnset) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(OnsetWorkloadPath()));
  std::string dir = TempDir("watch_e2e");
  std::vector<std::string> args = {absl::StrCat(target.pid()), "--cpu-above", "50", "--for",
                                   "2", "--every", "200ms", "--duration", "2s", "--lookback",
                                   "3s", "--dir", dir, "--max-captures", "1", "--quiet"};
  std::ostringstream out, err;
  std::atomic<bool> done{false};
  int code = -1;
  std::atomic<int64_t> give_up_ns{INT64_MAX};
  std::thread watch([&] {
    code = RunWatchCommand(args, out, err, MakeAttachWatchCapture, [&] {
      return absl::ToUnixNanos(absl::Now()) > give_up_ns.load();
    });
    done = true;
  });
  double cpu0 = ProcessCpuSeconds(target.pid());
  absl::SleepFor(absl::Milliseconds(3500));
  double baseline_cpu = ProcessCpuSeconds(target.pid()) - cpu0;
  absl::Time signalled = absl::Now();
  double cpu1 = ProcessCpuSeconds(target.pid());
  target.Signal(SIGUSR1);
  give_up_ns = absl::ToUnixNanos(signalled + absl::Seconds(30));
  watch.join();
  double spike_seconds = absl::ToDoubleSeconds(absl::Now() - signalled);
  double spike_cpu = ProcessCpuSeconds(target.pid()) - cpu1;
  std::string err_text = err.str();
  if (absl::StrContains(err_text, "perf_event_paranoid") ||
      absl::StrContains(err_text, "perf events")) {
    GTEST_SKIP() << "perf events unavailable: " << err_text;
  }
  std::vector<std::string> captures;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".html") captures.push_back(e.path().string());
  }
  if (captures.empty() && spike_cpu / spike_seconds < 1.0) {
    GTEST_SKIP() << "the spike got only " << 100 * spike_cpu / spike_seconds
                 << " % of a core (trigger line 50 %); output: " << out.str() << err_text;
  }
  ASSERT_EQ(code, 0) << out.str() << err_text;
  ASSERT_EQ(captures.size(), 1u) << out.str();
  EXPECT_THAT(captures[0], HasSubstr("-cpu-flamegraph-"));
  std::string html = ReadFile(captures[0]);
  EXPECT_TRUE(absl::StartsWith(html, "<!DOCTYPE html>") || absl::StrContains(html, "<html"))
      << html.substr(0, 200);
  EXPECT_THAT(html, HasSubstr("OnsetSpikeFunction"));
  EXPECT_THAT(html, HasSubstr("[capture after trigger]"));

  // The look-back is counted in the note and in the log.
  size_t at = html.find("includes ");
  ASSERT_NE(at, std::string::npos);
  uint64_t counted = 0;
  absl::string_view rest = absl::string_view(html).substr(at + 9);
  ASSERT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &counted)) << rest.substr(0, 80);
  std::string log = ReadFile(dir + "/watch.jsonl");
  EXPECT_THAT(log, HasSubstr("\"event\":\"capture\""));
  if (baseline_cpu < 0.35) {
    GTEST_SKIP() << "the baseline got only " << baseline_cpu << " s of CPU in 3.5 s";
  }
  EXPECT_GT(counted, 0u) << "note: " << rest.substr(0, 200);
  EXPECT_THAT(html, HasSubstr("[look-back before trigger]"));
  EXPECT_THAT(log, Not(HasSubstr("\"lookback_samples\":0,")));
  // When the trigger fired (the log's fired_at): on a loaded machine the
  // spike may take longer than the 3 s look-back to cross the line, and the
  // look-back then rightly holds only the spike's onset.
  size_t f = log.find("\"fired_at\":\"");
  ASSERT_NE(f, std::string::npos) << log;
  std::string fired_text = log.substr(f + 12, log.find('"', f + 12) - (f + 12));
  absl::Time fired;
  std::string parse_error;
  ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", fired_text, &fired, &parse_error))
      << fired_text << ": " << parse_error;
  if (fired - signalled > absl::Milliseconds(2500)) {
    GTEST_SKIP() << "the trigger fired " << (fired - signalled)
                 << " after the spike began (loaded machine), so the 3 s look-back holds "
                 << counted << " samples of the onset only";
  }
  // BaselineFunction runs only before SIGUSR1, and the capture starts after
  // the trigger: its presence means the look-back reached before the signal.
  EXPECT_THAT(html, HasSubstr("BaselineFunction"));
}

}  // namespace
}  // namespace flamekit
