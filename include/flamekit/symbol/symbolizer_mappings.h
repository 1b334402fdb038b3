// SPDX-License-Identifier: Apache-2.0
// File: symbolizer_mappings.h
//
// The Symbolizer's view of the process's memory: reading /proc/PID/maps
// (Init, Refresh, and a cheap check for dlopen/dlclose in this process),
// mappings announced by perf records (AddMapping), finding the mapping of an
// address, and opening each mapped file once: through /proc/PID/root, the
// map_files link of a deleted file, /proc/PID/exe, or for the [vdso] the
// target's memory (this process's own vdso when that is refused). Part of
// symbolizer.h, which includes it at its end; include symbolizer.h, not
// this file.
//
// Thread safety: as the Symbolizer: one thread at a time, never in a signal
// handler (reads files and allocates).

#ifndef FLAMEKIT_SYMBOL_SYMBOLIZER_MAPPINGS_H_
#define FLAMEKIT_SYMBOL_SYMBOLIZER_MAPPINGS_H_

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/symbol/build_id.h"
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/symbol/proc_maps.h"
#include "flamekit/symbol/symbolizer.h"

namespace flamekit {

namespace symbol_internal {

// How many objects this process's dynamic linker has loaded plus unloaded
// so far (0 where the C library does not count them).
inline uint64_t LoaderChanges() {
  uint64_t changes = 0;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t size, void* out) -> int {
        if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
          *static_cast<uint64_t*>(out) = info->dlpi_adds + info->dlpi_subs;
        }
        return 1;  // the counters are the same in every entry
      },
      &changes);
  return changes;
}

}  // namespace symbol_internal

inline absl::Status Symbolizer::Init() {
  struct stat st;
  std::string exe = ProcPath("exe");
  if (::stat(exe.c_str(), &st) == 0) {
    exe_inode_ = st.st_ino;
    exe_dev_ = st.st_dev;
  } else if (errno == ENOENT && !self_) {
    struct stat dir;
    if (::stat(ProcPath("").c_str(), &dir) != 0) {
      return absl::NotFoundError(absl::StrCat("no process ", pid_, "; check the pid (ps -e)"));
    }
  }
  char buf[4096];
  ssize_t n = ::readlink(exe.c_str(), buf, sizeof(buf) - 1);
  if (n > 0) {
    exe_path_.assign(buf, static_cast<size_t>(n));
    constexpr absl::string_view kDeleted = " (deleted)";
    if (absl::EndsWith(exe_path_, kDeleted)) exe_path_.resize(exe_path_.size() - kDeleted.size());
  }
  return Refresh();
}

inline absl::Status Symbolizer::Refresh() {
  last_refresh_ = absl::Now();
  // Counted before maps are read: a load in between costs one more re-read
  // later, never a missed library.
  if (self_) loader_changes_ = symbol_internal::LoaderChanges();
  absl::StatusOr<std::vector<Mapping>> maps = ReadProcMaps(self_ ? 0 : pid_);
  if (!maps.ok()) return maps.status();
  std::vector<Mapping> fresh = *std::move(maps);
  std::sort(fresh.begin(), fresh.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  // Old mappings: where a current mapping overlaps, the current one wins
  // (keeping a build id perf told us about for the same range and inode).
  // Executable file mappings that nothing replaced are kept: samples taken
  // before a dlclose() (or before the process exited) still name their
  // functions when they are symbolized afterwards.
  std::vector<Mapping> retired;
  for (const Mapping& old : mappings_) {
    // fresh is sorted and non-overlapping, so its ends are sorted too.
    auto it = std::lower_bound(fresh.begin(), fresh.end(), old.start,
                               [](const Mapping& m, uint64_t a) { return m.end <= a; });
    if (it != fresh.end() && it->start < old.end) {
      if (it->start == old.start && it->end == old.end && it->inode == old.inode &&
          it->build_id.empty()) {
        it->build_id = old.build_id;
      }
      continue;
    }
    if (old.executable && (old.IsFile() || old.IsVdso())) retired.push_back(old);
  }
  if (!retired.empty()) {
    fresh.insert(fresh.end(), retired.begin(), retired.end());
    std::sort(fresh.begin(), fresh.end(),
              [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  }
  mappings_ = std::move(fresh);
  address_cache_.clear();
  // A JIT appends to its perf map as it compiles: read it again on demand.
  perf_map_loaded_ = false;
  perf_map_.reset();
  return absl::OkStatus();
}

inline bool Symbolizer::RefreshIfLibrariesChanged() {
  if (!self_ || symbol_internal::LoaderChanges() == loader_changes_) return false;
  return Refresh().ok();
}

inline void Symbolizer::AddMapping(const Mapping& mapping) {
  if (mapping.end <= mapping.start) return;
  std::vector<Mapping> out;
  out.reserve(mappings_.size() + 2);
  for (const Mapping& m : mappings_) {
    if (m.end <= mapping.start || m.start >= mapping.end) {
      out.push_back(m);
      continue;
    }
    if (m.start < mapping.start) {  // the part below the new range survives
      Mapping low = m;
      low.end = mapping.start;
      out.push_back(low);
    }
    if (m.end > mapping.end) {  // the part above it too, at a later offset
      Mapping high = m;
      high.start = mapping.end;
      high.file_offset = m.file_offset + (mapping.end - m.start);
      out.push_back(high);
    }
  }
  out.push_back(mapping);
  std::sort(out.begin(), out.end(),
            [](const Mapping& a, const Mapping& b) { return a.start < b.start; });
  mappings_ = std::move(out);
  // Only addresses in the new range can change their answer.
  for (auto it = address_cache_.begin(); it != address_cache_.end();) {
    auto cur = it++;
    if (mapping.Contains(cur->first)) address_cache_.erase(cur);
  }
}

inline std::vector<std::string> Symbolizer::Warnings() const {
  std::vector<std::string> out;
  for (const auto& [key, file] : files_) {
    if (!file->status.ok()) out.push_back(std::string(file->status.message()));
  }
  std::sort(out.begin(), out.end());
  if (!kallsyms_warning_.empty()) out.push_back(kallsyms_warning_);
  if (!perf_map_warning_.empty()) out.push_back(perf_map_warning_);
  return out;
}

inline const Mapping* Symbolizer::FindMapping(uint64_t address) const {
  auto it = std::upper_bound(mappings_.begin(), mappings_.end(), address,
                             [](uint64_t a, const Mapping& m) { return a < m.start; });
  if (it == mappings_.begin()) return nullptr;
  --it;
  return it->Contains(address) ? &*it : nullptr;
}

inline const Mapping* Symbolizer::FindMappingOrRefresh(uint64_t address) {
  const Mapping* m = FindMapping(address);
  if (m == nullptr && options_.refresh_on_miss &&
      absl::Now() - last_refresh_ >= options_.refresh_interval) {
    if (Refresh().ok()) m = FindMapping(address);
  }
  return m;
}

inline bool Symbolizer::IsMainExecutable(const Mapping& m) const {
  if (exe_inode_ != 0 && m.inode != 0) {
    return m.inode == exe_inode_ && m.dev_major == major(exe_dev_) &&
           m.dev_minor == minor(exe_dev_);
  }
  return !exe_path_.empty() && m.path == exe_path_;
}

inline absl::StatusOr<std::unique_ptr<ElfFile>> Symbolizer::ReadVdso(const Mapping& m) {
  // The target's own image first, then ours (the same kernel's image).
  auto read_range = [](const std::string& mem_path, uint64_t start,
                       uint64_t size) -> absl::StatusOr<std::string> {
    if (size == 0 || size > (uint64_t{64} << 20)) {
      return absl::InvalidArgumentError("implausible [vdso] size");
    }
    ScopedFd fd(::open(mem_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return symbol_internal::FileErrorStatus(errno, "cannot open", mem_path);
    std::string bytes(size, '\0');
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd.get(), &bytes[done], size - done, static_cast<off_t>(start + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return symbol_internal::FileErrorStatus(n < 0 ? errno : EIO, "cannot read", mem_path);
      done += static_cast<size_t>(n);
    }
    return bytes;
  };
  absl::StatusOr<std::string> bytes = read_range(ProcPath("mem"), m.start, m.size());
  if (!bytes.ok() && !self_) {
    absl::StatusOr<std::vector<Mapping>> own = ReadProcMaps(0);
    if (own.ok()) {
      for (const Mapping& o : *own) {
        if (o.IsVdso()) bytes = read_range("/proc/self/mem", o.start, o.size());
      }
    }
  }
  if (!bytes.ok()) return bytes.status();
  return ElfFile::FromBytes(*std::move(bytes), "[vdso]");
}

inline absl::StatusOr<std::unique_ptr<ElfFile>> Symbolizer::OpenMappedFile(const Mapping& m) {
  if (m.IsVdso()) return ReadVdso(m);
  std::string map_files = ProcPath(absl::StrCat("map_files/", m.MapFilesName()));
  if (m.deleted) {
    // The path now names nothing or another file; map_files reaches the
    // inode that is mapped.
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::Open(map_files);
    if (elf.ok()) return elf;
    if (IsMainExecutable(m)) {
      // /proc/PID/exe also reaches a deleted executable, with only ptrace
      // access (map_files needs CAP_SYS_ADMIN in the initial namespace).
      absl::StatusOr<std::unique_ptr<ElfFile>> exe = ElfFile::Open(ProcPath("exe"));
      if (exe.ok()) return exe;
    }
    if (!absl::IsPermissionDenied(elf.status())) return elf;
    return absl::PermissionDeniedError(absl::StrCat(
        m.path, " was deleted after it was mapped, and reading it through ", map_files,
        " needs CAP_SYS_ADMIN: run as root (outside a user namespace) to name its functions"));
  }
  std::string path = self_ ? m.path : ProcPath(absl::StrCat("root", m.path));
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    // The process may be gone (a short-lived one, or its mount namespace
    // torn down): try what map_files still offers, then report.
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::Open(map_files);
    if (elf.ok()) return elf;
    // Gone with its /proc/PID/root (an exited process's zombie has none):
    // the same path here is the mapped file if it is the same inode on the
    // same device (a process launched by us, or sharing our mounts). A
    // short command under load exits before its addresses are read.
    ScopedFd here(::open(m.path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st;
    if (here && !self_ && m.inode != 0 && ::fstat(here.get(), &st) == 0 &&
        st.st_ino == m.inode && major(st.st_dev) == m.dev_major &&
        minor(st.st_dev) == m.dev_minor) {
      return ElfFile::OpenFd(here.get(), m.path);
    }
    return symbol_internal::FileErrorStatus(err, "cannot open mapped file", path);
  }
  struct stat st;
  if (m.inode != 0 && ::fstat(fd.get(), &st) == 0 && st.st_ino != m.inode) {
    // Replaced in place since it was mapped (or an overlay file system that
    // reports other inode numbers): prefer the mapped inode when reachable.
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::Open(map_files);
    if (elf.ok()) return elf;
  }
  return ElfFile::OpenFd(fd.get(), m.path);
}

inline std::unique_ptr<Symbolizer::LoadedFile> Symbolizer::LoadFile(const Mapping& m) {
  auto file = std::make_unique<LoadedFile>();
  ++files_parsed_;
  absl::StatusOr<std::unique_ptr<ElfFile>> elf = OpenMappedFile(m);
  if (!elf.ok()) {
    file->status = elf.status();
    return file;
  }
  file->elf = *std::move(elf);
  if (!m.build_id.empty() && !file->elf->build_id().empty() &&
      m.build_id != file->elf->build_id()) {
    file->status = absl::FailedPreconditionError(absl::StrCat(
        m.path, ": build id ", file->elf->build_id(), " on disk differs from ", m.build_id,
        " that was mapped; the file was replaced: names would be wrong, so none are shown"));
    file->elf.reset();
    return file;
  }
  if (!options_.function_names) return file;
  std::vector<ElfSymbol> symbols = file->elf->FunctionSymbols();
  const std::vector<ElfSymbol>& plt = file->elf->PltSymbols();
  symbols.insert(symbols.end(), plt.begin(), plt.end());
  if (options_.use_debug_files && !file->elf->has_symtab() && !m.IsVdso()) {
    DebugFileOptions debug_options;
    debug_options.roots = options_.debug_roots;
    absl::StatusOr<std::string> debug_path = FindDebugFile(*file->elf, m.path, debug_options);
    if (!debug_path.ok() && !self_) {
      debug_options.sysroot = ProcPath("root");
      debug_path = FindDebugFile(*file->elf, m.path, debug_options);
    }
    if (debug_path.ok()) {
      absl::StatusOr<std::unique_ptr<ElfFile>> debug = ElfFile::Open(*debug_path);
      if (debug.ok()) {
        file->debug = *std::move(debug);
        std::vector<ElfSymbol> more = file->debug->FunctionSymbols();
        symbols.insert(symbols.end(), more.begin(), more.end());
      }
    }
  }
  file->table = SymbolTable(std::move(symbols));
  return file;
}

inline Symbolizer::LoadedFile* Symbolizer::GetFile(const Mapping& m) {
  std::string key = m.IsVdso() ? std::string("[vdso]")
                               : absl::StrCat(m.dev_major, ":", m.dev_minor, ":", m.inode, ":",
                                              m.inode == 0 ? m.build_id : std::string(), ":",
                                              m.path, m.deleted ? " (deleted)" : "");
  auto it = files_.find(key);
  if (it != files_.end()) return it->second.get();
  std::unique_ptr<LoadedFile> file = LoadFile(m);
  LoadedFile* raw = file.get();
  files_.emplace(std::move(key), std::move(file));
  return raw;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_SYMBOLIZER_MAPPINGS_H_
