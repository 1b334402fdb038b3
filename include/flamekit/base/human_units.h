// SPDX-License-Identifier: Apache-2.0
// File: human_units.h
//
// The units people type and read: durations ("30", "1.5", "500ms", "2m"),
// sizes ("1048576", "64k", "512M", "1.5G", "2GiB") and byte counts for
// messages ("12 KiB"). Every flamekit command and the UI parse and print
// them through these functions, so "30s" means the same everywhere.
// Pure functions: thread-safe; not for signal handlers (they allocate).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(absl::Duration d, ParseHumanDuration("500ms"));
//   FLAMEKIT_ASSIGN_OR_RETURN(int64_t bytes, ParseHumanSize("64k"));   // 65536
//   std::string shown = HumanBytes(bytes);                            // "64 KiB"

#ifndef FLAMEKIT_BASE_HUMAN_UNITS_H_
#define FLAMEKIT_BASE_HUMAN_UNITS_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace flamekit {

// HumanBytes()
//
// "512 B", "12 KiB", "37 MiB": exact below 10 KiB, then whole units.
std::string HumanBytes(uint64_t bytes);

// ParseHumanDuration()
//
// A bare number is seconds ("30", "1.5"); otherwise absl's duration syntax
// ("500ms", "2m", "1h30m", "250us"). Negative values are returned as they
// are (callers decide their range); InvalidArgument "'x' is not a
// duration" for anything else, including "inf" and "nan".
absl::StatusOr<absl::Duration> ParseHumanDuration(absl::string_view text);

// ParseHumanSize()
//
// Bytes, with an optional binary unit k/m/g/t (any case, optionally
// followed by "b" or "ib"): "1048576", "64k", "512M", "1.5G", "2GiB".
// InvalidArgument "'x' is not a size" for negatives, NaN, overflow or junk.
absl::StatusOr<int64_t> ParseHumanSize(absl::string_view text);

// Implementation details follow.

inline std::string HumanBytes(uint64_t bytes) {
  if (bytes < 10 * 1024) return absl::StrCat(bytes, " B");
  if (bytes < 10 * 1024 * 1024) return absl::StrCat(bytes / 1024, " KiB");
  return absl::StrCat(bytes / (1024 * 1024), " MiB");
}

inline absl::StatusOr<absl::Duration> ParseHumanDuration(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a duration; give seconds such as 30, or 1.5, 500ms, 2m"));
  };
  double seconds = 0;
  absl::Duration d;
  if (absl::SimpleAtod(t, &seconds)) {
    if (!std::isfinite(seconds) || std::fabs(seconds) > 1e9) return bad();
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(t, &d) || d == absl::InfiniteDuration() ||
             d == -absl::InfiniteDuration()) {
    return bad();
  }
  return d;
}

inline absl::StatusOr<int64_t> ParseHumanSize(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view s = lower;
  absl::ConsumeSuffix(&s, "ib") || absl::ConsumeSuffix(&s, "b");
  double mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': mult = 1024.0; break;
      case 'm': mult = 1024.0 * 1024; break;
      case 'g': mult = 1024.0 * 1024 * 1024; break;
      case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
      default: break;
    }
    if (mult > 1) s.remove_suffix(1);
  }
  double v = 0;
  if (s.empty() || !absl::SimpleAtod(s, &v) || !std::isfinite(v) || v < 0 ||
      v * mult > 9.0e18) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a size (expected e.g. 1048576, 64k, 512M, 1.5G)"));
  }
  return static_cast<int64_t>(v * mult);
}

}  // namespace flamekit

#endif  // FLAMEKIT_BASE_HUMAN_UNITS_H_
