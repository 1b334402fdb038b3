// SPDX-License-Identifier: Apache-2.0
// File: process_build_id.h
//
// ProcessBuildId(): the GNU build id of a process's main executable, read
// through /proc/PID/exe (so a process in a container, or one whose file was
// replaced on disk, still gives the id of what it runs). For labels such as
// the build_id that `record --continuous --push` sends with each window, so
// a profiling store can tell two builds of one service apart. It lives here
// because attach/ may read ELF files (symbol/) and the CLI may not.
//
// Thread-safety: a pure function over files; any thread, never from a
// signal handler.
//
// Example:
//
//   std::string id = ProcessBuildId(pid);  // "" when unknown

#ifndef FLAMEKIT_ATTACH_PROCESS_BUILD_ID_H_
#define FLAMEKIT_ATTACH_PROCESS_BUILD_ID_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "flamekit/symbol/elf_reader.h"

namespace flamekit {

// ProcessBuildId()
//
// Lowercase hex, or "" when the process is gone, not ours to read, or its
// executable has no build-id note.
std::string ProcessBuildId(pid_t pid);

// Implementation details follow.

inline std::string ProcessBuildId(pid_t pid) {
  absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::Open(absl::StrCat("/proc/", pid, "/exe"));
  if (!elf.ok()) return std::string();
  return (*elf)->build_id();
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_PROCESS_BUILD_ID_H_
