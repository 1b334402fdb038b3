// SPDX-License-Identifier: Apache-2.0
// File: ui_server.h
//
// ServeUi(): a small web UI inside the running process, on cpp-httplib.
// From a browser (or curl) one starts and stops profiling, browses the
// stored flame graphs (newest first), shows their raw collapsed text,
// compares two of them and deletes them all; /metrics serves Prometheus
// text. Safe by default:
//   - binds 127.0.0.1 unless told otherwise, and any other address needs a
//     token (ServeUi refuses to start without one and says why);
//   - with a token, every request needs it: `Authorization: Bearer TOKEN`,
//     or the session cookie (HttpOnly, SameSite=Strict) the /login page
//     sets; tokens and sessions are compared in constant time;
//   - state changes only by POST/DELETE, refused when Origin/Referer name
//     another site; GET never changes state; on loopback without a token
//     the Host header must be a loopback name (no DNS rebinding);
//   - request names of files are checked by ProfileStore::ResolveFile();
//   - what one client may cost is bounded before authentication (whole
//     request within 2 s, 100 header lines / 32 KiB, 64 KiB body, 8
//     connections still sending per address, 64 in all; see UiOptions and
//     ui_transport.h), and the profile directory must be private to this
//     user (profile_dir.h);
//   - every response carries Content-Security-Policy, X-Content-Type-Options
//     and X-Frame-Options, and the UI's own script runs under that CSP (no
//     inline script; flame graph pages get the hashes of their scripts).
//
// Thread-safety: ServeUi() and the UiServer methods may be called from any
// ordinary thread; the server runs on its own threads (one acceptor, a few
// workers, one auto-stop watcher) until Stop() or destruction. Nothing here
// runs in a signal handler.
//
// The parts, one job each: ui_options.h (UiOptions), ui_auth.h (token,
// sessions, Host and Origin checks), ui_routes.h (the JSON API, actions and
// the request gate), ui_pages.h (HTML), ui_capture.h (captures started from
// the UI), ui_transport.h (threads and connection bounds), profile_store.h
// (the directory). This header puts them together.
//
// Example:
//
//   flamekit::UiOptions options;
//   options.dir = "/var/tmp/myservice-profiles";
//   absl::StatusOr<std::unique_ptr<flamekit::UiServer>> ui =
//       flamekit::ServeUi("127.0.0.1", 8080, options);
//   if (!ui.ok()) { LOG(ERROR) << ui.status(); return; }
//   std::cout << "profiler UI at " << (*ui)->url() << "\n";

#ifndef FLAMEKIT_UI_UI_SERVER_H_
#define FLAMEKIT_UI_UI_SERVER_H_

#include <stdint.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/global_profiler_control.h"
#include "flamekit/ui/profile_store.h"
#include "flamekit/ui/profiler_control.h"
#include "flamekit/ui/ui_auth.h"
#include "flamekit/ui/ui_capture.h"
#include "flamekit/ui/ui_codecs.h"
#include "flamekit/ui/ui_options.h"
#include "flamekit/ui/ui_routes.h"
#include "flamekit/ui/ui_transport.h"
#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so

namespace flamekit {

class UiServer {
 public:
  UiServer(const UiServer&) = delete;
  UiServer& operator=(const UiServer&) = delete;
  // Stops the server; a capture started from the UI that is still running
  // is stopped and saved.
  ~UiServer();

  // Stop()
  //
  // Stops serving and joins the server's threads; a capture started from
  // the UI is stopped and saved. Idempotent.
  void Stop();

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  // "http://127.0.0.1:8080/" (IPv6 hosts in brackets).
  std::string url() const;

  ProfileStore& store() { return *store_; }

  // GenerateFlameGraph()
  //
  // The flame graph HTML of stored profile `id`, rendered again from its
  // collapsed text (NotFound for an unknown id).
  absl::StatusOr<std::string> GenerateFlameGraph(int64_t id, const UiGraphOptions& options = {});

  // GenerateDiffGraph()
  //
  // The diff graph HTML of stored profiles `id_a` (base) -> `id_b`.
  absl::StatusOr<std::string> GenerateDiffGraph(int64_t id_a, int64_t id_b);

  // StartProfiling() / StopProfiling()
  //
  // What POST /api/start and /api/stop do; StopProfiling() saves the
  // profile in the store and returns its entry.
  absl::Status StartProfiling(const UiStartOptions& options);
  absl::StatusOr<StoredProfile> StopProfiling();

 private:
  friend absl::StatusOr<std::unique_ptr<UiServer>> ServeUi(absl::string_view host, int port,
                                                           UiOptions options);
  UiServer() = default;

  std::string host_;
  int port_ = 0;
  UiOptions options_;
  std::unique_ptr<ProfileStore> store_;
  std::unique_ptr<UiAuth> auth_;
  std::unique_ptr<UiCapture> capture_;
  std::unique_ptr<UiRoutes> routes_;
  std::unique_ptr<UiHttpServer> server_;
  std::thread server_thread_;
  std::atomic<bool> stopped_{false};
};

// ServeUi()
//
// Opens (creating) the profile directory and serves the UI on host:port
// (port 0: any free port; see UiServer::port()). Fails, saying why, when
// the address is not loopback and no token is set, when the port cannot be
// bound, or when the directory is unusable.
absl::StatusOr<std::unique_ptr<UiServer>> ServeUi(absl::string_view host, int port,
                                                  UiOptions options);

// Implementation details follow.

inline std::string UiServer::url() const {
  std::string h = host_.find(':') != std::string::npos ? absl::StrCat("[", host_, "]") : host_;
  return absl::StrCat("http://", h, ":", port_, "/");
}

inline absl::StatusOr<std::unique_ptr<UiServer>> ServeUi(absl::string_view host, int port,
                                                         UiOptions options) {
  if (host.empty()) host = "127.0.0.1";
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port ", port, " is out of range; use 1-65535, or 0 for any free port"));
  }
  bool loopback = IsLoopbackHost(host);
  if (!loopback && options.token.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve the profiler UI on ", host,
        " without a token: anyone who can reach it could profile this process and read "
        "its stack traces; set a token (--token) or bind 127.0.0.1"));
  }
  if (!options.token.empty() && options.token.size() < 8) {
    return absl::InvalidArgumentError("the UI token is shorter than 8 characters; use a "
                                      "longer random one (e.g. `openssl rand -hex 16`)");
  }
  if (options.profiler == nullptr) {
    options.profiler = std::make_shared<GlobalProfilerControl>();
  }
  ProfileStoreCodecs defaults = DefaultUiCodecs();
  if (!options.codecs.render_html) options.codecs.render_html = defaults.render_html;
  if (!options.codecs.write_collapsed) options.codecs.write_collapsed = defaults.write_collapsed;
  if (!options.codecs.read_collapsed) options.codecs.read_collapsed = defaults.read_collapsed;
  if (!options.render_diff) options.render_diff = RenderUiDiff;

  std::unique_ptr<UiServer> ui(new UiServer());
  ui->host_ = std::string(host);
  FLAMEKIT_ASSIGN_OR_RETURN(ui->store_,
                            ProfileStore::Open(options.dir, options.max_store_bytes,
                                               options.codecs));
  ui->auth_ = std::make_unique<UiAuth>(loopback, options.token);
  ui->options_ = std::move(options);
  ui->capture_ = std::make_unique<UiCapture>(ui->options_.profiler, ui->store_.get());
  ui->routes_ = std::make_unique<UiRoutes>(&ui->options_, ui->store_.get(), ui->auth_.get(),
                                           ui->capture_.get());

  UiConnectionLimits limits;
  limits.request_timeout = ui->options_.request_timeout;
  limits.response_timeout = ui->options_.response_timeout;
  limits.max_header_count = ui->options_.max_header_count;
  limits.max_header_bytes = ui->options_.max_header_bytes;
  limits.max_connections_per_client = ui->options_.max_connections_per_client;
  ui->server_ = std::make_unique<UiHttpServer>(limits);
  UiServer* raw = ui.get();
  UiHttpServer& server = *ui->server_;
  server.new_task_queue = [raw] {
    return new UiTaskQueue(raw->options_.worker_threads, raw->options_.max_connections);
  };
  server.set_payload_max_length(ui->options_.max_request_bytes);
  // httplib's default also sets SO_REUSEPORT, which lets a second server
  // (any process of this user) bind the same port and take half the
  // connections. SO_REUSEADDR alone: restarts still bind at once.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Reading and writing go through UiHttpServer's guarded stream, which
  // bounds the whole request and response (UiOptions::request_timeout,
  // response_timeout), not httplib's per-read timeouts. One request per
  // connection: idle keep-alive connections would each hold a worker (20
  // polling clients on 4 workers starved the others). Loopback connections
  // are cheap to reopen.
  ui->routes_->Install(server);
  ui->routes_->set_transport(&server);

  std::string bind_host = ui->host_ == "localhost" ? "127.0.0.1" : ui->host_;
  if (port == 0) {
    ui->port_ = server.bind_to_any_port(bind_host);
    if (ui->port_ < 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", bind_host, ": the address is not one of this machine's"));
    }
  } else {
    if (!server.bind_to_port(bind_host, port)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", bind_host, ":", port,
          ": the port is in use or the address is not this machine's; pick another --port "
          "(0 for any free one)"));
    }
    ui->port_ = port;
  }
  (void)server.RaiseBacklog();  // best effort: httplib's 5 still works
  ui->server_thread_ = std::thread([raw] { raw->server_->listen_after_bind(); });
  ui->capture_->StartWatcher();
  // httplib's stop() does nothing until listen_after_bind() has marked the
  // server running; wait for that so that Stop() right after start works.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!server.is_running() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (!server.is_running()) {
    ui->Stop();
    return absl::InternalError("the UI's HTTP server did not start within 10 s");
  }
  return ui;
}

inline UiServer::~UiServer() { Stop(); }

inline void UiServer::Stop() {
  if (stopped_.exchange(true)) return;
  if (capture_ != nullptr) capture_->BeginShutdown();
  if (server_ != nullptr) {
    server_->BeginStop();  // slow clients let go within ~0.1 s
    server_->stop();
  }
  if (server_thread_.joinable()) server_thread_.join();
  // Joins the watcher; a capture started from the UI is stopped and saved.
  if (capture_ != nullptr) capture_->Shutdown();
}

inline absl::Status UiServer::StartProfiling(const UiStartOptions& options) {
  return capture_->Start(options);
}

inline absl::StatusOr<StoredProfile> UiServer::StopProfiling() { return capture_->Stop(); }

inline absl::StatusOr<std::string> UiServer::GenerateFlameGraph(int64_t id,
                                                                const UiGraphOptions& options) {
  FLAMEKIT_ASSIGN_OR_RETURN(Profile profile, store_->Load(id));
  if (!options.title.empty()) profile.metadata().title = options.title;
  return options_.codecs.render_html(profile);
}

inline absl::StatusOr<std::string> UiServer::GenerateDiffGraph(int64_t id_a, int64_t id_b) {
  return routes_->GenerateDiffGraph(id_a, id_b);
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_SERVER_H_
