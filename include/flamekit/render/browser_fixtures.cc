// SPDX-License-Identifier: Apache-2.0
// Writes the pages tools/checks/browser_render.sh opens in a real browser:
//   browser_fixtures OUTPUT_DIR
// small.html, small_inverted_reversed.html, hostile.html, deep.html, small.svg, diff.html, and big.html (1,000,000
// samples over 50,000 stacks: the render benchmark's input).

#include <stdio.h>

#include <string>
#include <vector>

#include "flamekit/profile/diff.h"
#include "flamekit/render/render_test_util.h"
#include "flamekit/render/write_profile.h"

namespace {

bool Write(const flamekit::Profile& profile, const std::string& path,
           const flamekit::RenderOptions& options = {}) {
  absl::Status status = flamekit::WriteProfile(profile, path, options);
  if (!status.ok()) {
    fprintf(stderr, "%s: %s\n", path.c_str(), status.ToString().c_str());
    return false;
  }
  printf("wrote %s\n", path.c_str());
  return true;
}

bool WriteDiffPage(const flamekit::DiffProfile& diff, const std::string& path) {
  absl::Status status = flamekit::WriteDiff(diff, path, {});
  if (!status.ok()) {
    fprintf(stderr, "%s: %s\n", path.c_str(), status.ToString().c_str());
    return false;
  }
  printf("wrote %s\n", path.c_str());
  return true;
}

// One stack 5,000 frames deep, beside a shallow one.
flamekit::Profile DeepProfile() {
  flamekit::Profile p;
  std::vector<flamekit::FrameId> stack;
  for (int i = 0; i < 5000; ++i) stack.push_back(p.InternFrame("recurse" + std::to_string(i % 3)));
  p.AddStack(stack, 700);
  flamekit::FrameId shallow[] = {p.InternFrame("recurse0"), p.InternFrame("leaf")};
  p.AddStack(shallow, 300);
  return p;
}

flamekit::RenderOptions InvertedReversed() {
  flamekit::RenderOptions options;
  options.inverted = true;
  options.reverse = true;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: browser_fixtures OUTPUT_DIR\n");
    return 2;
  }
  namespace rt = flamekit::render_testing;
  const std::string dir = argv[1];
  bool ok = Write(rt::SmallProfile(), dir + "/small.html") &&
            Write(rt::HostileProfile(), dir + "/hostile.html") &&
            Write(DeepProfile(), dir + "/deep.html") &&
            Write(rt::SmallProfile(), dir + "/small.svg") &&
            Write(rt::SmallProfile(), dir + "/small_inverted_reversed.html", InvertedReversed()) &&
            WriteDiffPage(flamekit::ComputeDiff(rt::SmallProfile(), rt::SmallProfileAfter()),
                          dir + "/diff.html") &&
            Write(rt::LargeProfile(1000000, 50000), dir + "/big.html");
  return ok ? 0 : 1;
}
