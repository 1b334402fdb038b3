// SPDX-License-Identifier: Apache-2.0
// File: ui_options.h
//
// UiOptions: how ServeUi() serves the profiler UI (profile directory, token,
// and every bound on what one client may cost it), and UiGraphOptions.
// Plain structs: thread-compatible (copy them; do not share one while it is
// being written). Nothing here runs in a signal handler.
//
// Example:
//
//   flamekit::UiOptions options;
//   options.dir = "/var/lib/myservice/profiles";
//   options.token = token_from_config;
//   auto ui = flamekit::ServeUi("0.0.0.0", 8080, options);

#ifndef FLAMEKIT_UI_UI_OPTIONS_H_
#define FLAMEKIT_UI_UI_OPTIONS_H_

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/profile_store.h"
#include "flamekit/ui/profiler_control.h"

namespace flamekit {

struct UiOptions {
  // Where profiles are kept; empty: ProfileStore::DefaultDirectory().
  std::string dir;
  // Cap on the stored profiles' total size; the oldest go first.
  uint64_t max_store_bytes = uint64_t{512} << 20;
  // Required for any address other than loopback. When set, every request
  // must carry it (see ui_server.h).
  std::string token;
  // What one client may cost the UI. A hostile client must never stop it
  // serving others; every bound here is exercised by ui_attack_test.
  //
  // Request body limit (larger: 413).
  size_t max_request_bytes = 64 * 1024;
  // Connections served or queued at once, from all clients (more: 503 with
  // Retry-After until some finish).
  size_t max_connections = 64;
  // Threads serving requests. Keep it above max_connections_per_client so
  // that one client address cannot take them all.
  size_t worker_threads = 16;
  // Connections from one client address still sending their request at
  // once (more: 503): slow senders from one address cannot take every
  // worker. Clients whose requests arrive at once are not held to it.
  size_t max_connections_per_client = 8;
  // Time to receive a WHOLE request (request line, headers and body),
  // counted from when a worker takes the connection, however the bytes
  // trickle in; slower clients are dropped (408). Browsers and curl send a
  // request at once.
  absl::Duration request_timeout = absl::Seconds(2);
  // Time to send a whole response; a client reading slower is dropped.
  absl::Duration response_timeout = absl::Seconds(30);
  // Header lines after the request line, and bytes of the request line
  // plus headers; more: 431, checked as they arrive, before
  // authentication, so a connection's memory stays bounded.
  size_t max_header_count = 100;
  size_t max_header_bytes = 32 * 1024;
  // The profiler the UI drives; unset: Profiler::Global() through
  // GlobalProfilerControl.
  std::shared_ptr<ProfilerControl> profiler;
  // How profiles are rendered and stored; empty members take
  // DefaultUiCodecs().
  ProfileStoreCodecs codecs;
  std::function<absl::StatusOr<std::string>(const Profile&, const Profile&)> render_diff;
};

// Options for UiServer::GenerateFlameGraph(): a new rendering of a stored
// profile.
struct UiGraphOptions {
  std::string title;
};

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_OPTIONS_H_
