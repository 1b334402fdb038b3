// SPDX-License-Identifier: Apache-2.0
//
// Fuzz target for the readers read_profile.h picks by content (pprof, gzip,
// HTML/SVG embedded stacks, perf script; collapsed has its own target): any
// bytes either fail with a Status or give a profile with samples whose
// embedded-stacks text reads back to the same text, and the same outcome
// whether the bytes come from memory or through a descriptor in pieces.
// Bounds are small (1 MiB decompressed, 64 KiB lines) so a bomb costs
// little.

#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "flamekit/profile/embedded_stacks.h"
#include "flamekit/profile/read_profile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using flamekit::Profile;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  flamekit::ProfileReadOptions options;
  options.max_decompressed_bytes = 1 << 20;
  options.max_input_bytes = 1 << 20;
  options.max_line_bytes = 64 << 10;
  absl::StatusOr<Profile> p = flamekit::ParseProfileBytes(bytes, "fuzz", options);
  if (!p.ok()) {
    if (p.status().message().empty()) std::abort();
    return 0;
  }
  if (p->total_samples() == 0) std::abort();  // never a silently empty profile
  const std::string once = flamekit::EncodeEmbeddedStacks(*p);
  absl::StatusOr<Profile> again = flamekit::DecodeEmbeddedStacks(once, "fuzz");
  if (!again.ok() || flamekit::EncodeEmbeddedStacks(*again) != once) std::abort();
  if (again->total_samples() != p->total_samples()) std::abort();
  return 0;
}
