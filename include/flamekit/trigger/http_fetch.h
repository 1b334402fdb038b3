// SPDX-License-Identifier: Apache-2.0
// File: http_fetch.h
//
// FetchUrl(): one HTTP GET of a metrics page (`http://127.0.0.1:9090/metrics`)
// for the Prometheus metric source, through cpp-httplib.
//
// Why a separate target: Debian ships cpp-httplib only as a shared library
// (libcpp-httplib.so, no .a), so the fully static CLI
// (`--config=static`, copied into containers) cannot link it. The Bazel
// target `//include/flamekit/trigger:http_fetch` selects on that config:
// the dynamic build's generated http_fetch_config.h sets
// FLAMEKIT_HAVE_HTTP_FETCH to 1 and links httplib;
// the static build compiles the same API to an UnimplementedError that says
// to run `flamekit watch --metric` from the dynamic build on the host, or to
// use --cpu-above/--rss-above inside the container. Nothing else in the
// watch pipeline depends on httplib.
//
// Thread-safety: FetchUrl() is thread-safe (no shared state); it blocks for
// at most the timeout. Not async-signal-safe.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string body,
//                             FetchUrl("http://127.0.0.1:8080/metrics", absl::Seconds(2)));

#ifndef FLAMEKIT_TRIGGER_HTTP_FETCH_H_
#define FLAMEKIT_TRIGGER_HTTP_FETCH_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// A generated header, not a -D from Bazel's `defines`: a define would be on
// the command line of every translation unit that depends on this target,
// so the static and the dynamic build would share no compiled object; with
// the header only the files that include this one differ (tools/test.sh's
// containers and README steps build both, -c opt). Outside Bazel, define
// FLAMEKIT_HAVE_HTTP_FETCH=1 and link cpp-httplib to have FetchUrl().
#if !defined(FLAMEKIT_HAVE_HTTP_FETCH) && defined(__has_include)
#if __has_include("flamekit/trigger/http_fetch_config.h")
#include "flamekit/trigger/http_fetch_config.h"
#endif
#endif

#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH
// Debian's split cpp-httplib: declarations here, code in libcpp-httplib.so
// (built with the OPENSSL/ZLIB/BROTLI macros the Bazel target defines).
#include <httplib.h>
#endif

namespace flamekit {

// ParsedUrl
//
// The parts of an http:// URL FetchUrl() needs.
struct ParsedUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // "127.0.0.1", "localhost", "[::1]" without brackets
  int port = 0;        // 80/443 when the URL has none
  std::string path;    // "/metrics"; "/" when empty; includes ?query
};

// ParseHttpUrl()
//
// Splits `http://host[:port][/path]` (or https://). InvalidArgument with an
// example for anything else (no scheme, empty host, bad port).
absl::StatusOr<ParsedUrl> ParseHttpUrl(absl::string_view url);

// HttpFetchAvailable()
//
// False in the static build, where FetchUrl() always fails.
bool HttpFetchAvailable();

// FetchUrl()
//
// GETs `url` and returns the body of a 200 response, sending
// `Authorization: Bearer <bearer_token>` when the token is not empty (the
// flamekit UI's /metrics needs it). Errors: InvalidArgument for a malformed
// URL; Unavailable when nothing listens, the connection times out after
// `timeout`, or the server answers non-200 (the status code is in the
// message); PermissionDenied for 401/403; Unimplemented in the static build.
absl::StatusOr<std::string> FetchUrl(absl::string_view url, absl::Duration timeout,
                                     absl::string_view bearer_token = "");

// HttpResponse: a response of any status, with its body.
struct HttpResponse {
  int status = 0;
  std::string body;
};

// HttpGet()
//
// GETs `url` and returns the response whatever its status (Prometheus'
// HTTP API explains a refused query in the JSON body of a 400/422/503).
// Errors only when there is no response: InvalidArgument for a malformed
// URL, Unavailable when nothing listens or `timeout` passes, Unimplemented
// in the static build.
absl::StatusOr<HttpResponse> HttpGet(absl::string_view url, absl::Duration timeout,
                                     absl::string_view bearer_token = "");

// Implementation details follow.

namespace trigger_internal {

// RFC 3986 unreserved characters stay, everything else is %XX (a query
// value: PromQL queries, Pyroscope's name=app{labels}).
inline std::string UrlEscape(absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace trigger_internal

inline absl::StatusOr<ParsedUrl> ParseHttpUrl(absl::string_view url) {
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad metrics URL '", url, "': ", what, " (expected e.g. http://127.0.0.1:9090/metrics)"));
  };
  ParsedUrl out;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "http://")) {
    out.scheme = "http";
    out.port = 80;
  } else if (absl::ConsumePrefix(&rest, "https://")) {
    out.scheme = "https";
    out.port = 443;
  } else {
    return bad("it must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  absl::string_view authority = rest.substr(0, slash);
  out.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (absl::StrContains(authority, '@')) return bad("user:password@ is not supported");
  absl::string_view host = authority;
  absl::string_view port;
  if (absl::ConsumePrefix(&host, "[")) {  // [::1]:9090
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return bad("missing ']' after an IPv6 address");
    absl::string_view after = host.substr(close + 1);
    host = host.substr(0, close);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected ':' after ']'");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else {
    size_t colon = host.rfind(':');
    if (colon != absl::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port.empty()) return bad("empty port");
    }
  }
  if (host.empty()) return bad("no host");
  if (!port.empty()) {
    int p = 0;
    if (!absl::SimpleAtoi(port, &p) || p <= 0 || p > 65535) {
      return bad(absl::StrCat("port '", port, "' is not a number in 1-65535"));
    }
    out.port = p;
  }
  out.host = std::string(host);
  return out;
}

#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH

inline bool HttpFetchAvailable() { return true; }

inline absl::StatusOr<HttpResponse> HttpGet(absl::string_view url, absl::Duration timeout,
                                            absl::string_view bearer_token) {
  absl::StatusOr<ParsedUrl> parsed = ParseHttpUrl(url);
  if (!parsed.ok()) return parsed.status();
  std::string base = absl::StrCat(parsed->scheme, "://",
                                  absl::StrContains(parsed->host, ':')
                                      ? absl::StrCat("[", parsed->host, "]")
                                      : parsed->host,
                                  ":", parsed->port);
  httplib::Client client(base);
  auto usec = std::chrono::microseconds(absl::ToInt64Microseconds(timeout));
  client.set_connection_timeout(usec);
  client.set_read_timeout(usec);
  client.set_write_timeout(usec);
  if (!bearer_token.empty()) client.set_bearer_token_auth(std::string(bearer_token));
  httplib::Result result = client.Get(parsed->path.c_str());
  if (!result) {
    return absl::UnavailableError(absl::StrCat(
        "GET ", url, " failed: ", httplib::to_string(result.error()),
        "; is the service running and listening there?"));
  }
  HttpResponse out;
  out.status = result->status;
  out.body = std::move(result->body);
  return out;
}

inline absl::StatusOr<std::string> FetchUrl(absl::string_view url, absl::Duration timeout,
                                            absl::string_view bearer_token) {
  absl::StatusOr<HttpResponse> result = HttpGet(url, timeout, bearer_token);
  if (!result.ok()) return result.status();
  if (result->status == 401 || result->status == 403) {
    return absl::PermissionDeniedError(absl::StrCat(
        "GET ", url, " answered HTTP ", result->status,
        bearer_token.empty() ? "; the endpoint wants a token: pass --token TOKEN or set "
                               "FLAMEKIT_TOKEN"
                             : "; the token was refused: check --token / FLAMEKIT_TOKEN"));
  }
  if (result->status != 200) {
    return absl::UnavailableError(absl::StrCat("GET ", url, " answered HTTP ", result->status,
                                               "; check the URL path (e.g. /metrics)"));
  }
  return std::move(result->body);
}

#else  // !FLAMEKIT_HAVE_HTTP_FETCH

inline bool HttpFetchAvailable() { return false; }

inline absl::StatusOr<HttpResponse> HttpGet(absl::string_view url, absl::Duration timeout,
                                            absl::string_view bearer_token) {
  absl::StatusOr<std::string> refused = FetchUrl(url, timeout, bearer_token);
  return refused.status();
}

inline absl::StatusOr<std::string> FetchUrl(absl::string_view url, absl::Duration timeout,
                                            absl::string_view bearer_token) {
  (void)timeout;
  (void)bearer_token;
  absl::StatusOr<ParsedUrl> parsed = ParseHttpUrl(url);
  if (!parsed.ok()) return parsed.status();
  return absl::UnimplementedError(absl::StrCat(
      "cannot fetch ", url,
      ": this flamekit is the static build, which has no HTTP client (Debian ships "
      "cpp-httplib only as a shared library); run `flamekit watch --metric` from the "
      "regular build on the host, or watch --cpu-above/--rss-above here"));
}

#endif  // FLAMEKIT_HAVE_HTTP_FETCH

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_HTTP_FETCH_H_
