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
//   - request bodies, headers and concurrent connections are bounded; every
//     response carries Content-Security-Policy, X-Content-Type-Options and
//     X-Frame-Options, and the UI's own script runs under that CSP (no
//     inline script; flame graph pages get the hashes of their scripts).
//
// Thread-safety: ServeUi() and the UiServer methods may be called from any
// ordinary thread; the server runs on its own threads (one acceptor, a few
// workers, one auto-stop watcher) until Stop() or destruction. Nothing here
// runs in a signal handler.
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

#include <arpa/inet.h>
#include <sys/socket.h>
#include <stdint.h>
#include <sys/random.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/global_profiler_control.h"
#include "flamekit/ui/profile_store.h"
#include "flamekit/ui/profiler_control.h"
#include "flamekit/ui/ui_codecs.h"
#include "flamekit/ui/ui_templates.h"
#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so
#include "kainjow/mustache.hpp"
#include "nlohmann/json.hpp"
#include "openssl/crypto.h"  // CRYPTO_memcmp (constant time); already linked by httplib
#include "openssl/sha.h"     // SHA256 for CSP script hashes and token digests

namespace flamekit {

struct UiOptions {
  // Where profiles are kept; empty: ProfileStore::DefaultDirectory().
  std::string dir;
  // Cap on the stored profiles' total size; the oldest go first.
  uint64_t max_store_bytes = uint64_t{512} << 20;
  // Required for any address other than loopback. When set, every request
  // must carry it (see the banner).
  std::string token;
  // Request body limit (larger: 413) and how many connections may be
  // served or queued at once (more: 503 until some finish).
  size_t max_request_bytes = 64 * 1024;
  size_t max_connections = 64;
  size_t worker_threads = 4;
  // The profiler the UI drives; unset: Profiler::Global() through
  // GlobalProfilerControl.
  std::shared_ptr<ProfilerControl> profiler;
  // How profiles are rendered and stored; empty members take
  // DefaultUiCodecs().
  ProfileStoreCodecs codecs;
  std::function<absl::StatusOr<std::string>(const Profile&, const Profile&)> render_diff;
};

// Options for GenerateFlameGraph(): a new rendering of a stored profile.
struct UiGraphOptions {
  std::string title;
};

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
  class BoundedTaskQueue;
  UiServer() = default;

  void InstallRoutes();
  void WatchCaptures();
  httplib::Server::HandlerResponse CheckRequest(const httplib::Request& req,
                                                httplib::Response& res);
  bool Authenticated(const httplib::Request& req) const;
  bool SameOrigin(const httplib::Request& req) const;
  bool HostAllowed(const httplib::Request& req) const;
  std::string NewSession();
  std::string RenderIndex(const httplib::Request& req, absl::string_view error);
  nlohmann::json StatusJson();
  absl::StatusOr<UiStartOptions> ParseStart(const httplib::Request& req);
  void HandleStart(const httplib::Request& req, httplib::Response& res, bool form);
  void HandleStop(const httplib::Request& req, httplib::Response& res, bool form);
  void HandleDeleteAll(const httplib::Request& req, httplib::Response& res, bool form);

  std::string host_;
  int port_ = 0;
  bool loopback_ = true;
  UiOptions options_;
  std::string token_digest_;  // SHA-256 of the token; empty without one
  std::unique_ptr<ProfileStore> store_;
  httplib::Server server_;
  std::thread server_thread_;
  std::thread watcher_thread_;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> refused_{0};

  // Serialises start/stop/save between HTTP workers and the watcher.
  absl::Mutex capture_mu_;
  bool ui_capture_ ABSL_GUARDED_BY(capture_mu_) = false;
  absl::Time deadline_ ABSL_GUARDED_BY(capture_mu_) = absl::InfiniteFuture();
  std::string last_error_ ABSL_GUARDED_BY(capture_mu_);
  bool shutting_down_ ABSL_GUARDED_BY(capture_mu_) = false;

  mutable absl::Mutex session_mu_;
  absl::flat_hash_set<std::string> session_digests_ ABSL_GUARDED_BY(session_mu_);
  std::deque<std::string> session_order_ ABSL_GUARDED_BY(session_mu_);
};

// ServeUi()
//
// Opens (creating) the profile directory and serves the UI on host:port
// (port 0: any free port; see UiServer::port()). Fails, saying why, when
// the address is not loopback and no token is set, when the port cannot be
// bound, or when the directory is unusable.
absl::StatusOr<std::unique_ptr<UiServer>> ServeUi(absl::string_view host, int port,
                                                  UiOptions options);

// IsLoopbackHost()
//
// "127.0.0.1" (any 127/8 address), "::1" and "localhost".
bool IsLoopbackHost(absl::string_view host);

// Implementation details follow.

namespace ui_internal {

inline constexpr absl::string_view kSessionCookie = "flamekit_session";

inline constexpr absl::string_view kUiCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

inline std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

// Equal digests, compared without an early exit.
inline bool DigestsEqual(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The CSP for a generated page (flame graph, diff graph): its inline
// <script> blocks are allowed by hash, nothing else runs.
inline std::string GeneratedPageCsp(absl::string_view html) {
  std::string hashes;
  size_t pos = 0;
  while (true) {
    size_t open = html.find("<script", pos);
    if (open == absl::string_view::npos) break;
    size_t tag_end = html.find('>', open);
    if (tag_end == absl::string_view::npos) break;
    absl::string_view tag = html.substr(open, tag_end - open);
    size_t close = html.find("</script>", tag_end);
    if (close == absl::string_view::npos) break;
    if (tag.find(" src=") == absl::string_view::npos) {
      absl::string_view body = html.substr(tag_end + 1, close - tag_end - 1);
      absl::StrAppend(&hashes, " 'sha256-", absl::Base64Escape(Sha256(body)), "'");
    }
    pos = close + 9;
  }
  return absl::StrCat("default-src 'none'; script-src", hashes.empty() ? " 'none'" : hashes,
                      "; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                      "connect-src 'none'; form-action 'none'; frame-ancestors 'none'; "
                      "base-uri 'none'");
}

inline std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrFormat("%.1f MiB", bytes / (1024.0 * 1024.0));
}

inline std::string HumanDuration(absl::Duration d) {
  double seconds = absl::ToDoubleSeconds(d);
  if (seconds < 60) return absl::StrFormat("%.1f s", seconds);
  return absl::StrFormat("%d min %02d s", static_cast<int>(seconds) / 60,
                         static_cast<int>(seconds) % 60);
}

inline std::string FormatInterval(absl::Duration interval, uint64_t events) {
  if (events > 0) return absl::StrCat(events);
  if (interval <= absl::ZeroDuration()) return "";
  int64_t ns = absl::ToInt64Nanoseconds(interval);
  if (ns % 1000000000 == 0) return absl::StrCat(ns / 1000000000, "s");
  if (ns % 1000000 == 0) return absl::StrCat(ns / 1000000, "ms");
  if (ns % 1000 == 0) return absl::StrCat(ns / 1000, "us");
  return absl::StrCat(ns, "ns");
}

inline std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(&raw[got], bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return absl::BytesToHexString(raw);
}

inline std::string CookieValue(absl::string_view header, absl::string_view name) {
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::ConsumePrefix(&part, name) && absl::ConsumePrefix(&part, "=")) {
      return std::string(part);
    }
  }
  return "";
}

inline bool ParseBool(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(text);
  return t == "1" || t == "true" || t == "on" || t == "yes";
}

inline nlohmann::json ProfileJson(const StoredProfile& p) {
  nlohmann::json j;
  j["id"] = p.id;
  j["event"] = p.event;
  j["html"] = p.html_name;
  j["txt"] = p.txt_name;
  j["url"] = absl::StrCat("/profiles/", p.html_name);
  j["raw_url"] = absl::StrCat("/profiles/", p.txt_name);
  j["samples"] = p.samples;
  j["dropped_samples"] = p.dropped_samples;
  j["low_samples"] = p.samples < 1000;
  j["bytes"] = p.bytes;
  j["duration_ms"] = absl::ToInt64Milliseconds(p.duration);
  j["engine"] = p.engine;
  j["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", p.time, absl::UTCTimeZone());
  return j;
}

// JSON whose strings cannot open markup even if a browser were tricked into
// reading it as HTML: '<', '>' and '&' (which only occur inside strings)
// become \u escapes.
inline std::string SafeJson(const nlohmann::json& body) {
  std::string text = body.dump(2);
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out.push_back(c);
    }
  }
  out.push_back('\n');
  return out;
}

inline void SendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(SafeJson(body), "application/json");
}

inline void SendError(httplib::Response& res, int status, absl::string_view message) {
  nlohmann::json j;
  j["error"] = std::string(message);
  SendJson(res, status, j);
}

inline int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

inline std::string TemplateText(absl::string_view name) {
  for (const UiTemplateFile& file : kUiTemplateFiles) {
    if (name == file.name) return file.text;
  }
  return "";
}

// Set on the thread that serves connections over the limit: such requests
// get 503 without being routed.
inline thread_local bool tls_over_limit = false;

}  // namespace ui_internal

// A worker pool whose queue is bounded: connections beyond the limit are
// answered 503 by one extra thread (and when even that is backed up, on the
// accepting thread, which slows accepting down: backpressure).
class UiServer::BoundedTaskQueue : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(size_t workers, size_t max_pending)
      : max_pending_(std::max<size_t>(max_pending, workers)) {
    for (size_t i = 0; i < std::max<size_t>(workers, 1); ++i) {
      threads_.emplace_back([this] { Work(false); });
    }
    threads_.emplace_back([this] { Work(true); });
  }
  ~BoundedTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (pending_ < max_pending_) {
        ++pending_;
        jobs_.push_back(std::move(fn));
        jobs_cv_.notify_one();
        return;
      }
      if (overflow_.size() < max_pending_) {
        overflow_.push_back(std::move(fn));
        overflow_cv_.notify_one();
        return;
      }
    }
    ui_internal::tls_over_limit = true;
    fn();
    ui_internal::tls_over_limit = false;
  }

  void shutdown() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
      jobs_cv_.notify_all();
      overflow_cv_.notify_all();
    }
    for (std::thread& t : threads_) t.join();
  }

 private:
  void Work(bool rejecter) {
    ui_internal::tls_over_limit = rejecter;
    while (true) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        std::deque<std::function<void()>>& queue = rejecter ? overflow_ : jobs_;
        // Separate condition variables: a notify_one meant for a worker
        // must never be swallowed by the rejecter, and vice versa.
        (rejecter ? overflow_cv_ : jobs_cv_).wait(lock, [&] { return shutdown_ || !queue.empty(); });
        if (queue.empty()) return;  // shut down and drained
        fn = std::move(queue.front());
        queue.pop_front();
      }
      fn();
      if (!rejecter) {
        std::unique_lock<std::mutex> lock(mu_);
        --pending_;
      }
    }
  }

  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable jobs_cv_;
  std::condition_variable overflow_cv_;
  std::deque<std::function<void()>> jobs_;
  std::deque<std::function<void()>> overflow_;
  size_t pending_ = 0;  // queued + running jobs
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

inline bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  struct in_addr addr;
  std::string h(host);
  if (::inet_pton(AF_INET, h.c_str(), &addr) == 1) {
    return (ntohl(addr.s_addr) >> 24) == 127;
  }
  return false;
}

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
  ui->loopback_ = loopback;
  FLAMEKIT_ASSIGN_OR_RETURN(ui->store_,
                            ProfileStore::Open(options.dir, options.max_store_bytes,
                                               options.codecs));
  if (!options.token.empty()) ui->token_digest_ = ui_internal::Sha256(options.token);
  ui->options_ = std::move(options);
  ui->InstallRoutes();

  std::string bind_host = ui->host_ == "localhost" ? "127.0.0.1" : ui->host_;
  if (port == 0) {
    ui->port_ = ui->server_.bind_to_any_port(bind_host);
    if (ui->port_ < 0) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", bind_host, ": the address is not one of this machine's"));
    }
  } else {
    if (!ui->server_.bind_to_port(bind_host, port)) {
      return absl::UnavailableError(absl::StrCat(
          "cannot listen on ", bind_host, ":", port,
          ": the port is in use or the address is not this machine's; pick another --port "
          "(0 for any free one)"));
    }
    ui->port_ = port;
  }
  UiServer* raw = ui.get();
  ui->server_thread_ = std::thread([raw] { raw->server_.listen_after_bind(); });
  ui->watcher_thread_ = std::thread([raw] { raw->WatchCaptures(); });
  // httplib's stop() does nothing until listen_after_bind() has marked the
  // server running; wait for that so that Stop() right after start works.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!ui->server_.is_running() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  if (!ui->server_.is_running()) {
    ui->Stop();
    return absl::InternalError("the UI's HTTP server did not start within 10 s");
  }
  return ui;
}

inline UiServer::~UiServer() { Stop(); }

inline void UiServer::Stop() {
  if (stopped_.exchange(true)) return;
  {
    absl::MutexLock lock(&capture_mu_);
    shutting_down_ = true;
  }
  server_.stop();
  if (server_thread_.joinable()) server_thread_.join();
  if (watcher_thread_.joinable()) watcher_thread_.join();
  // A capture started from the UI is not lost with the UI: stop and save it.
  bool capturing;
  {
    absl::MutexLock lock(&capture_mu_);
    capturing = ui_capture_;
  }
  if (capturing) (void)StopProfiling();
}

inline void UiServer::WatchCaptures() {
  absl::MutexLock lock(&capture_mu_);
  while (!shutting_down_) {
    // Wake at the deadline, at shut-down, or every 200 ms to notice a
    // capture the profiler ended by itself.
    capture_mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), absl::Milliseconds(200));
    if (shutting_down_ || !ui_capture_) continue;
    bool due = absl::Now() >= deadline_;
    capture_mu_.Unlock();
    bool running = options_.profiler->Status().running;
    capture_mu_.Lock();
    if (!ui_capture_ || (!due && running)) continue;
    capture_mu_.Unlock();
    absl::StatusOr<StoredProfile> saved = StopProfiling();
    capture_mu_.Lock();
    if (!saved.ok() && saved.status().code() != absl::StatusCode::kFailedPrecondition) {
      last_error_ = saved.status().ToString();
    }
  }
}

inline absl::Status UiServer::StartProfiling(const UiStartOptions& options) {
  absl::MutexLock lock(&capture_mu_);
  if (options_.profiler->Status().running) {
    return absl::FailedPreconditionError(
        "the profiler is already running; stop it first (POST /api/stop)");
  }
  UiStartOptions start = options;
  start.duration = absl::ZeroDuration();  // the watcher stops it, and saves
  FLAMEKIT_RETURN_IF_ERROR(options_.profiler->Start(start));
  ui_capture_ = true;
  last_error_.clear();
  deadline_ = options.duration > absl::ZeroDuration() ? absl::Now() + options.duration
                                                      : absl::InfiniteFuture();
  return absl::OkStatus();
}

inline absl::StatusOr<StoredProfile> UiServer::StopProfiling() {
  absl::MutexLock lock(&capture_mu_);
  ui_capture_ = false;
  deadline_ = absl::InfiniteFuture();
  absl::StatusOr<Profile> profile = options_.profiler->Stop();
  if (!profile.ok()) return profile.status();
  absl::StatusOr<StoredProfile> saved = store_->Save(*profile);
  if (!saved.ok()) last_error_ = saved.status().ToString();
  return saved;
}

inline absl::StatusOr<std::string> UiServer::GenerateFlameGraph(int64_t id,
                                                                const UiGraphOptions& options) {
  FLAMEKIT_ASSIGN_OR_RETURN(Profile profile, store_->Load(id));
  if (!options.title.empty()) profile.metadata().title = options.title;
  return options_.codecs.render_html(profile);
}

inline absl::StatusOr<std::string> UiServer::GenerateDiffGraph(int64_t id_a, int64_t id_b) {
  FLAMEKIT_ASSIGN_OR_RETURN(Profile a, store_->Load(id_a));
  FLAMEKIT_ASSIGN_OR_RETURN(Profile b, store_->Load(id_b));
  if (a.metadata().title.empty()) a.metadata().title = absl::StrCat("profile ", id_a);
  if (b.metadata().title.empty()) b.metadata().title = absl::StrCat("profile ", id_b);
  return options_.render_diff(a, b);
}

inline bool UiServer::Authenticated(const httplib::Request& req) const {
  if (token_digest_.empty()) return true;
  std::string auth = req.get_header_value("Authorization");
  absl::string_view bearer = auth;
  if (absl::ConsumePrefix(&bearer, "Bearer ")) {
    return ui_internal::DigestsEqual(ui_internal::Sha256(absl::StripAsciiWhitespace(bearer)),
                                     token_digest_);
  }
  std::string session =
      ui_internal::CookieValue(req.get_header_value("Cookie"), ui_internal::kSessionCookie);
  if (session.empty()) return false;
  // Looked up by digest: the lookup's timing says nothing about the
  // secret session ids.
  std::string digest = ui_internal::Sha256(session);
  absl::MutexLock lock(&session_mu_);
  return session_digests_.contains(digest);
}

inline std::string UiServer::NewSession() {
  std::string session = ui_internal::RandomHex(32);
  absl::MutexLock lock(&session_mu_);
  std::string digest = ui_internal::Sha256(session);
  session_digests_.insert(digest);
  session_order_.push_back(digest);
  while (session_order_.size() > 256) {
    session_digests_.erase(session_order_.front());
    session_order_.pop_front();
  }
  return session;
}

inline bool UiServer::HostAllowed(const httplib::Request& req) const {
  if (!loopback_ || !token_digest_.empty()) return true;
  // Without a token, a loopback server must only answer requests meant for
  // a loopback name: a DNS-rebinding page sends its own host name.
  std::string host = absl::AsciiStrToLower(req.get_header_value("Host"));
  if (host.empty()) return true;  // HTTP/1.0 client on this machine
  absl::string_view name = host;
  if (absl::StartsWith(name, "[")) {
    size_t close = name.find(']');
    if (close == absl::string_view::npos) return false;
    name = name.substr(1, close - 1);
  } else {
    size_t colon = name.rfind(':');
    if (colon != absl::string_view::npos) name = name.substr(0, colon);
  }
  return IsLoopbackHost(name);
}

inline bool UiServer::SameOrigin(const httplib::Request& req) const {
  std::string host = absl::AsciiStrToLower(req.get_header_value("Host"));
  auto matches = [&](absl::string_view origin) {
    std::string o = absl::AsciiStrToLower(origin);
    return !host.empty() && (o == absl::StrCat("http://", host) || o == absl::StrCat("https://", host));
  };
  if (req.has_header("Origin")) return matches(req.get_header_value("Origin"));
  if (req.has_header("Referer")) {
    std::string referer = req.get_header_value("Referer");
    size_t scheme = referer.find("://");
    if (scheme == std::string::npos) return false;
    size_t slash = referer.find('/', scheme + 3);
    return matches(absl::string_view(referer).substr(0, slash));
  }
  // Neither header: not a browser (browsers send Origin with every POST
  // and DELETE); curl and scripts get through, with the token if one is set.
  return true;
}

inline httplib::Server::HandlerResponse UiServer::CheckRequest(const httplib::Request& req,
                                                               httplib::Response& res) {
  using HR = httplib::Server::HandlerResponse;
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (ui_internal::tls_over_limit) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    res.set_header("Connection", "close");
    res.set_header("Retry-After", "1");
    ui_internal::SendError(res, 503, "too many connections to the profiler UI; retry shortly");
    return HR::Handled;
  }
  if (!HostAllowed(req)) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    ui_internal::SendError(res, 403,
                           "this UI answers only to localhost/127.0.0.1 (Host header refused)");
    return HR::Handled;
  }
  bool changes_state = req.method != "GET" && req.method != "HEAD";
  if (changes_state && !SameOrigin(req)) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    ui_internal::SendError(res, 403, "cross-origin request refused");
    return HR::Handled;
  }
  bool open_path = req.path == "/login" || req.path == "/favicon.ico" ||
                   absl::StartsWith(req.path, "/static/");
  if (!open_path && !Authenticated(req)) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    bool api = absl::StartsWith(req.path, "/api/") || req.path == "/metrics";
    res.set_header("WWW-Authenticate", "Bearer realm=\"flamekit\"");
    if (api || req.method != "GET") {
      ui_internal::SendError(res, 401,
                             "missing or wrong token: send 'Authorization: Bearer TOKEN'");
    } else {
      res.status = 401;
      kainjow::mustache::mustache page(ui_internal::TemplateText("login.html"));
      kainjow::mustache::data data;
      bool tried = req.has_header("Cookie") || req.has_header("Authorization");
      data.set("error", tried ? "That token is not valid." : "");
      data.set("has_error", tried);
      res.set_content(page.render(data), "text/html; charset=utf-8");
    }
    return HR::Handled;
  }
  return HR::Unhandled;
}

inline nlohmann::json UiServer::StatusJson() {
  UiProfilerStatus status = options_.profiler->Status();
  nlohmann::json j;
  j["running"] = status.running;
  j["event"] = status.event;
  j["engine"] = status.engine;
  j["elapsed_ms"] = absl::ToInt64Milliseconds(status.elapsed);
  j["samples"] = status.samples;
  j["dropped_samples"] = status.dropped_samples;
  j["handler_time_ms"] = absl::ToDoubleMilliseconds(status.handler_time);
  {
    absl::MutexLock lock(&capture_mu_);
    j["started_from_ui"] = ui_capture_;
    if (ui_capture_ && deadline_ != absl::InfiniteFuture()) {
      j["auto_stop_in_ms"] =
          std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline_ - absl::Now()));
    }
    j["last_error"] = last_error_;
  }
  UiStartOptions defaults = options_.profiler->DefaultOptions();
  j["defaults"] = {
      {"event", defaults.event},
      {"interval", ui_internal::FormatInterval(defaults.interval, defaults.interval_events)},
      {"duration_s", absl::ToInt64Seconds(defaults.duration)},
      {"per_thread", defaults.per_thread},
      {"transforms_json", defaults.transforms_json},
  };
  j["events"] = options_.profiler->Events();
  std::vector<StoredProfile> list = store_->List();
  uint64_t bytes = 0;
  for (const StoredProfile& p : list) bytes += p.bytes;
  j["profiles"] = list.size();
  j["profile_bytes"] = bytes;
  j["directory"] = store_->directory();
  return j;
}

inline absl::StatusOr<UiStartOptions> UiServer::ParseStart(const httplib::Request& req) {
  UiStartOptions options = options_.profiler->DefaultOptions();
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
    std::vector<std::string> events = options_.profiler->Events();
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

inline void UiServer::HandleStart(const httplib::Request& req, httplib::Response& res,
                                  bool form) {
  absl::StatusOr<UiStartOptions> options = ParseStart(req);
  absl::Status status = options.ok() ? StartProfiling(*options) : options.status();
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

inline void UiServer::HandleStop(const httplib::Request& req, httplib::Response& res, bool form) {
  absl::StatusOr<StoredProfile> saved = StopProfiling();
  if (form) {
    if (saved.ok()) {
      res.set_redirect("/", 303);
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

inline void UiServer::HandleDeleteAll(const httplib::Request& req, httplib::Response& res,
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

inline std::string UiServer::RenderIndex(const httplib::Request& req, absl::string_view error) {
  using kainjow::mustache::data;
  UiProfilerStatus status = options_.profiler->Status();
  UiStartOptions defaults = options_.profiler->DefaultOptions();
  bool raw = req.has_param("raw") && ui_internal::ParseBool(req.get_param_value("raw"));

  data page;
  page.set("running", status.running);
  page.set("state", status.running ? "running" : "idle");
  page.set("event", status.event);
  page.set("elapsed", ui_internal::HumanDuration(status.elapsed));
  page.set("samples", absl::StrCat(status.samples));
  // kainjow mustache treats an empty string as true in a section: flags.
  page.set("error", std::string(error));
  page.set("has_error", !error.empty());
  page.set("raw", raw);
  page.set("token", !token_digest_.empty());
  {
    absl::MutexLock lock(&capture_mu_);
    page.set("last_error", last_error_);
    page.set("has_last_error", !last_error_.empty());
  }
  data events{data::type::list};
  for (const std::string& e : options_.profiler->Events()) {
    data item;
    item.set("name", e);
    item.set("selected", e == defaults.event);
    events.push_back(item);
  }
  page.set("events", events);
  page.set("interval", ui_internal::FormatInterval(defaults.interval, defaults.interval_events));
  page.set("duration", defaults.duration > absl::ZeroDuration()
                           ? absl::StrCat(absl::ToInt64Seconds(defaults.duration))
                           : std::string());
  page.set("per_thread", defaults.per_thread);
  page.set("transforms", defaults.transforms_json);
  page.set("has_transforms", !defaults.transforms_json.empty() && defaults.transforms_json != "[]");

  std::vector<StoredProfile> list = store_->List();
  data rows{data::type::list};
  data choices_a{data::type::list};
  data choices_b{data::type::list};
  uint64_t bytes = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    const StoredProfile& p = list[i];
    bytes += p.bytes;
    data row;
    row.set("id", absl::StrCat(p.id));
    row.set("event", p.event);
    row.set("html", p.html_name);
    row.set("txt", p.txt_name);
    row.set("samples", absl::StrCat(p.samples));
    row.set("low_samples", p.samples < 1000);
    row.set("size", ui_internal::HumanBytes(p.bytes));
    row.set("duration", ui_internal::HumanDuration(p.duration));
    row.set("time", absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", p.time, absl::UTCTimeZone()));
    if (i + 1 < list.size()) {
      row.set("has_previous", true);
      row.set("previous_id", absl::StrCat(list[i + 1].id));
    } else {
      row.set("has_previous", false);
    }
    rows.push_back(row);
    data a;
    a.set("id", absl::StrCat(p.id));
    a.set("label", absl::StrCat("#", p.id, " ", p.event, " (", p.samples, " samples)"));
    a.set("selected", i == 1);
    choices_a.push_back(a);
    data b;
    b.set("id", absl::StrCat(p.id));
    b.set("label", absl::StrCat("#", p.id, " ", p.event, " (", p.samples, " samples)"));
    b.set("selected", i == 0);
    choices_b.push_back(b);
  }
  page.set("profiles", rows);
  page.set("has_profiles", !list.empty());
  page.set("can_diff", list.size() >= 2);
  page.set("choices_a", choices_a);
  page.set("choices_b", choices_b);
  page.set("profile_count", absl::StrCat(list.size()));
  page.set("store_size", ui_internal::HumanBytes(bytes));
  page.set("directory", store_->directory());
  kainjow::mustache::mustache tmpl(ui_internal::TemplateText("index.html"));
  return tmpl.render(page);
}

inline void UiServer::InstallRoutes() {
  using httplib::Request;
  using httplib::Response;
  server_.new_task_queue = [this] {
    return new BoundedTaskQueue(options_.worker_threads, options_.max_connections);
  };
  server_.set_payload_max_length(options_.max_request_bytes);
  // httplib's default also sets SO_REUSEPORT, which lets a second server
  // (any process of this user) bind the same port and take half the
  // connections. SO_REUSEADDR alone: restarts still bind at once.
  server_.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Short timeouts: a client that sends its request slowly (or not at all)
  // holds a worker for at most this long. Browsers and curl send a whole
  // request at once.
  server_.set_read_timeout(2, 0);
  server_.set_write_timeout(5, 0);
  // One request per connection: with a few workers, idle keep-alive
  // connections would each hold a worker and starve the others (20 polling
  // clients on 4 workers did). Loopback connections are cheap to reopen.
  server_.set_keep_alive_timeout(1);
  server_.set_keep_alive_max_count(1);
  server_.set_pre_routing_handler(
      [this](const Request& req, Response& res) { return CheckRequest(req, res); });
  server_.set_post_routing_handler([](const Request&, Response& res) {
    if (!res.has_header("Content-Security-Policy")) {
      res.set_header("Content-Security-Policy", std::string(ui_internal::kUiCsp));
    }
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "same-origin");
    res.set_header("Cache-Control", "no-store");
  });
  server_.set_error_handler([](const Request&, Response& res) {
    if (!res.body.empty()) return;
    std::string message = res.status == 404   ? "not found"
                          : res.status == 413 ? "request too large"
                          : res.status == 400 ? "bad request"
                                              : "request refused";
    ui_internal::SendError(res, res.status, message);
  });
  server_.set_exception_handler([](const Request&, Response& res, std::exception_ptr) {
    ui_internal::SendError(res, 500, "internal error in the profiler UI");
  });

  server_.Get("/", [this](const Request& req, Response& res) {
    res.set_content(RenderIndex(req, ""), "text/html; charset=utf-8");
  });
  // Browsers ask for it on every page; an empty answer keeps 404s (and
  // console errors) away.
  server_.Get("/favicon.ico", [](const Request&, Response& res) { res.status = 204; });
  server_.Get("/static/ui.js", [](const Request&, Response& res) {
    res.set_content(ui_internal::TemplateText("ui.js"), "text/javascript; charset=utf-8");
  });
  server_.Get("/static/ui.css", [](const Request&, Response& res) {
    res.set_content(ui_internal::TemplateText("ui.css"), "text/css; charset=utf-8");
  });
  server_.Get("/login", [this](const Request& req, Response& res) {
    if (token_digest_.empty() || Authenticated(req)) {
      res.set_redirect("/", 303);
      return;
    }
    kainjow::mustache::mustache page(ui_internal::TemplateText("login.html"));
    kainjow::mustache::data data;
    data.set("error", "");
    data.set("has_error", false);
    res.set_content(page.render(data), "text/html; charset=utf-8");
  });
  server_.Post("/login", [this](const Request& req, Response& res) {
    if (token_digest_.empty()) {
      res.set_redirect("/", 303);
      return;
    }
    std::string token = req.get_param_value("token");
    if (!ui_internal::DigestsEqual(ui_internal::Sha256(token), token_digest_)) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      res.status = 401;
      kainjow::mustache::mustache page(ui_internal::TemplateText("login.html"));
      kainjow::mustache::data data;
      data.set("error", "That token is not valid.");
      data.set("has_error", true);
      res.set_content(page.render(data), "text/html; charset=utf-8");
      return;
    }
    res.set_header("Set-Cookie", absl::StrCat(ui_internal::kSessionCookie, "=", NewSession(),
                                              "; Path=/; HttpOnly; SameSite=Strict"));
    res.set_redirect("/", 303);
  });
  server_.Post("/logout", [this](const Request& req, Response& res) {
    std::string session =
        ui_internal::CookieValue(req.get_header_value("Cookie"), ui_internal::kSessionCookie);
    if (!session.empty()) {
      absl::MutexLock lock(&session_mu_);
      session_digests_.erase(ui_internal::Sha256(session));
    }
    res.set_header("Set-Cookie", absl::StrCat(ui_internal::kSessionCookie,
                                              "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
    res.set_redirect("/login", 303);
  });

  // Stored files. httplib has already percent-decoded the path, so an
  // encoded "../" arrives as "../" and fails the name pattern.
  server_.Get("/profiles/(.*)", [this](const Request& req, Response& res) {
    std::string name = req.matches[1];
    absl::StatusOr<std::string> data = store_->ReadFile(name);
    if (!data.ok()) {
      ui_internal::SendError(res, 404, "no such profile file");
      return;
    }
    if (absl::EndsWith(name, ".html")) {
      res.set_header("Content-Security-Policy", ui_internal::GeneratedPageCsp(*data));
      res.set_content(*data, "text/html; charset=utf-8");
    } else {
      res.set_content(*data, "text/plain; charset=utf-8");
    }
  });
  server_.Get("/diff", [this](const Request& req, Response& res) {
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
    res.set_header("Content-Security-Policy", ui_internal::GeneratedPageCsp(*html));
    res.set_content(*html, "text/html; charset=utf-8");
  });

  server_.Get("/api/status", [this](const Request&, Response& res) {
    ui_internal::SendJson(res, 200, StatusJson());
  });
  server_.Get("/api/profiles", [this](const Request&, Response& res) {
    nlohmann::json list = nlohmann::json::array();
    for (const StoredProfile& p : store_->List()) list.push_back(ui_internal::ProfileJson(p));
    ui_internal::SendJson(res, 200, {{"profiles", list}});
  });
  server_.Post("/api/start",
               [this](const Request& req, Response& res) { HandleStart(req, res, false); });
  server_.Post("/api/stop",
               [this](const Request& req, Response& res) { HandleStop(req, res, false); });
  server_.Delete("/api/profiles",
                 [this](const Request& req, Response& res) { HandleDeleteAll(req, res, false); });
  server_.Post("/ui/start",
               [this](const Request& req, Response& res) { HandleStart(req, res, true); });
  server_.Post("/ui/stop",
               [this](const Request& req, Response& res) { HandleStop(req, res, true); });
  server_.Post("/ui/delete-all",
               [this](const Request& req, Response& res) { HandleDeleteAll(req, res, true); });

  server_.Get("/metrics", [this](const Request&, Response& res) {
    UiProfilerStatus status = options_.profiler->Status();
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
           "Samples the current or last capture had to drop.",
           absl::StrCat(status.dropped_samples));
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
           absl::StrCat(requests_.load(std::memory_order_relaxed)));
    metric("flamekit_ui_refused_requests_total", "counter",
           "Requests refused: no token, other origin, bad host, too many connections.",
           absl::StrCat(refused_.load(std::memory_order_relaxed)));
    res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_SERVER_H_
