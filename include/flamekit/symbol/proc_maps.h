// SPDX-License-Identifier: Apache-2.0
// File: proc_maps.h
//
// Mapping describes one memory mapping of a process, as a line of
// /proc/PID/maps or a perf PERF_RECORD_MMAP2 record shows it; ParseMapsLine()
// and ReadProcMaps() read them. Not for signal handlers (allocates, reads
// files). The functions are thread-compatible: they touch no shared state, so
// any number of threads may call them at once on different data.
//
// A maps line is "START-END PERMS OFFSET MAJOR:MINOR INODE   PATH", all
// numbers hex except INODE. PATH is empty for anonymous memory, a bracketed
// pseudo name ("[vdso]", "[stack]", "[heap]", "[anon:name]"), or a file path
// that may itself contain spaces and ends in " (deleted)" when the file was
// unlinked after it was mapped.
//
// Example:
//
//   absl::StatusOr<std::vector<flamekit::Mapping>> maps =
//       flamekit::ReadProcMaps(pid);
//   if (!maps.ok()) return maps.status();
//   for (const flamekit::Mapping& m : *maps) {
//     if (m.executable && m.IsFile()) ...  // m.path, m.start, m.file_offset
//   }

#ifndef FLAMEKIT_SYMBOL_PROC_MAPS_H_
#define FLAMEKIT_SYMBOL_PROC_MAPS_H_

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/base/scoped_fd.h"

namespace flamekit {

// Mapping
//
// One mapping: the addresses [start, end) map the file `path` from
// `file_offset` on (for anonymous and pseudo mappings file_offset is
// usually 0 and path is empty or bracketed).
struct Mapping {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t file_offset = 0;
  bool readable = false;
  bool writable = false;
  bool executable = false;
  bool is_private = false;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  // The path with any " (deleted)" suffix removed (see `deleted`).
  std::string path;
  // The kernel marked the file as unlinked since it was mapped. The old
  // inode is still reachable through /proc/PID/map_files/START-END.
  bool deleted = false;
  // The GNU build id as lowercase hex, when known (perf MMAP2 records with
  // PERF_RECORD_MISC_MMAP_BUILD_ID carry it); empty otherwise.
  std::string build_id;

  uint64_t size() const { return end - start; }
  bool Contains(uint64_t address) const { return address >= start && address < end; }
  // A regular file (an absolute path), as opposed to anonymous memory or a
  // pseudo mapping such as [vdso]. perf names anonymous executable memory
  // (JIT code) "//anon" in its MMAP records: not a file.
  bool IsFile() const { return !path.empty() && path[0] == '/' && !IsAnonymous(); }
  // A pseudo mapping: "[vdso]", "[stack]", "[heap]", "[anon:...]", ...
  bool IsPseudo() const { return !path.empty() && path[0] == '[' && path.back() == ']'; }
  // Anonymous memory: no path, a named anonymous region ("[anon:name]",
  // from PR_SET_VMA_ANON_NAME), or perf's "//anon" / "/anon_hugepage".
  bool IsAnonymous() const {
    return path.empty() || absl::StartsWith(path, "[anon") || path == "//anon" ||
           path == "/anon_hugepage";
  }
  bool IsVdso() const { return path == "[vdso]"; }
  // The map_files name of this range: "7f0000-7f1000" (lowercase hex).
  std::string MapFilesName() const {
    return absl::StrCat(absl::Hex(start), "-", absl::Hex(end));
  }
};

// ParseMapsLine()
//
// Parses one line of /proc/PID/maps (with or without its trailing newline).
// Returns InvalidArgument naming the first bad field on anything else.
absl::StatusOr<Mapping> ParseMapsLine(absl::string_view line);

// ParseMaps()
//
// Parses a whole maps file; empty lines are skipped. `source` names the text
// in error messages ("/proc/123/maps:7: ...").
absl::StatusOr<std::vector<Mapping>> ParseMaps(absl::string_view text,
                                               absl::string_view source = "maps");

// ReadProcMaps()
//
// Reads and parses /proc/PID/maps; pid 0 means this process
// (/proc/self/maps). NotFound when there is no such process,
// PermissionDenied when we may not read it.
absl::StatusOr<std::vector<Mapping>> ReadProcMaps(pid_t pid);

// Implementation details follow.

namespace symbol_internal {

// The readers of base/proc_files.h, under the names this stage used.
using ::flamekit::FileErrorStatus;
using ::flamekit::OpenRegularFile;

// Splits off the next whitespace-delimited field of `*rest`.
inline absl::string_view NextField(absl::string_view* rest) {
  size_t i = 0;
  while (i < rest->size() && ((*rest)[i] == ' ' || (*rest)[i] == '\t')) ++i;
  size_t j = i;
  while (j < rest->size() && (*rest)[j] != ' ' && (*rest)[j] != '\t') ++j;
  absl::string_view field = rest->substr(i, j - i);
  rest->remove_prefix(j);
  return field;
}

inline bool ParseHex64(absl::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace symbol_internal

inline absl::StatusOr<Mapping> ParseMapsLine(absl::string_view line) {
  using symbol_internal::NextField;
  using symbol_internal::ParseHex64;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  auto bad = [&](absl::string_view what) {
    absl::string_view shown = line.substr(0, 200);
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed maps line (", what,
        "); expected 'START-END PERMS OFFSET MAJOR:MINOR INODE [PATH]': \"",
        absl::CHexEscape(shown), line.size() > shown.size() ? "...\"" : "\""));
  };
  Mapping m;
  absl::string_view rest = line;
  absl::string_view range = NextField(&rest);
  size_t dash = range.find('-');
  if (dash == absl::string_view::npos || !ParseHex64(range.substr(0, dash), &m.start) ||
      !ParseHex64(range.substr(dash + 1), &m.end)) {
    return bad("bad address range");
  }
  if (m.end < m.start) return bad("range ends before it starts");
  absl::string_view perms = NextField(&rest);
  if (perms.size() != 4) return bad("bad permissions");
  auto flag = [](char c, char yes) { return c == yes ? 1 : (c == '-' ? 0 : -1); };
  int r = flag(perms[0], 'r'), w = flag(perms[1], 'w'), x = flag(perms[2], 'x');
  if (r < 0 || w < 0 || x < 0 || (perms[3] != 'p' && perms[3] != 's')) {
    return bad("bad permissions");
  }
  m.readable = r == 1;
  m.writable = w == 1;
  m.executable = x == 1;
  m.is_private = perms[3] == 'p';
  if (!ParseHex64(NextField(&rest), &m.file_offset)) return bad("bad offset");
  absl::string_view dev = NextField(&rest);
  size_t colon = dev.find(':');
  uint64_t major = 0, minor = 0;
  if (colon == absl::string_view::npos || !ParseHex64(dev.substr(0, colon), &major) ||
      !ParseHex64(dev.substr(colon + 1), &minor) || major > 0xffffffff || minor > 0xffffffff) {
    return bad("bad device");
  }
  m.dev_major = static_cast<uint32_t>(major);
  m.dev_minor = static_cast<uint32_t>(minor);
  if (!absl::SimpleAtoi(NextField(&rest), &m.inode)) return bad("bad inode");
  // The path is everything after the padding; it may contain spaces.
  size_t i = 0;
  while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t')) ++i;
  rest.remove_prefix(i);
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(rest, kDeleted) && !rest.empty() && rest[0] == '/') {
    m.deleted = true;
    rest.remove_suffix(kDeleted.size());
  }
  m.path = std::string(rest);
  return m;
}

inline absl::StatusOr<std::vector<Mapping>> ParseMaps(absl::string_view text,
                                                      absl::string_view source) {
  std::vector<Mapping> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    absl::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    absl::StatusOr<Mapping> m = ParseMapsLine(line);
    if (!m.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": ", m.status().message()));
    }
    out.push_back(*std::move(m));
  }
  return out;
}

inline absl::StatusOr<std::vector<Mapping>> ReadProcMaps(pid_t pid) {
  if (pid < 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid pid ", pid, "; pass a positive pid or 0 for self"));
  }
  std::string path = pid == 0 ? std::string("/proc/self/maps") : absl::StrCat("/proc/", pid, "/maps");
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat("no process ", pid, " (", path,
                                              " does not exist); check the pid"));
    }
    return text.status();
  }
  return ParseMaps(*text, path);
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_PROC_MAPS_H_
