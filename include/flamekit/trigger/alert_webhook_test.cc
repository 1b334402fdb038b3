// SPDX-License-Identifier: Apache-2.0
// AlertReceiver's rules with a capture that writes real files: debounce by
// fingerprint, one capture at a time, cooldown, count and disk budgets,
// label -> PID mapping, and the log and the alert beside each profile.
// Runs in well under a second.
#include "flamekit/trigger/alert_webhook.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/synchronization/notification.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string TempDir(absl::string_view name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base ? base : "/tmp", "/", name, "-", getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Payload(const std::string& fingerprint, const std::string& labels,
                    const std::string& status = "firing") {
  return absl::StrCat(R"({"version":"4","groupKey":"{}:{alertname=\"X\"}","status":")", status,
                      R"(","receiver":"flamekit","alerts":[{"status":")", status,
                      R"(","labels":)", labels, R"(,"startsAt":"2026-12-06T12:00:00Z",)",
                      R"("fingerprint":")", fingerprint, R"("}]})");
}

TEST(AlertWebhookTest, ParsesVersion4AndRefusesOthers) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      AlertBatch b, ParseAlertmanagerWebhook(Payload("abc", R"({"alertname":"X","pid":"7"})")));
  ASSERT_EQ(b.alerts.size(), 1u);
  EXPECT_EQ(b.alerts[0].fingerprint, "abc");
  EXPECT_EQ(b.alerts[0].labels.at("pid"), "7");
  EXPECT_THAT(ParseAlertmanagerWebhook(R"({"version":"3","alerts":[]})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseAlertmanagerWebhook("not json"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseAlertmanagerWebhook(R"({"version":"4"})"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AlertReceiverTest, DebounceBusyCooldownAndBudgets) {
  std::string dir = TempDir("alerts");
  AlertReceiverOptions o;
  o.watch.dir = dir;
  o.watch.trigger.cooldown = absl::ZeroDuration();
  o.watch.trigger.max_captures = 3;
  o.debounce = absl::Minutes(1);
  absl::Notification release;
  std::atomic<int> calls{0};
  std::vector<pid_t> pids;
  auto capture = [&](pid_t pid, const CaptureRequest& r) {
    pids.push_back(pid);
    if (calls.fetch_add(1) == 0) release.WaitForNotificationWithTimeout(absl::Seconds(5));
    std::ofstream(r.path) << std::string(100, 'x');
    return absl::OkStatus();
  };
  auto finder = [](const std::string& regex) -> absl::StatusOr<pid_t> {
    if (regex == "api-server") return 4242;
    return absl::NotFoundError("no process matches " + regex);
  };
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto r, AlertReceiver::Create(o, capture, finder));

  auto one = [&](const std::string& body) {
    absl::StatusOr<std::vector<AlertDecision>> d = r->Handle(body);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() && d->size() == 1 ? (*d)[0] : AlertDecision{};
  };
  EXPECT_EQ(one(Payload("f1", R"({"alertname":"Cpu","pid":"11"})")).outcome, "queued");
  // While the first capture runs: a different alert is refused (one at a
  // time), the same one is debounced.
  EXPECT_EQ(one(Payload("f2", R"({"alertname":"Cpu","pid":"12"})")).outcome, "busy");
  EXPECT_EQ(one(Payload("f1", R"({"alertname":"Cpu","pid":"11"})")).outcome, "debounced");
  release.Notify();
  ASSERT_TRUE(r->WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(one(Payload("f1", R"({"alertname":"Cpu","pid":"11"})")).outcome, "debounced");
  EXPECT_EQ(one(Payload("f3", R"({"alertname":"Cpu"})")).outcome, "no_target");
  EXPECT_EQ(one(Payload("f4", R"({"alertname":"Cpu","process":"nothing-like-this"})")).outcome,
            "no_target");
  EXPECT_EQ(one(Payload("f5", R"({"alertname":"Cpu","pid":"5"})", "resolved")).outcome,
            "resolved");
  EXPECT_EQ(one(Payload("f6", R"({"alertname":"Cpu","process":"api-server"})")).outcome,
            "queued");
  ASSERT_TRUE(r->WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(one(Payload("f7", R"({"alertname":"Cpu","pid":"13"})")).outcome, "queued");
  ASSERT_TRUE(r->WaitIdle(absl::Seconds(5)));
  // Three captures: the count budget is used up.
  EXPECT_EQ(one(Payload("f8", R"({"alertname":"Cpu","pid":"14"})")).outcome, "exhausted");
  EXPECT_EQ(r->captures(), 3);
  EXPECT_EQ(r->disk_used(), 300);
  EXPECT_EQ(pids, (std::vector<pid_t>{11, 4242, 13}));

  std::string log = ReadFile(dir + "/watch.jsonl");
  EXPECT_THAT(log, HasSubstr(R"("fingerprint":"f1")"));
  EXPECT_THAT(log, HasSubstr(R"("labels":{"alertname":"Cpu","pid":"11"})"));
  int sidecars = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string p = e.path().string();
    if (!absl::EndsWith(p, ".alert.json")) continue;
    ++sidecars;
    std::string html = p.substr(0, p.size() - 11);
    EXPECT_TRUE(std::filesystem::exists(html)) << html;
    EXPECT_THAT(html, HasSubstr("-alert-Cpu"));
    EXPECT_THAT(ReadFile(p), HasSubstr("\"fingerprint\": \"f"));
  }
  EXPECT_EQ(sidecars, 3);
}

TEST(AlertReceiverTest, CooldownAndDiskBudget) {
  std::string dir = TempDir("alerts_cool");
  AlertReceiverOptions o;
  o.watch.dir = dir;
  o.watch.trigger.cooldown = absl::Minutes(5);
  o.watch.trigger.max_disk_bytes = 50;
  auto capture = [](pid_t, const CaptureRequest& r) {
    std::ofstream(r.path) << std::string(80, 'x');
    return absl::OkStatus();
  };
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto r, AlertReceiver::Create(o, capture));
  ASSERT_EQ((*r->Handle(Payload("a", R"({"pid":"1"})")))[0].outcome, "queued");
  ASSERT_TRUE(r->WaitIdle(absl::Seconds(5)));
  // 80 bytes > the 50-byte budget: exhausted before the cooldown matters.
  EXPECT_EQ((*r->Handle(Payload("b", R"({"pid":"2"})")))[0].outcome, "exhausted");

  std::string dir2 = TempDir("alerts_cool2");
  o.watch.dir = dir2;
  o.watch.trigger.max_disk_bytes = 0;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto r2, AlertReceiver::Create(o, capture));
  ASSERT_EQ((*r2->Handle(Payload("a", R"({"pid":"1"})")))[0].outcome, "queued");
  ASSERT_TRUE(r2->WaitIdle(absl::Seconds(5)));
  EXPECT_EQ((*r2->Handle(Payload("b", R"({"pid":"2"})")))[0].outcome, "cooldown");
}

}  // namespace
}  // namespace flamekit
