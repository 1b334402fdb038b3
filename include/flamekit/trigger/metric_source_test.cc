// SPDX-License-Identifier: Apache-2.0
#include "flamekit/trigger/metric_source.h"

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/test_metrics_server.h"
#include "flamekit/trigger/test_process.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

// CPU time of another process, from the kernel's per-process CPU clock: an
// independent measurement of what /proc/PID/stat reports in ticks.
double ProcessCpuSeconds(pid_t pid) {
  clockid_t clock;
  if (clock_getcpuclockid(pid, &clock) != 0) return -1;
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return -1;
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(ProcStatTest, ParsesCommandNamesWithSpacesAndParentheses) {
  std::string fields;
  for (int i = 4; i <= 52; ++i) {
    // utime=14 -> 1400, stime=15 -> 1500, starttime=22 -> 2200
    fields += absl::StrCat(" ", i == 14 ? 1400 : i == 15 ? 1500 : i == 22 ? 2200 : i);
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(ProcStatTimes t,
                                ParseProcStat("1234 (my (odd) prog) R" + fields + "\n"));
  EXPECT_EQ(t.state, 'R');
  EXPECT_EQ(t.utime_ticks, 1400u);
  EXPECT_EQ(t.stime_ticks, 1500u);
  EXPECT_EQ(t.start_ticks, 2200u);
  EXPECT_THAT(ParseProcStat("1234 no parens").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseProcStat("1234 (x) R 1 2 3").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcessCpuSourceTest, MatchesTheKernelCpuClockOfASpikingProcess) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess p, TestProcess::Start(SpikeWorkloadPath()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto source, ProcessCpuSource::Create(p.pid()));
  EXPECT_EQ(source->Name(), "cpu");
  absl::SleepFor(absl::Milliseconds(500));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> idle, source->Poll());
  ASSERT_TRUE(idle.has_value());
  EXPECT_LT(*idle, 10.0) << "an idle workload should use almost no CPU";

  p.Signal(SIGUSR1);
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_THAT(source->Poll().status(), IsOk());  // restart the window here
  double cpu0 = ProcessCpuSeconds(p.pid());
  double wall0 = MonotonicSeconds();
  absl::SleepFor(absl::Seconds(1));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> busy, source->Poll());
  double cpu1 = ProcessCpuSeconds(p.pid());
  double wall1 = MonotonicSeconds();
  ASSERT_TRUE(busy.has_value());
  double expected = 100.0 * (cpu1 - cpu0) / (wall1 - wall0);
  // One tick (10 ms) of resolution over ~1 s, plus the few ms between the
  // two clocks' reads.
  EXPECT_NEAR(*busy, expected, 6.0) << "kernel CPU clock says " << expected << "%";
  // The spike burns a core when it gets one; on a shared machine it gets
  // less, but it must show.
  EXPECT_GT(*busy, *idle + 1.0) << "the spike should be visible at all";
}

TEST(ProcessCpuSourceTest, ProcessThatExitsGivesNotFound) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess p, TestProcess::Start(SpikeWorkloadPath()));
  pid_t pid = p.pid();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto cpu, ProcessCpuSource::Create(pid));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto rss, ProcessRssSource::Create(pid));
  // Zombie first (killed, not reaped): already gone for watching.
  ::kill(pid, SIGKILL);
  absl::SleepFor(absl::Milliseconds(100));
  absl::Status zombie = cpu->Poll().status();
  EXPECT_THAT(zombie, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(zombie.message()), HasSubstr(absl::StrCat("process ", pid)));
  EXPECT_TRUE(cpu->IsTargetGone(zombie));
  p.Kill();
  absl::Status gone = cpu->Poll().status();
  EXPECT_THAT(gone, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(gone.message()), HasSubstr(absl::StrCat("process ", pid)));
  EXPECT_THAT(rss->Poll().status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ProcessCpuSource::Create(pid).status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ProcessCpuSource::Create(0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProcessRssSourceTest, SeesAnAllocationOfTheTarget) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess p,
                                TestProcess::Start(SpikeWorkloadPath(), {"--alloc-mb", "64"}));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto rss, ProcessRssSource::Create(p.pid()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> before, rss->Poll());
  p.Signal(SIGUSR1);
  double after = 0;
  for (int i = 0; i < 50 && after < *before + 60.0 * (1 << 20); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> v, rss->Poll());
    after = *v;
  }
  EXPECT_GE(after - *before, 60.0 * (1 << 20))
      << "RSS before " << *before << " after " << after;
}

using MetricsServer = TestMetricsServer;

std::unique_ptr<PrometheusSource> MakeSource(const std::string& url, absl::string_view selector) {
  absl::StatusOr<MetricSelector> sel = MetricSelector::Parse(selector);
  EXPECT_THAT(sel.status(), IsOk());
  return std::make_unique<PrometheusSource>(
      url, *sel, [url] { return FetchUrl(url, absl::Seconds(2)); });
}

TEST(PrometheusSourceTest, GaugeAsItIs) {
  MetricsServer server;
  server.SetPage("# TYPE q gauge\nq{queue=\"in\"} 5\nq{queue=\"out\"} 100\n");
  auto source = MakeSource(server.Url(), R"(q{queue="in"})");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> v, source->Poll());
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, 5);
  server.SetPage("# TYPE q gauge\nq{queue=\"in\"} 17.5\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(v, source->Poll());
  EXPECT_EQ(*v, 17.5);
  EXPECT_EQ(source->last_type(), MetricType::kGauge);
}

TEST(PrometheusSourceTest, CounterAsPerSecondRateAndResets) {
  MetricsServer server;
  server.SetPage("# TYPE req_total counter\nreq_total 1000\n");
  auto source = MakeSource(server.Url(), "req_total");
  double t0 = MonotonicSeconds();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> first, source->Poll());
  double t0b = MonotonicSeconds();
  EXPECT_FALSE(first.has_value()) << "a rate needs two readings";
  absl::SleepFor(absl::Milliseconds(400));
  server.SetPage("# TYPE req_total counter\nreq_total 1600\n");
  double t1 = MonotonicSeconds();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> rate, source->Poll());
  double t1b = MonotonicSeconds();
  ASSERT_TRUE(rate.has_value());
  // The source's own interval lies between these bounds.
  EXPECT_LE(*rate, 600 / (t1 - t0b) + 1e-6);
  EXPECT_GE(*rate, 600 / (t1b - t0) - 1e-6);
  // The service restarted: the counter starts again from 0.
  absl::SleepFor(absl::Milliseconds(200));
  server.SetPage("# TYPE req_total counter\nreq_total 50\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(rate, source->Poll());
  ASSERT_TRUE(rate.has_value());
  EXPECT_GT(*rate, 0);
  EXPECT_LT(*rate, 50 / 0.15);
}

TEST(PrometheusSourceTest, ErrorsSayWhatIsWrongAndTheSourceRecovers) {
  MetricsServer server;
  server.SetPage("up 1\nbroken{ 2\n");
  auto source = MakeSource(server.Url(), "up");
  absl::Status malformed = source->Poll().status();
  EXPECT_THAT(malformed, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(malformed.message()), HasSubstr("line 2"));
  EXPECT_THAT(std::string(malformed.message()), HasSubstr(server.Url()));
  EXPECT_FALSE(source->IsTargetGone(malformed));

  server.SetPage("upp 1\n");
  absl::Status unknown = source->Poll().status();
  EXPECT_THAT(unknown, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("unknown metric up"));
  EXPECT_FALSE(source->IsTargetGone(unknown));

  server.SetPage("up 1\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::optional<double> v, source->Poll());
  EXPECT_EQ(*v, 1);

  auto wrong_path = MakeSource(server.Url("/nope"), "up");
  absl::Status not_found = wrong_path->Poll().status();
  EXPECT_THAT(not_found, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(not_found.message()), HasSubstr("HTTP 404"));
}

TEST(HttpFetchTest, NothingListeningIsUnavailable) {
  // Reserve a port, then close it: nothing listens there.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  std::string url = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/metrics");
  absl::Status s = FetchUrl(url, absl::Seconds(1)).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(s.message()), HasSubstr("is the service running"));
}

TEST(HttpFetchTest, ASlowEndpointTimesOut) {
  httplib::Server server;
  server.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    res.set_content("up 1\n", "text/plain");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  std::thread thread([&] { server.listen_after_bind(); });
  absl::Time start = absl::Now();
  absl::Status s =
      FetchUrl(absl::StrCat("http://127.0.0.1:", port, "/slow"), absl::Milliseconds(200)).status();
  absl::Duration took = absl::Now() - start;
  server.stop();
  thread.join();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(took, absl::Milliseconds(1200)) << "the timeout did not apply";
}

TEST(HttpFetchTest, ParsesUrlsAndRejectsBadOnes) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(ParsedUrl u, ParseHttpUrl("http://127.0.0.1:9090/metrics?x=1"));
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 9090);
  EXPECT_EQ(u.path, "/metrics?x=1");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(u, ParseHttpUrl("http://localhost"));
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.path, "/");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(u, ParseHttpUrl("http://[::1]:8080/m"));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8080);
  for (const char* bad : {"127.0.0.1:9090/metrics", "ftp://x/", "http://", "http://:80/",
                          "http://h:0/", "http://h:99999/", "http://h:x/", "http://[::1/",
                          "http://u:p@h/"}) {
    absl::Status s = ParseHttpUrl(bad).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("expected e.g. http://")) << bad;
  }
}

}  // namespace
}  // namespace flamekit
