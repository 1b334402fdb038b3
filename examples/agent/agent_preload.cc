// SPDX-License-Identifier: Apache-2.0
// File: agent_preload.cc

#include "examples/agent/agent_preload.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace flamekit {
namespace agent {

std::string RemovePreloadEntries(absl::string_view ld_preload,
                                 const std::function<bool(absl::string_view)>& is_self) {
  auto is_separator = [](char c) { return c == ' ' || c == ':'; };
  char joiner = ' ';
  for (char c : ld_preload) {
    if (is_separator(c)) {
      joiner = c;
      break;
    }
  }
  std::string kept;
  size_t i = 0;
  while (i < ld_preload.size()) {
    while (i < ld_preload.size() && is_separator(ld_preload[i])) ++i;
    size_t end = i;
    while (end < ld_preload.size() && !is_separator(ld_preload[end])) ++end;
    absl::string_view entry = ld_preload.substr(i, end - i);
    if (!entry.empty() && !is_self(entry)) {
      if (!kept.empty()) kept.push_back(joiner);
      kept.append(entry.data(), entry.size());
    }
    i = end;
  }
  return kept;
}

namespace {

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : std::string();
}

}  // namespace

void RemoveSelfFromPreload() {
  const char* value = getenv("LD_PRELOAD");
  if (value == nullptr) return;
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&RemoveSelfFromPreload), &self) == 0 ||
      self.dli_fname == nullptr) {
    return;
  }
  const std::string self_path = RealPath(self.dli_fname);
  const std::string self_name =
      self_path.substr(self_path.empty() ? 0 : self_path.rfind('/') + 1);
  if (self_path.empty()) return;
  const std::string remaining =
      RemovePreloadEntries(value, [&](absl::string_view entry) {
        const std::string path(entry);
        if (path.find('/') == std::string::npos && path == self_name) return true;
        return RealPath(path) == self_path;
      });
  if (remaining == value) return;
  // Edit the environment array in place rather than through setenv(): the
  // array is also main()'s third argument, from which some programs (bash)
  // build the environment of what they run. The new value is never longer
  // than the old, so it fits in the old string.
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (strncmp(*entry, "LD_PRELOAD=", 11) != 0) continue;
    if (remaining.empty()) {
      for (char** next = entry; *next != nullptr; ++next) next[0] = next[1];
    } else {
      memcpy(*entry + 11, remaining.c_str(), remaining.size() + 1);
    }
    return;
  }
}

}  // namespace agent
}  // namespace flamekit
