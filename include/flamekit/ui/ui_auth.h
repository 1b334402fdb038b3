// SPDX-License-Identifier: Apache-2.0
// File: ui_auth.h
//
// UiAuth: who may use the profiler UI. Holds the token (as a SHA-256
// digest) and the login sessions, and answers the three questions every
// request is asked before it is routed:
//   - Authenticated(): with a token, `Authorization: Bearer TOKEN` or a
//     session cookie the /login page set; compared in constant time, and
//     sessions are looked up by digest (timing says nothing about them);
//   - HostAllowed(): on loopback without a token, the Host header must be a
//     loopback name (DNS rebinding);
//   - SameOrigin(): state-changing requests from a browser must come from
//     the UI's own origin (Origin, else Referer).
//
// Thread-safety: every method may be called from many HTTP worker threads
// at once (sessions are guarded by an internal absl::Mutex). Never from a
// signal handler.
//
// Example:
//
//   UiAuth auth(/*loopback=*/true, token);
//   if (!auth.Authenticated(req)) { ...401... }
//   std::string session = auth.NewSession();  // after a good POST /login

#ifndef FLAMEKIT_UI_UI_AUTH_H_
#define FLAMEKIT_UI_UI_AUTH_H_

#include <arpa/inet.h>
#include <stddef.h>
#include <sys/random.h>

#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so
#include "openssl/crypto.h"  // CRYPTO_memcmp (constant time); already linked by httplib
#include "openssl/sha.h"     // SHA256 for token and session digests

namespace flamekit {

// IsLoopbackHost()
//
// "127.0.0.1" (any 127/8 address), "::1" and "localhost".
bool IsLoopbackHost(absl::string_view host);

class UiAuth {
 public:
  // The session cookie's name.
  static constexpr absl::string_view kSessionCookie = "flamekit_session";
  // Sessions kept; the oldest is forgotten first.
  static constexpr size_t kMaxSessions = 256;

  // `token` empty: no authentication (loopback only; ServeUi enforces it).
  UiAuth(bool loopback, absl::string_view token);
  UiAuth(const UiAuth&) = delete;
  UiAuth& operator=(const UiAuth&) = delete;

  bool has_token() const { return !token_digest_.empty(); }

  // TokenMatches()
  //
  // Whether `token` is the UI's token (constant time).
  bool TokenMatches(absl::string_view token) const;

  // Authenticated()
  //
  // True without a token; else the request carries the token as a Bearer
  // header or a live session cookie.
  bool Authenticated(const httplib::Request& req) const;

  // NewSession() / EndSession()
  //
  // A new random session id (64 hex digits) to set as the cookie; forgets
  // the session named by the request's cookie.
  std::string NewSession();
  void EndSession(const httplib::Request& req);

  // HostAllowed()
  //
  // False when a token-less loopback UI is asked through a non-loopback
  // Host name (a DNS-rebinding page).
  bool HostAllowed(const httplib::Request& req) const;

  // SameOrigin()
  //
  // False when Origin (or, without it, Referer) names another site. Neither
  // header: not a browser, allowed.
  static bool SameOrigin(const httplib::Request& req);

 private:
  const bool loopback_;
  const std::string token_digest_;  // SHA-256 of the token; empty without one
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> session_digests_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> session_order_ ABSL_GUARDED_BY(mu_);
};

// Implementation details follow.

namespace ui_internal {

inline std::string Sha256(absl::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

// Equal digests, compared without an early exit.
inline bool DigestsEqual(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
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

}  // namespace ui_internal

inline bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  struct in_addr addr;
  std::string h(host);
  if (::inet_pton(AF_INET, h.c_str(), &addr) == 1) {
    return (ntohl(addr.s_addr) >> 24) == 127;
  }
  return false;
}

inline UiAuth::UiAuth(bool loopback, absl::string_view token)
    : loopback_(loopback), token_digest_(token.empty() ? "" : ui_internal::Sha256(token)) {}

inline bool UiAuth::TokenMatches(absl::string_view token) const {
  return has_token() && ui_internal::DigestsEqual(ui_internal::Sha256(token), token_digest_);
}

inline bool UiAuth::Authenticated(const httplib::Request& req) const {
  if (token_digest_.empty()) return true;
  std::string auth = req.get_header_value("Authorization");
  absl::string_view bearer = auth;
  if (absl::ConsumePrefix(&bearer, "Bearer ")) {
    return ui_internal::DigestsEqual(ui_internal::Sha256(absl::StripAsciiWhitespace(bearer)),
                                     token_digest_);
  }
  std::string session = ui_internal::CookieValue(req.get_header_value("Cookie"), kSessionCookie);
  if (session.empty()) return false;
  // Looked up by digest: the lookup's timing says nothing about the
  // secret session ids.
  std::string digest = ui_internal::Sha256(session);
  absl::MutexLock lock(&mu_);
  return session_digests_.contains(digest);
}

inline std::string UiAuth::NewSession() {
  std::string session = ui_internal::RandomHex(32);
  std::string digest = ui_internal::Sha256(session);
  absl::MutexLock lock(&mu_);
  session_digests_.insert(digest);
  session_order_.push_back(digest);
  while (session_order_.size() > kMaxSessions) {
    session_digests_.erase(session_order_.front());
    session_order_.pop_front();
  }
  return session;
}

inline void UiAuth::EndSession(const httplib::Request& req) {
  std::string session = ui_internal::CookieValue(req.get_header_value("Cookie"), kSessionCookie);
  if (session.empty()) return;
  absl::MutexLock lock(&mu_);
  session_digests_.erase(ui_internal::Sha256(session));
}

inline bool UiAuth::HostAllowed(const httplib::Request& req) const {
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

inline bool UiAuth::SameOrigin(const httplib::Request& req) {
  std::string host = absl::AsciiStrToLower(req.get_header_value("Host"));
  auto matches = [&](absl::string_view origin) {
    std::string o = absl::AsciiStrToLower(origin);
    return !host.empty() &&
           (o == absl::StrCat("http://", host) || o == absl::StrCat("https://", host));
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

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_AUTH_H_
