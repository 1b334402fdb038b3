// SPDX-License-Identifier: Apache-2.0
// File: pyroscope_push.h
//
// ProfilePusher: sends profile windows (gzipped pprof, render/pprof.h) to a
// Pyroscope-compatible server's HTTP ingest API: `POST
// [PREFIX]/ingest?name=APP{k=v,...}&from=UNIX_S&until=UNIX_S&format=pprof&spyName=flamekit`
// with the pprof bytes as the body. PREFIX is the URL's path, for a server
// behind a reverse proxy (`http://proxy/pyroscope` posts to
// /pyroscope/ingest). Tested against a loopback receiver that
// decodes each body with `go tool pprof`, not against a Pyroscope server.
//
// Bounds: at most `max_queue` windows and `max_queue_bytes` wait; a window
// that does not fit is dropped and counted (dropped_windows), never waited
// for. One sender thread; each attempt is bounded by `timeout`; a 5xx or a
// connection failure is retried after `backoff`, doubled each time, up to
// `max_attempts`; a 4xx is not retried (failed_windows).
//
// Thread-safety: Offer() and stats() may be called from any thread; Offer()
// only takes a mutex for a queue push (no I/O), so the profiled program's
// threads never wait on the network. Never from a signal handler. The
// destructor drops what waits and aborts the send in flight (httplib's
// Client::stop() shuts its socket down), so it returns promptly even when
// a receiver trickles bytes slower than `timeout` per read: a join on the
// sender that waited for such a POST could otherwise last without bound.
//
// Example:
//
//   PushOptions o;
//   o.url = "http://127.0.0.1:4040";
//   o.labels = {{"host", "web-1"}};
//   FLAMEKIT_ASSIGN_OR_RETURN(auto pusher, ProfilePusher::Start(o));
//   pusher->Offer(std::move(pprof_gz), from, until);

#ifndef FLAMEKIT_TRIGGER_PYROSCOPE_PUSH_H_
#define FLAMEKIT_TRIGGER_PYROSCOPE_PUSH_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "flamekit/trigger/http_fetch.h"  // first: sets FLAMEKIT_HAVE_HTTP_FETCH

#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH
#include <httplib.h>  // Debian's split cpp-httplib (see http_fetch.h)
#endif

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace flamekit {

// PushOptions
struct PushOptions {
  std::string url;  // http://host:4040[/prefix]: /ingest is added (ParsePushUrl())
  std::string app = "flamekit";               // the application name
  std::map<std::string, std::string> labels;  // host, pid, container, build_id, ...
  size_t max_queue = 4;                       // windows waiting to be sent
  size_t max_queue_bytes = 8 << 20;           // their bytes
  int max_attempts = 3;
  absl::Duration timeout = absl::Seconds(5);  // per attempt (connect, send, answer)
  absl::Duration backoff = absl::Milliseconds(500);
  // Called once, on the sender thread, after its first POST returns. The
  // POST initializes httplib's function-local statics (its response-line
  // regex), whose destructors exit() runs before any exit handler
  // registered earlier: the embedded profiler registers the handler that
  // sends its last window here, so it runs while they still exist.
  std::function<void()> after_first_attempt;
};

// PushStats
struct PushStats {
  uint64_t sent_windows = 0;
  uint64_t dropped_windows = 0;  // queue full when offered, or left at shutdown
  uint64_t failed_windows = 0;   // refused (4xx) or out of attempts
  uint64_t attempts = 0;
  std::string last_error;
};

// ParsePushUrl()
//
// `http[s]://host[:port][/prefix]`, the prefix without a trailing '/' (""
// for none) in `path`. InvalidArgument saying what to give for another
// scheme, a query (`?`) or a fragment (`#`): the push adds its own query,
// so a URL's would be lost or clash.
absl::StatusOr<ParsedUrl> ParsePushUrl(absl::string_view url);

// ValidPushLabelKey(), ValidPushLabelValue()
//
// Pyroscope's label names: [A-Za-z_][A-Za-z0-9_.]*; its name parser splits
// on , = { }, so values may not hold those (nor a newline), nor be empty.
bool ValidPushLabelKey(absl::string_view key);
bool ValidPushLabelValue(absl::string_view value);

// PyroscopeIngestTarget()
//
// The path and query of one window: `[prefix]/ingest?name=app%7Bk%3Dv%7D&from=..`.
std::string PyroscopeIngestTarget(const PushOptions& options, absl::Time from, absl::Time until);

class ProfilePusher {
 public:
  // Start(): InvalidArgument for a bad URL; Unimplemented in the static build.
  static absl::StatusOr<std::unique_ptr<ProfilePusher>> Start(PushOptions options);
  ~ProfilePusher();
  ProfilePusher(const ProfilePusher&) = delete;
  ProfilePusher& operator=(const ProfilePusher&) = delete;

  // Offer(): queues one window; false (and counted as dropped) when the
  // queue is full. Never blocks on I/O.
  bool Offer(std::string pprof_gz, absl::Time from, absl::Time until);

  // WaitIdle(): until nothing waits or is being sent, at most `timeout`.
  bool WaitIdle(absl::Duration timeout);

  PushStats stats() const;

  // Stop(): waits at most `drain` for the queue to empty, then drops what
  // still waits, aborts the send in flight and joins the sender; returns
  // the final counts (a window aborted or left waiting is dropped). Later
  // Offer()s are dropped. The destructor is Stop(ZeroDuration()).
  PushStats Stop(absl::Duration drain);

 private:
  struct Window {
    std::string body;
    absl::Time from, until;
  };
  explicit ProfilePusher(PushOptions options, ParsedUrl url)
      : options_(std::move(options)), url_(std::move(url)) {}
  void Loop();
  // Shuts the socket of the POST in flight down (mu_ held).
  void AbortInFlight();
  // One POST: 0 on a 2xx, the HTTP status, or -1 for no answer.
  int Post(const Window& w, std::string* error);

  const PushOptions options_;
  const ParsedUrl url_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Window> queue_;  // guarded by mu_
  size_t queued_bytes_ = 0;   // guarded by mu_
  bool sending_ = false;      // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  PushStats stats_;           // guarded by mu_
  // The client of the POST in flight, so the destructor can abort it.
  // Set and cleared by the sender around each Post(); guarded by mu_.
  void* in_flight_ = nullptr;
  bool called_after_first_ = false;  // the sender thread's only
  std::thread thread_;
};

// Implementation details follow.

inline absl::StatusOr<ParsedUrl> ParsePushUrl(absl::string_view url) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad push URL '", url, "': ", what,
                     " (give the server's base, e.g. http://127.0.0.1:4040 or "
                     "https://proxy.example/pyroscope)"));
  };
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return bad("it must start with http:// or https://");
  }
  if (url.find('?') != absl::string_view::npos) {
    return bad("it has a query ('?'); the push adds its own /ingest?name=..&from=.. query");
  }
  if (url.find('#') != absl::string_view::npos) return bad("it has a fragment ('#')");
  absl::StatusOr<ParsedUrl> parsed = ParseHttpUrl(url);
  if (!parsed.ok()) {
    // Its "bad metrics URL 'U': WHAT (expected ...)", as a push URL's.
    absl::string_view what = parsed.status().message();
    size_t at = what.find("': ");
    if (at != absl::string_view::npos) what.remove_prefix(at + 3);
    return bad(what.substr(0, what.find(" (expected")));
  }
  absl::string_view path = parsed->path;
  while (absl::ConsumeSuffix(&path, "/")) {
  }
  parsed->path = std::string(path);
  return parsed;
}

inline bool ValidPushLabelKey(absl::string_view key) {
  if (key.empty() || !(absl::ascii_isalpha(key[0]) || key[0] == '_')) return false;
  for (char c : key) {
    if (!(absl::ascii_isalnum(c) || c == '_' || c == '.')) return false;
  }
  return true;
}

inline bool ValidPushLabelValue(absl::string_view value) {
  return !value.empty() && value.find_first_of(",={}\n") == absl::string_view::npos;
}

inline std::string PyroscopeIngestTarget(const PushOptions& o, absl::Time from,
                                         absl::Time until) {
  absl::StatusOr<ParsedUrl> url = ParsePushUrl(o.url);
  std::string name = o.app;
  name += "{";
  bool first = true;
  for (const auto& [k, v] : o.labels) {
    absl::StrAppend(&name, first ? "" : ",", k, "=", v);
    first = false;
  }
  name += "}";
  return absl::StrCat(url.ok() ? url->path : "", "/ingest?name=", trigger_internal::UrlEscape(name),
                      "&from=", absl::ToUnixSeconds(from), "&until=", absl::ToUnixSeconds(until),
                      "&format=pprof&spyName=flamekit");
}

inline absl::StatusOr<std::unique_ptr<ProfilePusher>> ProfilePusher::Start(PushOptions options) {
  absl::StatusOr<ParsedUrl> url = ParsePushUrl(options.url);
  if (!url.ok()) return url.status();
  if (!HttpFetchAvailable()) {
    return absl::UnimplementedError(
        "--push needs the regular build: the static one has no HTTP client");
  }
  if (options.max_queue == 0 || options.max_attempts < 1) {
    return absl::InvalidArgumentError("the push queue and attempts must be at least 1");
  }
  std::unique_ptr<ProfilePusher> p(new ProfilePusher(std::move(options), *url));
  p->thread_ = std::thread([self = p.get()] { self->Loop(); });
  return p;
}

inline ProfilePusher::~ProfilePusher() { Stop(absl::ZeroDuration()); }

inline PushStats ProfilePusher::Stop(absl::Duration drain) {
  if (drain > absl::ZeroDuration()) WaitIdle(drain);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stats_.dropped_windows += queue_.size();
    queue_.clear();
    queued_bytes_ = 0;
    AbortInFlight();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  return stats();
}

inline bool ProfilePusher::Offer(std::string pprof_gz, absl::Time from, absl::Time until) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || queue_.size() >= options_.max_queue ||
      queued_bytes_ + pprof_gz.size() > options_.max_queue_bytes) {
    ++stats_.dropped_windows;
    return false;
  }
  queued_bytes_ += pprof_gz.size();
  queue_.push_back({std::move(pprof_gz), from, until});
  cv_.notify_all();
  return true;
}

inline bool ProfilePusher::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return queue_.empty() && !sending_; });
}

inline PushStats ProfilePusher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

inline void ProfilePusher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Window w = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= w.body.size();
    sending_ = true;
    absl::Duration backoff = options_.backoff;
    bool done = false;
    for (int attempt = 1; attempt <= options_.max_attempts && !done; ++attempt) {
      ++stats_.attempts;
      lock.unlock();
      std::string error;
      int status = Post(w, &error);
      if (!called_after_first_ && options_.after_first_attempt) {
        called_after_first_ = true;
        options_.after_first_attempt();
      }
      lock.lock();
      if (stopping_ && status != 0) {
        // Aborted by the destructor: the window was not sent.
        ++stats_.dropped_windows;
        sending_ = false;
        return;
      }
      if (status == 0) {
        ++stats_.sent_windows;
        done = true;
      } else if (status >= 400 && status < 500) {
        ++stats_.failed_windows;
        stats_.last_error = error;
        done = true;
      } else {
        stats_.last_error = error;
        if (attempt == options_.max_attempts) {
          ++stats_.failed_windows;
          break;
        }
        // Back off, but wake at once for shutdown.
        if (cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [&] { return stopping_; })) {
          ++stats_.dropped_windows;
          sending_ = false;
          return;
        }
        backoff *= 2;
      }
    }
    sending_ = false;
    cv_.notify_all();
  }
}

#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH
inline void ProfilePusher::AbortInFlight() {
  // Client::stop() is meant to be called from another thread while a
  // request runs: it shuts the socket down, so the blocked read returns.
  if (in_flight_ != nullptr) static_cast<httplib::Client*>(in_flight_)->stop();
}

inline int ProfilePusher::Post(const Window& w, std::string* error) {
  httplib::Client client(absl::StrCat(
      url_.scheme, "://",
      url_.host.find(':') != std::string::npos ? absl::StrCat("[", url_.host, "]") : url_.host,
      ":", url_.port));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      *error = "stopping";
      return -1;
    }
    in_flight_ = &client;
  }
  struct Clear {
    ProfilePusher* self;
    ~Clear() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->in_flight_ = nullptr;
    }
  } clear{this};
  auto usec = std::chrono::microseconds(absl::ToInt64Microseconds(options_.timeout));
  client.set_connection_timeout(usec);
  client.set_read_timeout(usec);
  client.set_write_timeout(usec);
  std::string target = PyroscopeIngestTarget(options_, w.from, w.until);
  httplib::Result r = client.Post(target.c_str(), w.body, "application/octet-stream");
  if (!r) {
    *error = absl::StrCat("POST ", url_.scheme, "://", url_.host, ":", url_.port, target, ": ",
                          httplib::to_string(r.error()));
    return -1;
  }
  if (r->status >= 200 && r->status < 300) return 0;
  *error = absl::StrCat("POST ", url_.scheme, "://", url_.host, ":", url_.port, target,
                        " answered HTTP ", r->status);
  return r->status;
}
#else
inline void ProfilePusher::AbortInFlight() {}

inline int ProfilePusher::Post(const Window&, std::string* error) {
  *error = "no HTTP client in the static build";
  return -1;
}
#endif

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_PYROSCOPE_PUSH_H_
