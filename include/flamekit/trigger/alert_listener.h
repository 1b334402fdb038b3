// SPDX-License-Identifier: Apache-2.0
// File: alert_listener.h
//
// AlertListener: the HTTP side of `flamekit watch --listen ADDR`: a
// cpp-httplib server that takes Alertmanager's webhook at
// `POST /alertmanager` and hands the body to an AlertReceiver
// (alert_webhook.h). The endpoint always wants `Authorization: Bearer
// TOKEN` (Alertmanager sends it with `http_config: {authorization:
// {credentials: TOKEN}}`); the token is compared in constant time. Bodies
// over 1 MiB are refused (413), a request must arrive within 5 s, and the
// answer (200 with one decision per alert, 400 for a payload that is not
// version 4, 401 without the token) never waits for a capture.
//
// In the static build (no httplib, see http_fetch.h) Start() fails with
// Unimplemented and says to run the regular build.
//
// Thread-safety: Start() and Stop() from one thread; requests are served
// on the server's own threads. Not async-signal-safe.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(auto l, AlertListener::Start("127.0.0.1:9095", token, receiver));
//   ... l->Stop();

#ifndef FLAMEKIT_TRIGGER_ALERT_LISTENER_H_
#define FLAMEKIT_TRIGGER_ALERT_LISTENER_H_

#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "flamekit/trigger/http_fetch.h"  // first: sets FLAMEKIT_HAVE_HTTP_FETCH

#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH
#include <httplib.h>  // Debian's split cpp-httplib (see http_fetch.h)
#endif

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "flamekit/trigger/alert_webhook.h"

namespace flamekit {

class AlertListener {
 public:
  static constexpr size_t kMaxBody = 1 << 20;

  // Start()
  //
  // Listens on `addr` (HOST:PORT; port 0 picks one). FailedPrecondition
  // without a token; Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<AlertListener>> Start(absl::string_view addr,
                                                              std::string token,
                                                              AlertReceiver* receiver);
  ~AlertListener() { Stop(); }
  AlertListener(const AlertListener&) = delete;
  AlertListener& operator=(const AlertListener&) = delete;

  // Stop(): stops serving and joins the server thread. Idempotent.
  void Stop();
  int port() const { return port_; }
  std::string Url() const { return absl::StrCat("http://", host_, ":", port_, "/alertmanager"); }

 private:
  AlertListener(std::string token, AlertReceiver* receiver)
      : token_(std::move(token)), receiver_(receiver) {}
  bool Authorized(const std::string& got) const {
    std::string want = "Bearer " + token_;
    if (got.size() != want.size()) return false;
    unsigned char diff = 0;  // constant time over the token's length
    for (size_t i = 0; i < want.size(); ++i) diff |= got[i] ^ want[i];
    return diff == 0;
  }

  std::string token_;
  AlertReceiver* receiver_;
#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH
  httplib::Server server_;
#endif
  std::string host_;
  int port_ = 0;
  std::thread thread_;
};

// Implementation details follow.

#if defined(FLAMEKIT_HAVE_HTTP_FETCH) && FLAMEKIT_HAVE_HTTP_FETCH

inline void AlertListener::Stop() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

inline absl::StatusOr<std::unique_ptr<AlertListener>> AlertListener::Start(
    absl::string_view addr, std::string token, AlertReceiver* receiver) {
  if (token.empty()) {
    return absl::FailedPreconditionError(
        "--listen needs a token for Alertmanager to send: --token TOKEN or FLAMEKIT_TOKEN, "
        "and `authorization: {credentials: TOKEN}` in the webhook's http_config");
  }
  size_t colon = addr.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port) ||
      port < 0 || port > 65535 || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen '", addr, "' is not HOST:PORT (e.g. 127.0.0.1:9095)"));
  }
  std::unique_ptr<AlertListener> l(new AlertListener(std::move(token), receiver));
  l->host_ = std::string(addr.substr(0, colon));
  l->server_.set_payload_max_length(kMaxBody);
  l->server_.set_read_timeout(5, 0);
  l->server_.set_write_timeout(5, 0);
  AlertListener* self = l.get();
  l->server_.Post("/alertmanager", [self](const httplib::Request& req, httplib::Response& res) {
    if (!self->Authorized(req.get_header_value("Authorization"))) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content("missing or wrong bearer token\n", "text/plain");
      return;
    }
    absl::StatusOr<std::vector<AlertDecision>> d = self->receiver_->Handle(req.body);
    if (!d.ok()) {
      res.status = 400;
      res.set_content(absl::StrCat(d.status().message(), "\n"), "text/plain");
      return;
    }
    nlohmann::json out = nlohmann::json::array();
    for (const AlertDecision& a : *d) {
      out.push_back({{"fingerprint", a.fingerprint}, {"outcome", a.outcome},
                     {"message", a.message}});
    }
    res.set_content(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  });
  if (port == 0) {
    l->port_ = l->server_.bind_to_any_port(l->host_);
  } else {
    l->port_ = l->server_.bind_to_port(l->host_, port) ? port : -1;
  }
  if (l->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", addr,
                                               ": in use or not a local address"));
  }
  l->thread_ = std::thread([self] { self->server_.listen_after_bind(); });
  return l;
}

#else  // !FLAMEKIT_HAVE_HTTP_FETCH

inline void AlertListener::Stop() {}

inline absl::StatusOr<std::unique_ptr<AlertListener>> AlertListener::Start(
    absl::string_view addr, std::string token, AlertReceiver* receiver) {
  (void)token;
  (void)receiver;
  return absl::UnimplementedError(absl::StrCat(
      "cannot listen on ", addr,
      ": this flamekit is the static build, which has no HTTP server; run `flamekit watch "
      "--listen` from the regular build"));
}

#endif  // FLAMEKIT_HAVE_HTTP_FETCH

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_ALERT_LISTENER_H_
