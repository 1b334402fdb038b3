// SPDX-License-Identifier: Apache-2.0
// The UI end to end over real HTTP on 127.0.0.1 (an ephemeral port), driving
// the process-wide profiler: start, stop, list, raw, delete, diff, metrics,
// default options, the naming pattern, tokens and the login cookie.

#include "flamekit/ui/ui_server.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/ui/ui_test_hooks.h"
#include "flamekit/ui/ui_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::flamekit::ui_testing::CpuBurner;
using ::flamekit::ui_testing::RawResponse;
using ::flamekit::ui_testing::Request;
using ::testing::HasSubstr;
using ::testing::Not;

nlohmann::json Json(const RawResponse& r) {
  return nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}

class UiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Serve(UiOptions()); }
  void TearDown() override {
    if (ui_) ui_->Stop();
    ui_.reset();
    StopProfilerForTest();
  }

  void Serve(UiOptions options) {
    if (ui_) ui_->Stop();
    dir_ = ui_testing::MakeTempDir("ui");
    options.dir = dir_;
    options.profiler = ProfilerForTest();
    absl::StatusOr<std::unique_ptr<UiServer>> ui = ServeUi("127.0.0.1", 0, std::move(options));
    ASSERT_THAT(ui.status(), IsOk());
    ui_ = std::move(*ui);
    port_ = ui_->port();
  }

  RawResponse Get(absl::string_view target, absl::string_view headers = "") {
    return Request(port_, "GET", target, headers);
  }
  RawResponse Post(absl::string_view target, absl::string_view body = "",
                   absl::string_view headers = "") {
    return Request(port_, "POST", target, headers, body);
  }

  // Starts from the API, burns CPU for `seconds` of wall time, stops, and
  // returns the new profile's JSON.
  nlohmann::json Capture(absl::string_view start_body, double seconds) {
    RawResponse started = Post("/api/start", start_body,
                               "Content-Type: application/x-www-form-urlencoded\r\n");
    EXPECT_EQ(started.status, 200) << started.body;
    {
      CpuBurner burner;
      absl::SleepFor(absl::Seconds(seconds));
    }
    RawResponse stopped = Post("/api/stop");
    EXPECT_EQ(stopped.status, 200) << stopped.body;
    return Json(stopped)["profile"];
  }

  std::string dir_;
  std::unique_ptr<UiServer> ui_;
  int port_ = 0;
};

TEST_F(UiServerTest, IndexShowsControlsAndSecurityHeaders) {
  RawResponse r = Get("/");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("Start profiling"));
  EXPECT_THAT(r.body, HasSubstr("<option value=\"cpu\""));
  EXPECT_THAT(r.body, HasSubstr("No profiles yet"));
  EXPECT_THAT(r.body, Not(HasSubstr("class=\"error\"")));
  EXPECT_THAT(r.body, Not(HasSubstr("<script>")));  // no inline script
  EXPECT_THAT(r.Header("Content-Security-Policy"), HasSubstr("script-src 'self'"));
  EXPECT_EQ(r.Header("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(r.Header("X-Frame-Options"), "DENY");
  RawResponse js = Get("/static/ui.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_THAT(js.Header("Content-Type"), HasSubstr("javascript"));
  // Even errors carry the headers.
  RawResponse missing = Get("/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Header("X-Frame-Options"), "DENY");
}

TEST_F(UiServerTest, ListsOnlySampleableEvents) {
  nlohmann::json status = Json(Get("/api/status"));
  ASSERT_TRUE(status["events"].is_array());
  std::vector<std::string> events = status["events"].get<std::vector<std::string>>();
  EXPECT_THAT(events, ::testing::Contains("cpu"));
  EXPECT_THAT(events, ::testing::Contains("itimer"));
  // Each perf event listed must open here; hardware ones go without a PMU.
  PerfEventOptions options;
  absl::StatusOr<PerfEventSpec> cycles = ParsePerfEvent("cycles");
  ASSERT_THAT(cycles.status(), IsOk());
  options.event = *cycles;
  options.exclude_kernel = true;
  bool has_pmu = OpenPerfEvent(options).ok();
  EXPECT_EQ(std::find(events.begin(), events.end(), "cycles") != events.end(), has_pmu);
}

TEST_F(UiServerTest, StartStopListRawDelete) {
  nlohmann::json status = Json(Get("/api/status"));
  EXPECT_EQ(status["running"], false);
  RawResponse started = Post("/api/start", "{\"event\":\"cpu\",\"interval\":\"5ms\"}",
                             "Content-Type: application/json\r\n");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_EQ(Json(started)["running"], true);
  // A second start while running is refused and says why.
  RawResponse again = Post("/api/start", "event=cpu",
                           "Content-Type: application/x-www-form-urlencoded\r\n");
  EXPECT_EQ(again.status, 409);
  EXPECT_THAT(again.body, HasSubstr("already running"));
  RawResponse index = Get("/");
  EXPECT_THAT(index.body, HasSubstr("Stop profiling"));
  {
    CpuBurner burner;
    absl::SleepFor(absl::Milliseconds(1500));
  }
  nlohmann::json running = Json(Get("/api/status"));
  EXPECT_EQ(running["running"], true);
  EXPECT_GE(running["elapsed_ms"].get<int64_t>(), 1000);
  RawResponse stopped = Post("/api/stop");
  ASSERT_EQ(stopped.status, 200) << stopped.body;
  nlohmann::json profile = Json(stopped)["profile"];
  EXPECT_EQ(profile["event"], "cpu");
  EXPECT_GT(profile["samples"].get<uint64_t>(), 0u);
  std::string html = profile["html"];
  ProfileFileName parsed;
  ASSERT_TRUE(ParseProfileFileName(html, &parsed)) << html;
  EXPECT_EQ(parsed.extension, "html");
  EXPECT_EQ(Post("/api/stop").status, 409);  // nothing running now

  nlohmann::json list = Json(Get("/api/profiles"))["profiles"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["html"], html);
  RawResponse page = Get(absl::StrCat("/profiles/", html));
  EXPECT_EQ(page.status, 200);
  EXPECT_THAT(page.Header("Content-Type"), HasSubstr("text/html"));
  RawResponse raw = Get(list[0]["raw_url"].get<std::string>());
  EXPECT_EQ(raw.status, 200);
  EXPECT_THAT(raw.Header("Content-Type"), HasSubstr("text/plain"));
  // The raw text is collapsed stacks whose counts add up to the samples.
  uint64_t total = 0;
  for (absl::string_view line : absl::StrSplit(raw.body, '\n', absl::SkipEmpty())) {
    uint64_t count = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(line.rfind(' ') + 1), &count)) << line;
    total += count;
  }
  EXPECT_EQ(total, list[0]["samples"].get<uint64_t>());
  RawResponse index_after = Get("/");
  EXPECT_THAT(index_after.body, HasSubstr(html));

  RawResponse deleted = Request(port_, "DELETE", "/api/profiles");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(Json(deleted)["deleted"], 1);
  EXPECT_EQ(Json(Get("/api/profiles"))["profiles"].size(), 0u);
  EXPECT_EQ(Get(absl::StrCat("/profiles/", html)).status, 404);
}

TEST_F(UiServerTest, FormsRedirectBackToTheIndex) {
  RawResponse started = Post("/ui/start", "event=cpu&interval=10ms&duration=&per_thread_present=1",
                             "Content-Type: application/x-www-form-urlencoded\r\n"
                             "Origin: http://127.0.0.1\r\n");
  // Origin without the port is another origin: refused.
  EXPECT_EQ(started.status, 403);
  started = Post("/ui/start", "event=cpu&interval=10ms&duration=&per_thread_present=1",
                 absl::StrCat("Content-Type: application/x-www-form-urlencoded\r\n"
                              "Origin: http://127.0.0.1:", port_, "\r\n"));
  EXPECT_EQ(started.status, 303) << started.body;
  EXPECT_EQ(started.Header("Location"), "/");
  RawResponse stopped = Post("/ui/stop", "", absl::StrCat("Origin: http://127.0.0.1:", port_, "\r\n"));
  EXPECT_EQ(stopped.status, 303) << stopped.body;
  RawResponse bad = Post("/ui/start", "event=nonsense",
                         "Content-Type: application/x-www-form-urlencoded\r\n");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("cannot be sampled here"));
  EXPECT_THAT(bad.Header("Content-Type"), HasSubstr("text/html"));
}

TEST_F(UiServerTest, DurationStopsAndSavesAutomatically) {
  RawResponse started = Post("/api/start", "event=cpu&duration=1",
                             "Content-Type: application/x-www-form-urlencoded\r\n");
  ASSERT_EQ(started.status, 200) << started.body;
  EXPECT_TRUE(Json(Get("/api/status")).contains("auto_stop_in_ms"));
  {
    CpuBurner burner;
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline && Json(Get("/api/profiles"))["profiles"].empty()) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  nlohmann::json list = Json(Get("/api/profiles"))["profiles"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(Json(Get("/api/status"))["running"], false);
  EXPECT_GE(list[0]["duration_ms"].get<int64_t>(), 900);
}

TEST_F(UiServerTest, BadStartRequestsSayWhatToDo) {
  struct Case {
    const char* body;
    const char* type;
    const char* message;
  } cases[] = {
      {"event=cycles-nope", "application/x-www-form-urlencoded", "choose one of"},
      {"event=cpu&interval=0ms", "application/x-www-form-urlencoded", "interval"},
      {"event=cpu&duration=forever", "application/x-www-form-urlencoded", "30s"},
      {"event=cpu&duration=100h", "application/x-www-form-urlencoded", "24h"},
      {"{not json", "application/json", "JSON object"},
      {"{\"event\":[1,2]}", "application/json", "short strings"},
  };
  for (const Case& c : cases) {
    RawResponse r = Post("/api/start", c.body, absl::StrCat("Content-Type: ", c.type, "\r\n"));
    EXPECT_EQ(r.status, 400) << c.body << ": " << r.body;
    EXPECT_THAT(Json(r)["error"].get<std::string>(), HasSubstr(c.message)) << c.body;
  }
  EXPECT_EQ(Json(Get("/api/status"))["running"], false);
}

TEST_F(UiServerTest, DiffOfTwoProfiles) {
  nlohmann::json a = Capture("event=cpu", 0.6);
  nlohmann::json b = Capture("event=cpu", 0.6);
  int64_t id_a = a["id"], id_b = b["id"];
  ASSERT_NE(id_a, id_b);
  RawResponse diff = Get(absl::StrCat("/diff?a=", id_a, "&b=", id_b));
  EXPECT_EQ(diff.status, 200) << diff.body;
  EXPECT_THAT(diff.Header("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(diff.Header("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_THAT(ui_->GenerateDiffGraph(id_a, id_b), IsOk());
  EXPECT_THAT(ui_->GenerateDiffGraph(id_a, 999).status(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(Get(absl::StrCat("/diff?a=", id_a, "&b=999")).status, 404);
  EXPECT_EQ(Get("/diff?a=x&b=1").status, 400);
  // The index offers "diff with previous" on the newer one.
  EXPECT_THAT(Get("/").body, HasSubstr(absl::StrCat("/diff?a=", id_a, "&amp;b=", id_b)));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string graph, ui_->GenerateFlameGraph(id_b));
  EXPECT_THAT(graph, HasSubstr("<html"));
  // GET never changes state: still two profiles.
  EXPECT_EQ(Json(Get("/api/profiles"))["profiles"].size(), 2u);
  // A profile of another event: the diff is refused, naming both (409).
  nlohmann::json wall = Capture("event=wall", 0.3);
  RawResponse mixed = Get(absl::StrCat("/diff?a=", id_a, "&b=", wall["id"].get<int64_t>()));
  EXPECT_EQ(mixed.status, 409) << mixed.body;
  EXPECT_THAT(mixed.body, HasSubstr("sampled 'cpu' but profile"));
  EXPECT_THAT(mixed.body, HasSubstr("sampled 'wall'"));
}

TEST_F(UiServerTest, PerThreadSplitRootsStacksAtThreads) {
  nlohmann::json profile = Capture("event=cpu&per_thread=1", 0.8);
  RawResponse raw = Get(profile["raw_url"].get<std::string>());
  ASSERT_EQ(raw.status, 200);
  ASSERT_FALSE(raw.body.empty());
  // Every stack starts with a thread frame "[name tid=N]".
  for (absl::string_view line : absl::StrSplit(raw.body, '\n', absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(line, "[")) << line;
    EXPECT_THAT(std::string(line.substr(0, line.find(';'))), HasSubstr("tid=")) << line;
  }
  nlohmann::json plain = Capture("event=cpu", 0.5);
  RawResponse plain_raw = Get(plain["raw_url"].get<std::string>());
  EXPECT_THAT(plain_raw.body, Not(HasSubstr("tid=")));
}

TEST_F(UiServerTest, MetricsInPrometheusFormat) {
  Capture("event=cpu", 0.5);
  RawResponse r = Get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.Header("Content-Type"), HasSubstr("text/plain"));
  for (const char* name :
       {"flamekit_profiler_running 0", "flamekit_profiler_samples ", "flamekit_profiler_dropped_samples ",
        "flamekit_profiles_stored 1", "flamekit_profiles_stored_bytes ",
        "flamekit_profiler_handler_seconds_total "}) {
    EXPECT_THAT(r.body, HasSubstr(name));
  }
  // Every non-comment line is "name value" with a number.
  for (absl::string_view line : absl::StrSplit(r.body, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u) << line;
    double value;
    EXPECT_TRUE(absl::SimpleAtod(parts[1], &value)) << line;
  }
  std::string bytes_line = r.body.substr(r.body.find("\nflamekit_profiles_stored_bytes ") + 1);
  uint64_t bytes = 0;
  ASSERT_TRUE(absl::SimpleAtoi(bytes_line.substr(31, bytes_line.find('\n') - 31), &bytes))
      << bytes_line;
  EXPECT_EQ(bytes, ui_->store().TotalBytes());
}

TEST_F(UiServerTest, DefaultOptionsPrefillAndApply) {
  UiStartOptions defaults;
  defaults.event = "itimer";
  defaults.interval = absl::Milliseconds(7);
  defaults.per_thread = true;
  SetProfilerDefaultsForTest(defaults);
  RawResponse index = Get("/");
  EXPECT_THAT(index.body, HasSubstr("<option value=\"itimer\" selected>"));
  EXPECT_THAT(index.body, HasSubstr("value=\"7ms\""));
  EXPECT_THAT(index.body, HasSubstr("name=\"per_thread\" value=\"1\" checked"));
  nlohmann::json status = Json(Get("/api/status"));
  EXPECT_EQ(status["defaults"]["event"], "itimer");
  // A start with no fields takes the defaults.
  nlohmann::json profile = Capture("", 0.6);
  EXPECT_EQ(profile["event"], "itimer");
  SetProfilerDefaultsForTest(UiStartOptions());
}

// The names in README.md's /metrics table are a promise (dashboards and
// alert rules use them): the table and the endpoint must list the same
// names with the same types, so renaming one, or adding one without
// documenting it, fails here.
TEST_F(UiServerTest, MetricNamesAndTypesAreTheReadmeTable) {
  std::ifstream in(absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                                "/README.md"));
  ASSERT_TRUE(in.good()) << "README.md is a data dependency of this test";
  std::stringstream readme;
  readme << in.rdbuf();
  const std::string text = readme.str();
  size_t at = text.find("These names are kept stable");
  ASSERT_NE(at, std::string::npos) << "README.md lost its /metrics table";
  std::map<std::string, std::string> documented;  // name -> type
  bool in_table = false;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text).substr(at), '\n')) {
    if (!absl::StartsWith(line, "|")) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    std::vector<absl::string_view> cells = absl::StrSplit(line, '|');
    if (cells.size() < 4) continue;
    std::string type(absl::StripAsciiWhitespace(cells[2]));
    for (absl::string_view piece : absl::StrSplit(cells[1], '`')) {
      if (absl::StartsWith(piece, "flamekit_")) documented[std::string(piece)] = type;
    }
  }
  ASSERT_GE(documented.size(), 10u) << "could not read the table";
  std::map<std::string, std::string> served;  // from "# TYPE name type"
  RawResponse r = Get("/metrics");
  ASSERT_EQ(r.status, 200);
  for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
    if (!absl::ConsumePrefix(&line, "# TYPE ")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u) << line;
    served[parts[0]] = parts[1];
    // Each declared metric has its sample line.
    EXPECT_THAT(r.body, HasSubstr(absl::StrCat("\n", parts[0], " "))) << parts[0];
  }
  EXPECT_EQ(served, documented) << "update README.md's /metrics table with the endpoint";
}

TEST(ServeUiTest, RefusesOtherAddressesWithoutAToken) {
  UiOptions options;
  options.dir = ui_testing::MakeTempDir("ui");
  options.profiler = ProfilerForTest();
  absl::StatusOr<std::unique_ptr<UiServer>> ui = ServeUi("0.0.0.0", 0, options);
  EXPECT_THAT(ui.status(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(ui.status().message()), HasSubstr("token"));
  options.token = "short";
  EXPECT_THAT(ServeUi("0.0.0.0", 0, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.token = "a-long-enough-token";
  ui = ServeUi("0.0.0.0", 0, options);
  EXPECT_THAT(ui.status(), IsOk());
  EXPECT_THAT(ServeUi("127.0.0.1", 70000, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ServeUiTest, StoppingTheUiSavesARunningCapture) {
  UiOptions options;
  options.dir = ui_testing::MakeTempDir("ui");
  options.profiler = ProfilerForTest();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto ui, ServeUi("127.0.0.1", 0, options));
  UiStartOptions start;
  start.event = "itimer";
  ASSERT_THAT(ui->StartProfiling(start), IsOk());
  {
    CpuBurner burner;
    absl::SleepFor(absl::Milliseconds(300));
  }
  ui->Stop();
  EXPECT_FALSE(Profiler::Global().IsRunning());
  ASSERT_EQ(ui->store().List().size(), 1u);
  EXPECT_EQ(ui->store().List()[0].event, "itimer");
}

TEST(ServeUiTest, BusyPortSaysSo) {
  UiOptions options;
  options.dir = ui_testing::MakeTempDir("ui");
  options.profiler = ProfilerForTest();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto first, ServeUi("127.0.0.1", 0, options));
  absl::StatusOr<std::unique_ptr<UiServer>> second = ServeUi("127.0.0.1", first->port(), options);
  EXPECT_THAT(second.status(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("--port"));
}

TEST_F(UiServerTest, TokenGuardsEveryRequest) {
  UiOptions options;
  options.token = "s3cret-token-for-tests";
  Serve(options);
  EXPECT_EQ(Get("/api/status").status, 401);
  EXPECT_EQ(Get("/metrics").status, 401);
  EXPECT_EQ(Get("/api/status", "Authorization: Bearer wrong-token-for-tests\r\n").status, 401);
  EXPECT_EQ(Get("/api/status", "Authorization: Bearer s3cret-token-for-test\r\n").status, 401);
  EXPECT_EQ(Post("/api/start", "event=cpu").status, 401);
  EXPECT_EQ(Json(Get("/api/status", "Authorization: Bearer s3cret-token-for-tests\r\n"))["running"],
            false);
  RawResponse page = Get("/");
  EXPECT_EQ(page.status, 401);
  EXPECT_THAT(page.body, HasSubstr("action=\"/login\""));
  // Wrong token at the login form: no cookie.
  RawResponse wrong = Post("/login", "token=nope", "Content-Type: application/x-www-form-urlencoded\r\n");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.Header("Set-Cookie"), "");
  RawResponse login = Post("/login", "token=s3cret-token-for-tests",
                           "Content-Type: application/x-www-form-urlencoded\r\n");
  ASSERT_EQ(login.status, 303);
  std::string cookie = login.Header("Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  EXPECT_THAT(cookie, HasSubstr("SameSite=Strict"));
  EXPECT_THAT(cookie, Not(HasSubstr("s3cret")));
  std::string session = cookie.substr(0, cookie.find(';'));
  RawResponse with_cookie = Get("/", absl::StrCat("Cookie: ", session, "\r\n"));
  EXPECT_EQ(with_cookie.status, 200);
  EXPECT_THAT(with_cookie.body, HasSubstr("Start profiling"));
  EXPECT_EQ(Get("/", "Cookie: flamekit_session=0123456789abcdef\r\n").status, 401);
  RawResponse logout = Post("/logout", "", absl::StrCat("Cookie: ", session, "\r\n"));
  EXPECT_EQ(logout.status, 303);
  EXPECT_EQ(Get("/", absl::StrCat("Cookie: ", session, "\r\n")).status, 401);
}


Profile ProfileOf(absl::string_view event, uint64_t samples) {
  Profile profile;
  FrameId frames[] = {profile.InternFrame("main"), profile.InternFrame("Work")};
  if (samples > 0) profile.AddStack(frames, samples);
  profile.metadata().event = std::string(event);
  return profile;
}

TEST_F(UiServerTest, DiffLinksPairProfilesOfTheSameEventWithSamples) {
  // Newest first: #4 cpu (30), #3 cpu (empty), #2 page-faults (50), #1 cpu (100).
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile p1, ui_->store().Save(ProfileOf("cpu", 100)));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile p2, ui_->store().Save(ProfileOf("page-faults", 50)));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile p3, ui_->store().Save(ProfileOf("cpu", 0)));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile p4, ui_->store().Save(ProfileOf("cpu", 30)));
  std::string index = Get("/").body;
  auto link = [](const StoredProfile& a, const StoredProfile& b) {
    return absl::StrCat("/diff?a=", a.id, "&amp;b=", b.id);
  };
  // #4 compares with #1: the previous cpu profile that has samples.
  EXPECT_THAT(index, HasSubstr(link(p1, p4)));
  EXPECT_THAT(index, Not(HasSubstr(link(p3, p4))));
  // Nothing for the empty one, nor across events.
  EXPECT_THAT(index, Not(HasSubstr(absl::StrCat("&amp;b=", p3.id, "\""))));
  EXPECT_THAT(index, Not(HasSubstr(absl::StrCat("&amp;b=", p2.id, "\""))));
  // Asked for anyway: a clear answer, not "empty file".
  RawResponse empty = Get(absl::StrCat("/diff?a=", p3.id, "&b=", p4.id));
  EXPECT_EQ(empty.status, 409) << empty.body;
  EXPECT_THAT(empty.body, HasSubstr("no samples"));
  EXPECT_EQ(Get(absl::StrCat("/diff?a=", p1.id, "&b=", p4.id)).status, 200);
}

TEST_F(UiServerTest, StoppingFromThePageHighlightsTheSavedRow) {
  const std::string form = absl::StrCat("Content-Type: application/x-www-form-urlencoded\r\n"
                                        "Origin: http://127.0.0.1:", port_, "\r\n");
  ASSERT_EQ(Post("/ui/start", "event=itimer", form).status, 303);
  {
    CpuBurner burner;
    absl::SleepFor(absl::Milliseconds(300));
  }
  RawResponse stopped = Post("/ui/stop", "", form);
  ASSERT_EQ(stopped.status, 303);
  std::vector<StoredProfile> list = ui_->store().List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(stopped.Header("Location"), absl::StrCat("/?saved=", list[0].id));
  RawResponse page = Get(stopped.Header("Location"));
  EXPECT_THAT(page.body, HasSubstr(absl::StrCat("class=\"profile saved\" data-id=\"", list[0].id)));
  EXPECT_THAT(Get("/").body, Not(HasSubstr("class=\"profile saved\"")));
}

TEST_F(UiServerTest, AfterAnAutoStopThePageShowsTheLastCapture) {
  RawResponse started = Post("/api/start", "event=cpu&duration=1",
                             "Content-Type: application/x-www-form-urlencoded\r\n");
  ASSERT_EQ(started.status, 200) << started.body;
  {
    CpuBurner burner;
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline && ui_->store().List().empty()) {
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  std::vector<StoredProfile> list = ui_->store().List();
  ASSERT_EQ(list.size(), 1u);
  ASSERT_GT(list[0].samples, 0u);
  nlohmann::json status = Json(Get("/api/status"));
  EXPECT_EQ(status["running"], false);
  ASSERT_TRUE(status.contains("last_capture")) << status.dump();
  EXPECT_EQ(status["last_capture"]["samples"], list[0].samples);
  EXPECT_EQ(status["last_capture"]["id"], list[0].id);
  // The page, idle, reads the last capture's figures, not zeros.
  std::string index = Get("/").body;
  EXPECT_THAT(index, HasSubstr("<span id=\"last-capture\" class=\"\">"));
  EXPECT_THAT(index, HasSubstr(absl::StrCat("<span id=\"last-samples\">", list[0].samples,
                                            "</span> samples")));
}

}  // namespace
}  // namespace flamekit
