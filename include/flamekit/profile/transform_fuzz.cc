// SPDX-License-Identifier: Apache-2.0
//
// Fuzz target for transform lists: any bytes either fail with a Status or
// give a list whose JSON reads back to the same JSON, and which applies to
// a small real-looking profile without crashing, never adding samples.

#include <stddef.h>
#include <stdint.h>

#include <cstdlib>
#include <string>

#include "flamekit/profile/collapsed_io.h"
#include "flamekit/profile/transform.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const flamekit::Profile* const profile = [] {
    auto p = flamekit::ParseCollapsed(
        "main;std::vector<int, std::allocator<int> >::push_back(int const&) 3\n"
        "main;(anonymous namespace)::Foo::operator()(int) const;memcpy_[k] 2\n"
        "main;f;f;f;Foo::Run()::{lambda()#1}::operator()() const 5\n"
        "[w tid=1];libc.so.6+0x1234;[unknown];[truncated] 1\n");
    if (!p.ok()) std::abort();
    return new flamekit::Profile(*std::move(p));
  }();
  const absl::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<flamekit::TransformList> list =
      flamekit::TransformList::FromJson(json, "fuzz.json");
  if (!list.ok()) return 0;
  const std::string once = list->ToJson();
  absl::StatusOr<flamekit::TransformList> again =
      flamekit::TransformList::FromJson(once, "fuzz.json");
  if (!again.ok() || again->ToJson() != once) std::abort();
  // Bound the work: huge max_depth values and long lists are fine, but the
  // profile is tiny, so this is cheap whatever the list.
  flamekit::Profile out = flamekit::ApplyTransforms(*profile, *list);
  if (out.total_samples() > profile->total_samples()) std::abort();
  return 0;
}
