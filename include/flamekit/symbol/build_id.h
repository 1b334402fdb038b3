// SPDX-License-Identifier: Apache-2.0
// File: build_id.h
//
// FindDebugFile() locates the separate debug file of a stripped ELF file,
// the way gdb and perf do: by GNU build id under
// ROOT/.build-id/xx/yyyy....debug (Debian's -dbgsym packages install there,
// ROOT = /usr/lib/debug), then by .gnu_debuglink name next to the file, in
// its .debug/ folder and under ROOT/<dir of the file>/. A candidate is
// accepted only when it carries a .symtab and matches: same build id when
// the file has one, otherwise the CRC-32 that .gnu_debuglink records. Not for signal handlers (allocates, reads
// files); thread-compatible (no shared state).
//
// Example:
//
//   flamekit::DebugFileOptions options;        // roots: {"/usr/lib/debug"}
//   absl::StatusOr<std::string> debug = flamekit::FindDebugFile(*elf, path, options);
//   if (debug.ok()) ... ElfFile::Open(*debug) ...

#ifndef FLAMEKIT_SYMBOL_BUILD_ID_H_
#define FLAMEKIT_SYMBOL_BUILD_ID_H_

#include <stdint.h>
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

// DebuglinkCrc32()
//
// The CRC-32 (IEEE 802.3, as zlib's crc32 and gdb compute it) of `bytes`,
// the checksum .gnu_debuglink records for the debug file.
uint32_t DebuglinkCrc32(absl::string_view bytes);

// FindDebugFile()
//
// The path of the debug file for `elf` (opened from `elf_path`, the path as
// the process sees it), or NotFound saying where it looked and what to
// install.
absl::StatusOr<std::string> FindDebugFile(const ElfFile& elf, absl::string_view elf_path,
                                          const DebugFileOptions& options = {});

// Implementation details follow.

inline uint32_t DebuglinkCrc32(absl::string_view bytes) {
  static const auto* const kTable = [] {
    auto* table = new uint32_t[256];
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  uint32_t crc = 0xffffffffu;
  for (char ch : bytes) crc = kTable[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

inline std::string BuildIdDebugPath(absl::string_view root, absl::string_view build_id_hex) {
  if (build_id_hex.size() < 4) return std::string();
  return absl::StrCat(root, "/.build-id/", build_id_hex.substr(0, 2), "/",
                      build_id_hex.substr(2), ".debug");
}

namespace symbol_internal {

// Whether `path` is a debug file for `elf`: same build id when it has one,
// else the debuglink CRC (when `check_crc`).
inline bool IsMatchingDebugFile(const std::string& path, const ElfFile& elf, bool check_crc) {
  if (::access(path.c_str(), R_OK) != 0) return false;
  absl::StatusOr<std::unique_ptr<ElfFile>> debug = ElfFile::Open(path);
  if (!debug.ok() || !(*debug)->has_symtab()) return false;
  if (!elf.build_id().empty()) return (*debug)->build_id() == elf.build_id();
  if (check_crc) return DebuglinkCrc32((*debug)->bytes()) == elf.debuglink_crc();
  return true;
}

}  // namespace symbol_internal

inline absl::StatusOr<std::string> FindDebugFile(const ElfFile& elf, absl::string_view elf_path,
                                                 const DebugFileOptions& options) {
  std::vector<std::string> tried;
  auto try_path = [&](const std::string& candidate) {
    std::string full = absl::StrCat(options.sysroot, candidate);
    tried.push_back(full);
    return symbol_internal::IsMatchingDebugFile(full, elf, /*check_crc=*/false);
  };
  auto try_debuglink = [&](const std::string& candidate) {
    std::string full = absl::StrCat(options.sysroot, candidate);
    tried.push_back(full);
    return symbol_internal::IsMatchingDebugFile(full, elf, /*check_crc=*/true);
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
      if (try_debuglink(c)) return absl::StrCat(options.sysroot, c);
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
