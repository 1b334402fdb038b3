// SPDX-License-Identifier: Apache-2.0
//
// Fuzz target for the collapsed reader: any bytes either fail with a
// Status or give a profile whose written form reads back to the same
// written form (write(read(x)) is a fixed point), in strict and lenient
// mode, whole or fed in pieces.

#include <stddef.h>
#include <stdint.h>

#include <cstdlib>
#include <string>

#include "flamekit/profile/collapsed_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using flamekit::CollapsedParser;
  using flamekit::CollapsedReadOptions;
  using flamekit::ParseCollapsed;
  using flamekit::Profile;
  using flamekit::ToCollapsedString;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool lenient : {false, true}) {
    CollapsedReadOptions options;
    options.lenient = lenient;
    options.max_line_bytes = 4096;
    absl::StatusOr<Profile> whole = ParseCollapsed(text, "fuzz", options);
    // Fed in pieces of 7 bytes: the same outcome.
    Profile pieces;
    CollapsedParser parser(&pieces, "fuzz", options);
    absl::Status s;
    for (size_t i = 0; i < text.size() && s.ok(); i += 7) s = parser.Feed(text.substr(i, 7));
    if (s.ok()) s = parser.Finish();
    if (whole.ok() != s.ok()) std::abort();
    if (!whole.ok()) {
      if (whole.status().message() != s.message()) std::abort();
      continue;
    }
    const std::string once = ToCollapsedString(*whole);
    if (ToCollapsedString(pieces) != once) std::abort();
    absl::StatusOr<Profile> again = ParseCollapsed(once, "fuzz");
    if (!again.ok() || ToCollapsedString(*again) != once) std::abort();
    if (again->total_samples() != whole->total_samples()) std::abort();
  }
  return 0;
}
