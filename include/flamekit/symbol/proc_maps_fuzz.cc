// SPDX-License-Identifier: Apache-2.0
// Fuzz target: ParseMaps on arbitrary text.
#include <stddef.h>
#include <stdint.h>

#include "flamekit/symbol/proc_maps.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto maps = flamekit::ParseMaps(text, "fuzz");
  if (maps.ok()) {
    for (const flamekit::Mapping& m : *maps) {
      if (m.end < m.start) __builtin_trap();
      (void)m.MapFilesName();
    }
  }
  return 0;
}
