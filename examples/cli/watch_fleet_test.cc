// SPDX-License-Identifier: Apache-2.0
// `flamekit watch` driven by the fleet's own engines: a real Prometheus
// (Debian's /usr/bin/prometheus) on a free loopback port scrapes a small
// exporter of the target's CPU every 250 ms; `watch --prometheus --query`
// (line: 15 % of a core, so the spike crosses it even when four other
// builds share the two cores; idle, the target uses ~0 %)
// must capture the spike, and the capture's hot function must be the
// spike's. Every server is started here and stopped by its destructor.
// Skips (with the reason) when prometheus is not installed or perf events
// are not available, or the spike could not get 25 % of a core.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>  // a client for the webhook's refusals

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/cli/watch_command.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/trigger/metric_source.h"
#include "flamekit/trigger/test_metrics_server.h"
#include "flamekit/trigger/test_process.h"
#include "flamekit/trigger/test_prometheus.h"

namespace flamekit {
namespace cli {
namespace {

using ::testing::HasSubstr;

std::string TempDir(absl::string_view name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name, "-", getpid());
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

double CpuSeconds(pid_t pid) {
  absl::StatusOr<ProcStatTimes> t = ReadProcStat(pid);
  if (!t.ok()) return 0;
  return static_cast<double>(t->utime_ticks + t->stime_ticks) / sysconf(_SC_CLK_TCK);
}

// A /metrics page with the target's CPU time as a counter, refreshed every
// 100 ms: what node_exporter's or the service's own process_cpu_seconds_total
// would be.
class CpuExporter {
 public:
  explicit CpuExporter(pid_t pid) : pid_(pid) {
    Refresh();
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        Refresh();
        absl::SleepFor(absl::Milliseconds(100));
      }
    });
  }
  ~CpuExporter() {
    stop_ = true;
    thread_.join();
  }
  std::string HostPort() const {
    std::string url = server_.Url("");
    return url.substr(std::string("http://").size());
  }

 private:
  void Refresh() {
    server_.SetPage(absl::StrCat("# TYPE fk_target_cpu_seconds_total counter\n",
                                 "fk_target_cpu_seconds_total{pid=\"", pid_, "\"} ",
                                 CpuSeconds(pid_), "\n"));
  }
  pid_t pid_;
  TestMetricsServer server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string PrometheusConfig(const std::string& target) {
  return absl::StrCat(
      "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n"
      "  evaluation_interval: 250ms\n"
      "scrape_configs:\n  - job_name: target\n    static_configs:\n"
      "      - targets: ['", target, "']\n");
}

TEST(WatchFleetTest, PrometheusQueryCapturesTheSpike) {
  if (!TestServer::Installed("prometheus")) {
    GTEST_SKIP() << "no /usr/bin/prometheus: apt-get install prometheus "
                    "(tools/debian-packages.txt lists it)";
  }
  absl::Time test_start = absl::Now();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(SpikeWorkloadPath()));
  CpuExporter exporter(target.pid());
  std::string dir = TempDir("fleet_promql");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TestServer> prom,
      TestServer::StartPrometheus(dir, PrometheusConfig(exporter.HostPort())));
  absl::Duration startup = absl::Now() - test_start;

  // A query Prometheus refuses ends the command at once, with its message.
  {
    std::ostringstream out, err;
    int code = RunWatchCommand({absl::StrCat(target.pid()), "--prometheus", prom->Url(),
                                "--query", "rate(fk_target_cpu_seconds_total{", "--above", "1",
                                "--dir", dir + "/bad"},
                               out, err, AttachCaptureFactory());
    EXPECT_EQ(code, 1) << out.str() << err.str();
    EXPECT_THAT(err.str(), HasSubstr("parse error")) << err.str();
  }

  std::string captures = dir + "/captures";
  std::vector<std::string> args = {
      absl::StrCat(target.pid()), "--prometheus", prom->Url(), "--query",
      "100 * rate(fk_target_cpu_seconds_total[1s])", "--above", "15", "--for", "500ms",
      "--every", "250ms", "--duration", "2s", "--lookback", "0", "--dir", captures,
      "--max-captures", "1", "--quiet"};
  int run_code = -1;
  std::atomic<int64_t> give_up_ns{INT64_MAX};
  std::ostringstream out, err;
  std::thread watch([&] {
    run_code = RunWatchCommand(args, out, err, AttachCaptureFactory(), [&] {
      return absl::ToUnixNanos(absl::Now()) > give_up_ns.load();
    });
  });
  // Idle for 2 s: the rate is ~0 and nothing may fire.
  absl::SleepFor(absl::Seconds(2));
  absl::Time signalled = absl::Now();
  double cpu0 = CpuSeconds(target.pid());
  target.Signal(SIGUSR1);
  give_up_ns = absl::ToUnixNanos(signalled + absl::Seconds(30));
  watch.join();
  double spike_share = (CpuSeconds(target.pid()) - cpu0) /
                       absl::ToDoubleSeconds(absl::Now() - signalled);
  std::string err_text = err.str();
  if (absl::StrContains(err_text, "perf_event_paranoid") ||
      absl::StrContains(err_text, "perf events")) {
    GTEST_SKIP() << "perf events unavailable: " << err_text;
  }
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(captures)) {
    if (e.path().extension() == ".html") files.push_back(e.path().string());
  }
  if (files.empty() && spike_share < 0.25) {
    GTEST_SKIP() << "the spike got only " << 100 * spike_share << " % of a core (line 15 %)";
  }
  ASSERT_EQ(run_code, 0) << out.str() << err_text << "\nprometheus log:\n" << prom->Log();
  ASSERT_EQ(files.size(), 1u) << out.str();
  EXPECT_THAT(files[0], HasSubstr("-cpu-flamegraph-"));
  EXPECT_THAT(files[0], HasSubstr("promql-above-15"));
  std::string html = ReadFile(files[0]);
  EXPECT_THAT(html, HasSubstr("HotSpikeFunction"));
  std::string log = ReadFile(captures + "/watch.jsonl");
  EXPECT_THAT(log, HasSubstr("\"event\":\"capture\""));
  EXPECT_THAT(log, HasSubstr("PromQL '100 * rate(fk_target_cpu_seconds_total[1s])'"));
  // It fired on the spike, not on the idle seconds before it.
  size_t f = log.find("\"fired_at\":\"");
  ASSERT_NE(f, std::string::npos) << log;
  absl::Time fired;
  std::string e;
  ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", log.substr(f + 12, log.find('"', f + 12) - (f + 12)), &fired, &e))
      << e;
  EXPECT_GE(fired, signalled - absl::Milliseconds(5)) << log;
  std::cerr << "prometheus ready in " << startup << "; fired "
            << absl::FormatDuration(fired - signalled) << " after the spike began\n";

  // A query with no series yet is logged, and the watch keeps asking.
  std::ostringstream out2, err2;
  int polls = 0;
  int code = RunWatchCommand({absl::StrCat(target.pid()), "--prometheus", prom->Url(),
                              "--query", "fk_no_such_metric", "--above", "1", "--every",
                              "200ms", "--lookback", "0", "--dir", dir + "/missing"},
                             out2, err2, AttachCaptureFactory(), [&] { return ++polls > 8; });
  EXPECT_EQ(code, 0) << err2.str();
  EXPECT_THAT(err2.str(), HasSubstr("returned no series (yet); still watching"));
  EXPECT_THAT(ReadFile(dir + "/missing/watch.jsonl"), HasSubstr("returned no series"));
}


// Prometheus evaluates an alert rule on the exporter's CPU every 250 ms,
// Alertmanager (group_wait 100 ms) posts the firing alert to `watch
// --listen`, which captures the PID the alert's labels name.
TEST(WatchFleetTest, AlertmanagerWebhookCapturesTheSpike) {
  for (const char* binary : {"prometheus", "prometheus-alertmanager"}) {
    if (!TestServer::Installed(binary)) {
      GTEST_SKIP() << "no /usr/bin/" << binary << ": apt-get install " << binary
                   << " (tools/debian-packages.txt lists it)";
    }
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TestProcess target, TestProcess::Start(SpikeWorkloadPath()));
  CpuExporter exporter(target.pid());
  std::string dir = TempDir("fleet_alerts");
  const std::string token = "fleet-test-token";
  int listen_port = TestServer::FreePort();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TestServer> am,
      TestServer::StartAlertmanager(
          dir, absl::StrCat("route:\n  receiver: flamekit\n  group_by: [alertname]\n"
                            "  group_wait: 100ms\n  group_interval: 1s\n"
                            "  repeat_interval: 1h\n"
                            "receivers:\n  - name: flamekit\n    webhook_configs:\n"
                            "      - url: http://127.0.0.1:", listen_port, "/alertmanager\n"
                            "        send_resolved: false\n"
                            "        http_config:\n          authorization:\n"
                            "            credentials: ", token, "\n")));
  {
    std::ofstream rules(dir + "/rules.yml");
    rules << "groups:\n  - name: flamekit\n    interval: 250ms\n    rules:\n"
             "      - alert: TargetCpuHigh\n"
             "        expr: 100 * rate(fk_target_cpu_seconds_total[1s]) > 15\n"
             "        for: 500ms\n        labels:\n          severity: page\n";
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<TestServer> prom,
      TestServer::StartPrometheus(
          dir, absl::StrCat(PrometheusConfig(exporter.HostPort()), "rule_files: ['", dir,
                            "/rules.yml']\nalerting:\n  alertmanagers:\n"
                            "    - static_configs:\n        - targets: ['127.0.0.1:",
                            am->port(), "']\n")));
  std::string captures = dir + "/captures";
  std::vector<std::string> args = {"--listen", absl::StrCat("127.0.0.1:", listen_port),
                                   "--token", token, "--duration", "2s", "--dir", captures,
                                   "--max-captures", "1"};
  std::ostringstream out, err;
  int code = -1;
  std::atomic<int64_t> give_up_ns{INT64_MAX};
  std::thread watch([&] {
    code = RunWatchCommand(args, out, err, AttachCaptureFactory(), [&] {
      return absl::ToUnixNanos(absl::Now()) > give_up_ns.load();
    });
  });
  absl::SleepFor(absl::Milliseconds(500));
  // The endpoint is authenticated and reads only version 4 payloads.
  httplib::Client client("127.0.0.1", listen_port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(2, 0);
  httplib::Result anonymous = client.Post("/alertmanager", R"({"version":"4","alerts":[]})",
                                          "application/json");
  ASSERT_TRUE(anonymous) << "watch --listen is not listening: " << out.str() << err.str();
  EXPECT_EQ(anonymous->status, 401);
  httplib::Headers auth = {{"Authorization", "Bearer " + token}};
  httplib::Result v3 = client.Post("/alertmanager", auth, R"({"version":"3","alerts":[]})",
                                   "application/json");
  ASSERT_TRUE(v3);
  EXPECT_EQ(v3->status, 400);
  EXPECT_THAT(v3->body, HasSubstr("expected \"4\""));

  absl::SleepFor(absl::Seconds(1));
  absl::Time signalled = absl::Now();
  double cpu0 = CpuSeconds(target.pid());
  target.Signal(SIGUSR1);
  give_up_ns = absl::ToUnixNanos(signalled + absl::Seconds(40));
  watch.join();
  double spike_share = (CpuSeconds(target.pid()) - cpu0) /
                       absl::ToDoubleSeconds(absl::Now() - signalled);
  std::string err_text = err.str();
  if (absl::StrContains(err_text, "perf_event_paranoid") ||
      absl::StrContains(err_text, "perf events")) {
    GTEST_SKIP() << "perf events unavailable: " << err_text;
  }
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(captures, ec)) {
    if (e.path().extension() == ".html") files.push_back(e.path().string());
  }
  if (files.empty() && spike_share < 0.25) {
    GTEST_SKIP() << "the spike got only " << 100 * spike_share << " % of a core (line 15 %)";
  }
  std::string log = ReadFile(captures + "/watch.jsonl");
  ASSERT_EQ(code, 0) << out.str() << err_text;
  ASSERT_EQ(files.size(), 1u) << out.str() << "\nlog:\n" << log << "\nalertmanager:\n"
                              << am->Log() << "\nprometheus:\n" << prom->Log();
  EXPECT_THAT(files[0], HasSubstr(absl::StrCat(target.pid(), "-cpu-flamegraph-")));
  EXPECT_THAT(files[0], HasSubstr("alert-TargetCpuHigh"));
  EXPECT_THAT(ReadFile(files[0]), HasSubstr("HotSpikeFunction"));
  std::string beside = ReadFile(files[0] + ".alert.json");
  EXPECT_THAT(beside, HasSubstr("\"alertname\": \"TargetCpuHigh\""));
  EXPECT_THAT(beside, HasSubstr("\"fingerprint\": \""));
  EXPECT_THAT(beside, HasSubstr(absl::StrCat("\"pid\": \"", target.pid(), "\"")));
  EXPECT_THAT(log, HasSubstr("\"outcome\":\"queued\""));
  EXPECT_THAT(log, HasSubstr("\"event\":\"capture\""));
  EXPECT_THAT(log, HasSubstr("\"fingerprint\":\""));
  std::cerr << "alert to capture: files " << files[0] << "\n";
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
