// SPDX-License-Identifier: Apache-2.0
// File: golden_cases.h
//
// The inputs and options of the golden files in testdata/golden/, shared by
// golden_gen (which writes them) and golden_test (which compares). Test
// only; not thread-safety relevant.
//
// Example:
//
//   for (const GoldenCase& c : GoldenCases()) WriteProfile(c.profile, c.file_name, c.options);

#ifndef FLAMEKIT_RENDER_GOLDEN_CASES_H_
#define FLAMEKIT_RENDER_GOLDEN_CASES_H_

#include <optional>
#include <string>
#include <vector>

#include "flamekit/profile/diff.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/render_options.h"
#include "flamekit/render/render_test_util.h"
#include "flamekit/render/write_profile.h"

namespace flamekit {
namespace render_testing {

struct GoldenCase {
  std::string file_name;  // in testdata/golden/
  Profile profile;
  RenderOptions options;
  // Diff cases: `base` is compared with `profile`.
  std::optional<Profile> base;
};

// The bytes of a case, as WriteProfile()/WriteDiff() would write them.
absl::StatusOr<std::string> RenderGoldenCase(const GoldenCase& c);

// Every golden file: small profile as HTML, SVG (normal, inverted and
// reversed), collapsed; the hostile names as HTML and SVG; the small diff as
// HTML, SVG and difffolded.
std::vector<GoldenCase> GoldenCases();

// Implementation details follow.

inline std::vector<GoldenCase> GoldenCases() {
  std::vector<GoldenCase> cases;
  cases.push_back({"small.html", SmallProfile(), {}});
  cases.push_back({"small.svg", SmallProfile(), {}});
  RenderOptions inverted;
  inverted.inverted = true;
  inverted.title = "inverted";
  cases.push_back({"small_inverted.svg", SmallProfile(), inverted});
  RenderOptions reversed;
  reversed.reverse = true;
  reversed.minwidth = 3;
  cases.push_back({"small_reversed_minwidth3.svg", SmallProfile(), reversed});
  cases.push_back({"small.collapsed", SmallProfile(), {}});
  cases.push_back({"hostile.html", HostileProfile(), {}});
  cases.push_back({"hostile.svg", HostileProfile(), {}});
  cases.push_back({"diff.html", SmallProfileAfter(), {}, SmallProfile()});
  cases.push_back({"diff.svg", SmallProfileAfter(), {}, SmallProfile()});
  cases.push_back({"diff.collapsed", SmallProfileAfter(), {}, SmallProfile()});
  return cases;
}

inline absl::StatusOr<std::string> RenderGoldenCase(const GoldenCase& c) {
  absl::StatusOr<OutputFormat> format = ResolveFormat(c.file_name, c.options);
  if (!format.ok()) return format.status();
  if (c.base.has_value()) return RenderDiff(ComputeDiff(*c.base, c.profile), *format, c.options);
  return RenderProfile(c.profile, *format, c.options);
}

}  // namespace render_testing
}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_GOLDEN_CASES_H_
