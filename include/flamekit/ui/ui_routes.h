// SPDX-License-Identifier: Apache-2.0
// File: ui_routes.h
//
// UiRoutes: what the UI answers. It installs on an httplib::Server
//   - the gate every request passes before routing (too many connections:
//     503; Host, Origin and token checks: 403/401), see CheckRequest();
//   - the pages (/, /login, /logout, /static/*), the stored files
//     (/profiles/NAME, names checked by ProfileStore::ResolveFile()) and
//     /diff;
//   - the JSON API (/api/status, /api/profiles, POST /api/start, /api/stop,
//     DELETE /api/profiles), its form twins under /ui/, and /metrics;
//   - the security headers every response carries (CSP, nosniff, DENY).
// GET never changes state; state changes only by POST/DELETE.
//
// Thread-safety: handlers run on many HTTP worker threads at once; the
// store, the auth and the capture they use are thread-safe, and the
// counters are relaxed atomics. Never from a signal handler.
//
// Example:
//
//   UiRoutes routes(&options, &store, &auth, &capture);
//   routes.Install(server);

#ifndef FLAMEKIT_UI_UI_ROUTES_H_
#define FLAMEKIT_UI_UI_ROUTES_H_

#include <stdint.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/profile_store.h"
#include "flamekit/ui/profiler_control.h"
#include "flamekit/ui/ui_auth.h"
#include "flamekit/ui/ui_capture.h"
#include "flamekit/ui/ui_options.h"
#include "flamekit/ui/ui_pages.h"
#include "flamekit/ui/ui_responses.h"
#include "flamekit/ui/ui_transport.h"
#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so
#include "nlohmann/json.hpp"

namespace flamekit {

class UiRoutes {
 public:
  // All pointers must outlive the server the routes are installed on.
  UiRoutes(const UiOptions* options, ProfileStore* store, UiAuth* auth, UiCapture* capture)
      : options_(options), store_(store), auth_(auth), capture_(capture) {}
  UiRoutes(const UiRoutes&) = delete;
  UiRoutes& operator=(const UiRoutes&) = delete;

  // Install()
  //
  // Installs the gate, the handlers and the security headers on `server`.
  void Install(httplib::Server& server);

  // set_transport()
  //
  // The server whose cut-off connections /metrics reports (optional).
  void set_transport(const UiHttpServer* transport) { transport_ = transport; }

  // GenerateDiffGraph()
  //
  // The diff graph HTML of stored profiles `id_a` (base) -> `id_b`.
  absl::StatusOr<std::string> GenerateDiffGraph(int64_t id_a, int64_t id_b);

  // Requests seen, and requests refused (token, origin, host, limits).
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  void CountRefused() { refused_.fetch_add(1, std::memory_order_relaxed); }

 private:
  httplib::Server::HandlerResponse CheckRequest(const httplib::Request& req,
                                                httplib::Response& res);
  std::string RenderIndex(const httplib::Request& req, absl::string_view error);
  nlohmann::json StatusJson();
  absl::StatusOr<UiStartOptions> ParseStart(const httplib::Request& req);
  void HandleStart(const httplib::Request& req, httplib::Response& res, bool form);
  void HandleStop(const httplib::Request& req, httplib::Response& res, bool form);
  void HandleDeleteAll(const httplib::Request& req, httplib::Response& res, bool form);
  std::string Metrics();

  const UiOptions* const options_;
  ProfileStore* const store_;
  UiAuth* const auth_;
  UiCapture* const capture_;
  const UiHttpServer* transport_ = nullptr;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> refused_{0};
};

// Implementation details follow.

inline absl::StatusOr<std::string> UiRoutes::GenerateDiffGraph(int64_t id_a, int64_t id_b) {
  FLAMEKIT_ASSIGN_OR_RETURN(StoredProfile stored_a, store_->Find(id_a));
  FLAMEKIT_ASSIGN_OR_RETURN(StoredProfile stored_b, store_->Find(id_b));
  for (const StoredProfile* p : {&stored_a, &stored_b}) {
    if (p->samples == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "profile ", p->id, " has no samples, so there is nothing to compare; pick profiles "
          "that have samples"));
    }
  }
  FLAMEKIT_ASSIGN_OR_RETURN(Profile a, store_->Load(id_a));
  FLAMEKIT_ASSIGN_OR_RETURN(Profile b, store_->Load(id_b));
  // A diff of two events (cpu against wall, say) would show every frame as
  // changed: refuse it and say which events they are.
  if (a.metadata().event != b.metadata().event) {
    return absl::FailedPreconditionError(absl::StrCat(
        "profile ", id_a, " sampled '", a.metadata().event, "' but profile ", id_b,
        " sampled '", b.metadata().event, "'; compare two profiles of the same event"));
  }
  if (a.metadata().title.empty()) a.metadata().title = absl::StrCat("profile ", id_a);
  if (b.metadata().title.empty()) b.metadata().title = absl::StrCat("profile ", id_b);
  return options_->render_diff(a, b);
}

inline httplib::Server::HandlerResponse UiRoutes::CheckRequest(const httplib::Request& req,
                                                               httplib::Response& res) {
  using HR = httplib::Server::HandlerResponse;
  requests_.fetch_add(1, std::memory_order_relaxed);
  const UiConnectionState* connection = UiHttpServer::CurrentConnection();
  if (ui_internal::tls_over_limit || (connection != nullptr && connection->over_limit)) {
    CountRefused();
    res.set_header("Connection", "close");
    res.set_header("Retry-After", "1");
    ui_internal::SendError(res, 503, "too many connections to the profiler UI; retry shortly");
    return HR::Handled;
  }
  if (connection != nullptr && connection->over_client_limit) {
    CountRefused();
    res.set_header("Connection", "close");
    res.set_header("Retry-After", "1");
    ui_internal::SendError(
        res, 503,
        absl::StrCat("too many connections from your address to the profiler UI (limit ",
                     options_->max_connections_per_client, "); retry shortly"));
    return HR::Handled;
  }
  if (!auth_->HostAllowed(req)) {
    CountRefused();
    ui_internal::SendError(res, 403,
                           "this UI answers only to localhost/127.0.0.1 (Host header refused)");
    return HR::Handled;
  }
  bool changes_state = req.method != "GET" && req.method != "HEAD";
  if (changes_state && !UiAuth::SameOrigin(req)) {
    CountRefused();
    ui_internal::SendError(res, 403, "cross-origin request refused");
    return HR::Handled;
  }
  bool open_path = req.path == "/login" || req.path == "/favicon.ico" ||
                   absl::StartsWith(req.path, "/static/");
  if (!open_path && !auth_->Authenticated(req)) {
    CountRefused();
    bool api = absl::StartsWith(req.path, "/api/") || req.path == "/metrics";
    res.set_header("WWW-Authenticate", "Bearer realm=\"flamekit\"");
    if (api || req.method != "GET") {
      ui_internal::SendError(res, 401,
                             "missing or wrong token: send 'Authorization: Bearer TOKEN'");
    } else {
      res.status = 401;
      bool tried = req.has_header("Cookie") || req.has_header("Authorization");
      res.set_content(RenderLoginPage(tried ? "That token is not valid." : ""),
                      "text/html; charset=utf-8");
    }
    return HR::Handled;
  }
  return HR::Unhandled;
}

inline nlohmann::json UiRoutes::StatusJson() {
  UiProfilerStatus status = options_->profiler->Status();
  nlohmann::json j;
  j["running"] = status.running;
  j["event"] = status.event;
  j["engine"] = status.engine;
  j["elapsed_ms"] = absl::ToInt64Milliseconds(status.elapsed);
  j["samples"] = status.samples;
  j["dropped_samples"] = status.dropped_samples;
  j["handler_time_ms"] = absl::ToDoubleMilliseconds(status.handler_time);
  UiCaptureState capture = capture_->State();
  j["started_from_ui"] = capture.started_from_ui;
  if (capture.auto_stop_in != absl::InfiniteDuration()) {
    j["auto_stop_in_ms"] = absl::ToInt64Milliseconds(capture.auto_stop_in);
  }
  if (capture.last_saved.has_value()) {
    j["last_capture"] = ui_internal::ProfileJson(*capture.last_saved);
  }
  j["last_error"] = capture.last_error;
  UiStartOptions defaults = options_->profiler->DefaultOptions();
  j["defaults"] = {
      {"event", defaults.event},
      {"interval", ui_internal::FormatInterval(defaults.interval, defaults.interval_events)},
      {"duration_s", absl::ToInt64Seconds(defaults.duration)},
      {"per_thread", defaults.per_thread},
      {"transforms_json", defaults.transforms_json},
  };
  j["events"] = options_->profiler->Events();
  std::vector<StoredProfile> list = store_->List();
  uint64_t bytes = 0;
  for (const StoredProfile& p : list) bytes += p.bytes;
  j["profiles"] = list.size();
  j["profile_bytes"] = bytes;
  j["directory"] = store_->directory();
  return j;
}

inline absl::StatusOr<UiStartOptions> UiRoutes::ParseStart(const httplib::Request& req) {
  UiStartOptions options = options_->profiler->DefaultOptions();
  std::string event, interval, duration, per_thread;
  bool has_per_thread = false;
  std::string type = req.get_header_value("Content-Type");
  if (absl::StartsWith(type, "application/json")) {
    nlohmann::json j = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
      return absl::InvalidArgumentError(
          "the body is not a JSON object; send e.g. {\"event\":\"cpu\",\"interval\":\"10ms\"}");
    }
    auto text = [&](const char* key) -> std::string {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) return "";
      if (it->is_string()) return it->get<std::string>();
      if (it->is_number() || it->is_boolean()) return it->dump();
      return "\x01";  // an object or array: refused below
    };
    event = text("event");
    interval = text("interval");
    duration = text("duration");
    has_per_thread = j.contains("per_thread");
    per_thread = text("per_thread");
  } else {
    event = req.get_param_value("event");
    interval = req.get_param_value("interval");
    duration = req.get_param_value("duration");
    // An HTML checkbox is absent when unticked; the form sends a hidden
    // "per_thread_present" so that absence means false there.
    has_per_thread = req.has_param("per_thread") || req.has_param("per_thread_present");
    per_thread = req.get_param_value("per_thread");
  }
  for (const std::string* field : {&event, &interval, &duration, &per_thread}) {
    if (field->find('\x01') != std::string::npos || field->size() > 64) {
      return absl::InvalidArgumentError("start fields must be short strings or numbers");
    }
  }
  if (!event.empty()) {
    std::vector<std::string> events = options_->profiler->Events();
    if (std::find(events.begin(), events.end(), event) == events.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "event '", absl::CHexEscape(event), "' cannot be sampled here; choose one of: ",
          absl::StrJoin(events, ", ")));
    }
    options.event = event;
  }
  if (!interval.empty()) {
    FLAMEKIT_ASSIGN_OR_RETURN(PerfPeriod period, ParsePerfInterval(interval));
    options.interval = period.interval;
    options.interval_events = period.count;
  }
  if (!duration.empty()) {
    absl::Duration d;
    double seconds = 0;
    if (absl::SimpleAtod(duration, &seconds)) {
      d = absl::Seconds(seconds);
    } else if (!absl::ParseDuration(duration, &d)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "duration '", absl::CHexEscape(duration), "' is not a duration; use e.g. 30s or 2m"));
    }
    if (d < absl::ZeroDuration() || d > absl::Hours(24)) {
      return absl::InvalidArgumentError("duration must be between 0 (no auto-stop) and 24h");
    }
    options.duration = d;
  }
  if (has_per_thread) options.per_thread = ui_internal::ParseBool(per_thread);
  return options;
}

inline void UiRoutes::HandleStart(const httplib::Request& req, httplib::Response& res,
                                  bool form) {
  absl::StatusOr<UiStartOptions> options = ParseStart(req);
  absl::Status status = options.ok() ? capture_->Start(*options) : options.status();
  if (form) {
    if (status.ok()) {
      res.set_redirect("/", 303);
    } else {
      res.status = ui_internal::HttpStatusFor(status);
      res.set_content(RenderIndex(req, status.message()), "text/html; charset=utf-8");
    }
    return;
  }
  if (!status.ok()) {
    ui_internal::SendError(res, ui_internal::HttpStatusFor(status), status.message());
    return;
  }
  ui_internal::SendJson(res, 200, StatusJson());
}

inline void UiRoutes::HandleStop(const httplib::Request& req, httplib::Response& res, bool form) {
  absl::StatusOr<StoredProfile> saved = capture_->Stop();
  if (form) {
    if (saved.ok()) {
      // The index highlights the row just saved.
      res.set_redirect(absl::StrCat("/?saved=", saved->id), 303);
    } else {
      res.status = ui_internal::HttpStatusFor(saved.status());
      res.set_content(RenderIndex(req, saved.status().message()), "text/html; charset=utf-8");
    }
    return;
  }
  if (!saved.ok()) {
    ui_internal::SendError(res, ui_internal::HttpStatusFor(saved.status()),
                           saved.status().message());
    return;
  }
  nlohmann::json j;
  j["profile"] = ui_internal::ProfileJson(*saved);
  ui_internal::SendJson(res, 200, j);
}

inline void UiRoutes::HandleDeleteAll(const httplib::Request& req, httplib::Response& res,
                                      bool form) {
  absl::StatusOr<size_t> deleted = store_->DeleteAll();
  if (form) {
    if (deleted.ok()) {
      res.set_redirect("/", 303);
    } else {
      res.status = 500;
      res.set_content(RenderIndex(req, deleted.status().message()), "text/html; charset=utf-8");
    }
    return;
  }
  if (!deleted.ok()) {
    ui_internal::SendError(res, 500, deleted.status().message());
    return;
  }
  ui_internal::SendJson(res, 200, {{"deleted", *deleted}});
}

inline std::string UiRoutes::RenderIndex(const httplib::Request& req, absl::string_view error) {
  UiIndexInputs in;
  in.status = options_->profiler->Status();
  in.defaults = options_->profiler->DefaultOptions();
  in.events = options_->profiler->Events();
  in.profiles = store_->List();
  in.directory = store_->directory();
  in.error = std::string(error);
  UiCaptureState capture = capture_->State();
  in.last_error = capture.last_error;
  in.last_saved = capture.last_saved;
  int64_t saved = 0;
  if (req.has_param("saved") && absl::SimpleAtoi(req.get_param_value("saved"), &saved)) {
    in.highlight_id = saved;
  }
  in.raw = req.has_param("raw") && ui_internal::ParseBool(req.get_param_value("raw"));
  in.token = auth_->has_token();
  return RenderIndexPage(in);
}

inline std::string UiRoutes::Metrics() {
  UiProfilerStatus status = options_->profiler->Status();
  std::vector<StoredProfile> list = store_->List();
  uint64_t bytes = 0;
  for (const StoredProfile& p : list) bytes += p.bytes;
  std::string out;
  auto metric = [&out](absl::string_view name, absl::string_view type, absl::string_view help,
                       const std::string& value) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name,
                    " ", value, "\n");
  };
  metric("flamekit_profiler_running", "gauge", "1 while a profile is being captured.",
         status.running ? "1" : "0");
  metric("flamekit_profiler_samples", "gauge", "Samples taken by the current or last capture.",
         absl::StrCat(status.samples));
  metric("flamekit_profiler_dropped_samples", "gauge",
         "Samples the current or last capture had to drop.", absl::StrCat(status.dropped_samples));
  metric("flamekit_profiler_elapsed_seconds", "gauge",
         "How long the current capture has been running.",
         absl::StrFormat("%.3f", absl::ToDoubleSeconds(status.elapsed)));
  metric("flamekit_profiler_handler_seconds_total", "counter",
         "Time spent in the sampling handler: the profiler's own overhead.",
         absl::StrFormat("%.6f", absl::ToDoubleSeconds(status.handler_time)));
  metric("flamekit_profiles_stored", "gauge", "Profiles in the UI's directory.",
         absl::StrCat(list.size()));
  metric("flamekit_profiles_stored_bytes", "gauge", "Bytes of the stored profiles.",
         absl::StrCat(bytes));
  metric("flamekit_ui_requests_total", "counter", "HTTP requests the UI received.",
         absl::StrCat(requests()));
  metric("flamekit_ui_refused_requests_total", "counter",
         "Requests refused: no token, other origin, bad host, too many connections, "
         "headers over the limit, too slow.",
         absl::StrCat(refused()));
  if (transport_ != nullptr) {
    metric("flamekit_ui_slow_requests_total", "counter",
           "Connections dropped because the whole request did not arrive in time.",
           absl::StrCat(transport_->timed_out()));
    metric("flamekit_ui_oversized_headers_total", "counter",
           "Connections cut off for too many or too large request headers.",
           absl::StrCat(transport_->header_limited()));
    metric("flamekit_ui_client_limited_connections_total", "counter",
           "Connections refused: too many from one address still sending.",
           absl::StrCat(transport_->client_limited()));
  }
  return out;
}

inline void UiRoutes::Install(httplib::Server& server) {
  using httplib::Request;
  using httplib::Response;
  server.set_pre_routing_handler(
      [this](const Request& req, Response& res) { return CheckRequest(req, res); });
  server.set_post_routing_handler([](const Request&, Response& res) {
    if (!res.has_header("Content-Security-Policy")) {
      res.set_header("Content-Security-Policy", std::string(ui_internal::kUiCsp));
    }
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "same-origin");
    res.set_header("Cache-Control", "no-store");
  });
  server.set_error_handler([this](const Request&, Response& res) {
    // Requests the guarded stream cut off (ui_transport.h): say why.
    const UiConnectionState* connection = UiHttpServer::CurrentConnection();
    if (connection != nullptr && connection->header_limit) {
      CountRefused();
      res.set_header("Connection", "close");
      ui_internal::SendError(
          res, 431,
          absl::StrCat("request headers over the limit (", options_->max_header_count,
                       " lines, ", options_->max_header_bytes, " bytes)"));
      return;
    }
    if (connection != nullptr && connection->timed_out) {
      CountRefused();
      res.set_header("Connection", "close");
      ui_internal::SendError(
          res, 408,
          absl::StrCat("the request did not arrive within ",
                       absl::FormatDuration(options_->request_timeout)));
      return;
    }
    if (!res.body.empty()) return;
    std::string message = res.status == 404   ? "not found"
                          : res.status == 413 ? "request too large"
                          : res.status == 400 ? "bad request"
                                              : "request refused";
    ui_internal::SendError(res, res.status, message);
  });
  server.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
    ui_internal::SendError(res, 500, "internal error in the profiler UI");
  });

  server.Get("/", [this](const Request& req, Response& res) {
    res.set_content(RenderIndex(req, ""), "text/html; charset=utf-8");
  });
  // Browsers ask for it on every page; an empty answer keeps 404s (and
  // console errors) away.
  server.Get("/favicon.ico", [](const Request&, Response& res) { res.status = 204; });
  server.Get("/static/ui.js", [](const Request&, Response& res) {
    res.set_content(UiTemplateText("ui.js"), "text/javascript; charset=utf-8");
  });
  server.Get("/static/ui.css", [](const Request&, Response& res) {
    res.set_content(UiTemplateText("ui.css"), "text/css; charset=utf-8");
  });
  server.Get("/login", [this](const Request& req, Response& res) {
    if (!auth_->has_token() || auth_->Authenticated(req)) {
      res.set_redirect("/", 303);
      return;
    }
    res.set_content(RenderLoginPage(""), "text/html; charset=utf-8");
  });
  server.Post("/login", [this](const Request& req, Response& res) {
    if (!auth_->has_token()) {
      res.set_redirect("/", 303);
      return;
    }
    if (!auth_->TokenMatches(req.get_param_value("token"))) {
      CountRefused();
      res.status = 401;
      res.set_content(RenderLoginPage("That token is not valid."), "text/html; charset=utf-8");
      return;
    }
    res.set_header("Set-Cookie", absl::StrCat(UiAuth::kSessionCookie, "=", auth_->NewSession(),
                                              "; Path=/; HttpOnly; SameSite=Strict"));
    res.set_redirect("/", 303);
  });
  server.Post("/logout", [this](const Request& req, Response& res) {
    auth_->EndSession(req);
    res.set_header("Set-Cookie", absl::StrCat(UiAuth::kSessionCookie,
                                              "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
    res.set_redirect("/login", 303);
  });

  // Stored files. httplib has already percent-decoded the path, so an
  // encoded "../" arrives as "../" and fails the name pattern.
  server.Get("/profiles/(.*)", [this](const Request& req, Response& res) {
    std::string name = req.matches[1];
    absl::StatusOr<std::string> data = store_->ReadFile(name);
    if (!data.ok()) {
      ui_internal::SendError(res, 404, "no such profile file");
      return;
    }
    if (absl::EndsWith(name, ".html")) {
      res.set_header("Content-Security-Policy", GeneratedPageCsp(*data));
      res.set_content(*data, "text/html; charset=utf-8");
    } else {
      res.set_content(*data, "text/plain; charset=utf-8");
    }
  });
  server.Get("/diff", [this](const Request& req, Response& res) {
    int64_t a = 0, b = 0;
    if (!absl::SimpleAtoi(req.get_param_value("a"), &a) ||
        !absl::SimpleAtoi(req.get_param_value("b"), &b)) {
      ui_internal::SendError(res, 400, "give two profile ids: /diff?a=BASE_ID&b=NEW_ID");
      return;
    }
    absl::StatusOr<std::string> html = GenerateDiffGraph(a, b);
    if (!html.ok()) {
      ui_internal::SendError(res, ui_internal::HttpStatusFor(html.status()),
                             html.status().message());
      return;
    }
    res.set_header("Content-Security-Policy", GeneratedPageCsp(*html));
    res.set_content(*html, "text/html; charset=utf-8");
  });

  server.Get("/api/status", [this](const Request&, Response& res) {
    ui_internal::SendJson(res, 200, StatusJson());
  });
  server.Get("/api/profiles", [this](const Request&, Response& res) {
    nlohmann::json list = nlohmann::json::array();
    for (const StoredProfile& p : store_->List()) list.push_back(ui_internal::ProfileJson(p));
    ui_internal::SendJson(res, 200, {{"profiles", list}});
  });
  server.Post("/api/start",
              [this](const Request& req, Response& res) { HandleStart(req, res, false); });
  server.Post("/api/stop",
              [this](const Request& req, Response& res) { HandleStop(req, res, false); });
  server.Delete("/api/profiles",
                [this](const Request& req, Response& res) { HandleDeleteAll(req, res, false); });
  server.Post("/ui/start",
              [this](const Request& req, Response& res) { HandleStart(req, res, true); });
  server.Post("/ui/stop",
              [this](const Request& req, Response& res) { HandleStop(req, res, true); });
  server.Post("/ui/delete-all",
              [this](const Request& req, Response& res) { HandleDeleteAll(req, res, true); });
  server.Get("/metrics", [this](const Request&, Response& res) {
    res.set_content(Metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_ROUTES_H_
