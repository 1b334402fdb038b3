// SPDX-License-Identifier: Apache-2.0
// File: build_id.h
//
// FindDebugFile() locates the separate debug file of a stripped ELF file,
// the way gdb and perf do: by GNU build id under
// ROOT/.build-id/xx/yyyy....debug (Debian's -dbgsym packages install there,
// ROOT = /usr/lib/debug), then by .gnu_debuglink name next to the file, in
// its .debug/ folder and under ROOT/<dir of the file>/. A candidate is
// accepted only when its build id matches the file's (when the file has
// one) and it carries a .symtab. Not for signal handlers (allocates, reads
// files); thread-compatible (no shared state).
//
// Example:
//
//   flamekit::DebugFileOptions options;        // roots: {"/usr/lib/debug"}
//   absl::StatusOr<std::string> debug = flamekit::FindDebugFile(*elf, path, options);
//   if (debug.ok()) ... ElfFile::Open(*debug) ...

#ifndef FLAMEKIT_SYMBOL_BUILD_ID_H_
#define FLAMEKIT_SYMBOL_BUILD_ID_H_

#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/symbol/elf_reader.h"

namespace flamekit {

struct DebugFileOptions {
  // Folders searched for debug files, in order.
  std::vector<std::string> roots = {"/usr/lib/debug"};
  // Prefix put before every candidate path, e.g. "/proc/PID/root" to look
  // inside a container's file system. Empty for the host.
  std::string sysroot;
};

// BuildIdDebugPath()
//
// ROOT/.build-id/xx/rest.debug for a hex build id; empty when the id is
// too short (under 2 bytes) to be real.
std::string BuildIdDebugPath(absl::string_view root, absl::string_view build_id_hex);

// FindDebugFile()
//
// The path of the debug file for `elf` (opened from `elf_path`, the path as
// the process sees it), or NotFound saying where it looked and what to
// install.
absl::StatusOr<std::string> FindDebugFile(const ElfFile& elf, absl::string_view elf_path,
                                          const DebugFileOptions& options = {});

// Implementation details follow.

inline std::string BuildIdDebugPath(absl::string_view root, absl::string_view build_id_hex) {
  if (build_id_hex.size() < 4) return std::string();
  return absl::StrCat(root, "/.build-id/", build_id_hex.substr(0, 2), "/",
                      build_id_hex.substr(2), ".debug");
}

namespace symbol_internal {

// Whether `path` is a debug file matching `build_id` (any, when empty).
inline bool IsMatchingDebugFile(const std::string& path, absl::string_view build_id) {
  if (::access(path.c_str(), R_OK) != 0) return false;
  absl::StatusOr<std::unique_ptr<ElfFile>> debug = ElfFile::Open(path);
  if (!debug.ok()) return false;
  if (!build_id.empty() && (*debug)->build_id() != build_id) return false;
  return (*debug)->has_symtab();
}

}  // namespace symbol_internal

inline absl::StatusOr<std::string> FindDebugFile(const ElfFile& elf, absl::string_view elf_path,
                                                 const DebugFileOptions& options) {
  std::vector<std::string> tried;
  auto try_path = [&](const std::string& candidate) {
    std::string full = absl::StrCat(options.sysroot, candidate);
    tried.push_back(full);
    return symbol_internal::IsMatchingDebugFile(full, elf.build_id());
  };
  if (!elf.build_id().empty()) {
    for (const std::string& root : options.roots) {
      std::string p = BuildIdDebugPath(root, elf.build_id());
      if (!p.empty() && try_path(p)) return absl::StrCat(options.sysroot, p);
    }
  }
  if (!elf.debuglink().empty() && elf.debuglink().find('/') == std::string::npos) {
    absl::string_view dir = elf_path;
    size_t slash = dir.rfind('/');
    dir = slash == absl::string_view::npos ? absl::string_view(".") : dir.substr(0, slash);
    std::vector<std::string> candidates = {
        absl::StrCat(dir, "/", elf.debuglink()),
        absl::StrCat(dir, "/.debug/", elf.debuglink()),
    };
    for (const std::string& root : options.roots) {
      candidates.push_back(absl::StrCat(root, dir, "/", elf.debuglink()));
    }
    for (const std::string& c : candidates) {
      if (c == elf_path) continue;  // the file itself, not its debug file
      if (try_path(c)) return absl::StrCat(options.sysroot, c);
    }
  }
  if (tried.empty()) {
    return absl::NotFoundError(absl::StrCat(
        elf_path, ": no build id and no .gnu_debuglink, so no separate debug file can be found"));
  }
  return absl::NotFoundError(absl::StrCat(
      elf_path, ": no debug file found (tried ", tried.front(),
      tried.size() > 1 ? absl::StrCat(" and ", tried.size() - 1, " more") : std::string(),
      "); install the package's -dbgsym (Debian) or -debuginfo package for function names"));
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_BUILD_ID_H_
