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

// Options for UiServer::GenerateFlameGraph(): a new rendering of a stored
// profile.
struct UiGraphOptions {
  std::string title;
};

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_OPTIONS_H_
