// SPDX-License-Identifier: Apache-2.0
// File: symbolizer.h
//
// Symbolizer turns code addresses of one process (this one, or another by
// PID) into function names for flame graphs. NOT for signal handlers: it
// allocates, maps files and reads /proc. NOT thread-safe: use one
// Symbolizer from one thread at a time (the profiler's collector thread);
// wrap it in a mutex if several threads must share it. Different
// Symbolizer objects are independent and may be used on different threads.
//
// How an address is named:
// - kernel addresses (upper half) via /proc/kallsyms → FrameKind::kKernel,
//   or "[kernel]" when the kernel hides the addresses (kallsyms.h says
//   which settings reveal them);
// - addresses in a mapped ELF file: the function symbol of .symtab or
//   .dynsym (or of a separate debug file found by build id or
//   .gnu_debuglink) whose [start, start + size) contains the address,
//   demangled → kUser for the main executable, kLibrary for shared
//   libraries and the [vdso]; PLT stubs are "name@plt";
// - addresses in such a file that no symbol contains → "basename+0xOFFSET"
//   (OFFSET = the file offset, what `addr2line -e FILE` and `objdump` take
//   after adding the segment's vaddr) with kUnknown; never the nearest
//   preceding symbol, which in a stripped library is a wrong neighbour;
// - addresses in anonymous memory named by a perf map file
//   (/tmp/perf-PID.map, written by JIT runtimes) → kJit;
// - anything else → "[unknown]" (or the pseudo mapping's name, such as
//   "[heap]") with kUnknown.
//
// Another process's files are opened through /proc/PID/root/PATH, so a
// process in a container (another mount namespace) resolves from the host.
// Once the process has exited (its zombie has no root), the same path on the
// host is read if it is still the mapped inode on the mapped device.
// Deleted or replaced files (maps show "PATH (deleted)") are opened through
// /proc/PID/map_files/START-END, which still reaches the old inode (needs
// CAP_SYS_ADMIN in the initial user namespace, i.e. real root), and for the
// executable also through /proc/PID/exe (ptrace access suffices). The
// [vdso] image is read from /proc/PID/mem;
// when that is not permitted, this process's own vdso is used instead: the
// vdso belongs to the kernel, so every 64-bit process on the machine has the
// same image (at a different address, which the file-offset arithmetic
// absorbs).
//
// Each ELF file is parsed once, keyed by device and inode, and shared by all
// its mappings; results are cached per address until Refresh().
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<flamekit::Symbolizer>> symbolizer =
//       flamekit::Symbolizer::ForProcess(pid);
//   if (!symbolizer.ok()) return symbolizer.status();
//   flamekit::Symbolizer::Symbol s = (*symbolizer)->Lookup(pc);
//   profile.InternFrame(s.name, s.kind);
//   ...
//   (*symbolizer)->AddMapping(mapping_from_perf_mmap2_record);   // attach
//   (*symbolizer)->Refresh();                                    // after dlopen

#ifndef FLAMEKIT_SYMBOL_SYMBOLIZER_H_
#define FLAMEKIT_SYMBOL_SYMBOLIZER_H_

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
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/base/frame_kind.h"
#include "flamekit/symbol/build_id.h"
#include "flamekit/symbol/demangle.h"
#include "flamekit/symbol/eh_frame.h"
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/symbol/symbol_table.h"
#include "flamekit/symbol/kallsyms.h"
#include "flamekit/symbol/perf_map.h"
#include "flamekit/symbol/proc_maps.h"

namespace flamekit {

struct SymbolizerOptions {
  // Demangle C++ names ("foo::bar(int)" instead of "_ZN3foo3barEi").
  bool demangle = true;
  // Look for separate debug files for files without .symtab.
  bool use_debug_files = true;
  // Where to look for them (see build_id.h); for another process they are
  // looked up on the host first, then inside its /proc/PID/root.
  std::vector<std::string> debug_roots = {"/usr/lib/debug"};
  // Name kernel addresses from this file ("" = never: all are "[kernel]").
  std::string kallsyms_path = "/proc/kallsyms";
  // Read the JIT perf map PERF_MAP_DIR/perf-PID.map for addresses in
  // anonymous memory ("" = never).
  std::string perf_map_dir = "/tmp";
  // On a lookup that falls in no known mapping, re-read /proc/PID/maps
  // (at most every `refresh_interval`): code loaded by dlopen since the
  // last Refresh() then resolves without the caller doing anything.
  bool refresh_on_miss = true;
  absl::Duration refresh_interval = absl::Milliseconds(100);
  // Build each file's function symbol table. Off for a Symbolizer used
  // only for CfaRuleAt() and InExecutableMapping(), which then parses no
  // symbols (names come out as "file+0xOFFSET").
  bool function_names = true;
  // Bound on the per-address cache; it is cleared when full.
  size_t max_cached_addresses = size_t{1} << 20;
};

class Symbolizer {
 public:
  struct Symbol {
    std::string name;
    FrameKind kind = FrameKind::kUnknown;
  };

  // ForSelf()
  //
  // A symbolizer for this process (reads /proc/self/maps).
  static absl::StatusOr<std::unique_ptr<Symbolizer>> ForSelf(
      const SymbolizerOptions& options = SymbolizerOptions());

  // ForProcess()
  //
  // A symbolizer for process `pid`, read through /proc/PID. NotFound when
  // there is no such process, PermissionDenied when its maps are hidden
  // from us (another user's process: run as that user or as root).
  static absl::StatusOr<std::unique_ptr<Symbolizer>> ForProcess(
      pid_t pid, const SymbolizerOptions& options = SymbolizerOptions());

  // Refresh()
  //
  // Re-reads /proc/PID/maps (after dlopen, or when perf reported new
  // mappings) and forgets the per-address cache; parsed files are kept.
  // Where maps now show something else, the new mapping wins; executable
  // file mappings that are simply gone (dlclose) are kept, so addresses
  // sampled before they went away still resolve. Returns the error of
  // reading maps (NotFound once the process has exited); the old mappings
  // stay in use then.
  absl::Status Refresh();

  // AddMapping()
  //
  // Adds a mapping reported by a perf PERF_RECORD_MMAP2 record (attach).
  // It replaces whatever overlapped its range, as mmap(2) does.
  void AddMapping(const Mapping& mapping);

  // Lookup()
  //
  // The name and kind of the code at `address`; see the file comment for
  // the rules. Never fails: what cannot be named is "file+0xOFFSET",
  // "[kernel]" or "[unknown]". Cached.
  Symbol Lookup(uint64_t address);

  // LookupAll()
  //
  // Lookup() of each address, for a batch such as what one drain of a
  // profile found new. When any of them lies in no known mapping (and
  // refresh_on_miss), maps are re-read once first, however recent the last
  // re-read: a caller that keeps the names it gets (a profile does) would
  // otherwise keep "[unknown]" for code loaded just after that re-read.
  // For ForSelf(), a long batch also calls RefreshIfLibrariesChanged()
  // every 5 ms.
  std::vector<Symbol> LookupAll(absl::Span<const uint64_t> addresses);

  // RefreshIfLibrariesChanged()
  //
  // For ForSelf() only: re-reads maps when the dynamic linker has loaded or
  // unloaded an object since the last read, told by one dl_iterate_phdr()
  // call (glibc's dlpi_adds and dlpi_subs counters; it holds the loader's
  // lock for that call). Called often (the profiler's collector does it
  // every tick), it learns a library that is dlopen()ed and dlclose()d
  // between two symbolizations, and Refresh() keeps its retired mapping,
  // so its samples are still named afterwards. Returns whether maps were
  // re-read; false for another process.
  bool RefreshIfLibrariesChanged();

  // CfaRuleAt()
  //
  // The call frame rule (eh_frame.h) in force at code address `address` of
  // the process, from the .eh_frame of the file mapped there (parsed once
  // per file, on first use); nullopt for kernel, anonymous or unknown
  // memory and for code no FDE covers. For an interrupted pc; ask at
  // address - 1 for a return address. Not cached per address.
  std::optional<CfaRule> CfaRuleAt(uint64_t address);

  // ForEachCallFrameInfo()
  //
  // Calls fn(mapping, cfi, bias) for each executable mapping of a file (or
  // the [vdso]) that has .eh_frame: the file's virtual address A is at
  // A + bias in the process, within [mapping.start, mapping.end). Parses
  // each file once. For building unwind tables (symbol/cfi_table_builder.h).
  // `want`, when given, picks the mappings (the others' files are not even
  // opened).
  void ForEachCallFrameInfo(
      const std::function<void(const Mapping& mapping, const CallFrameInfo& cfi, int64_t bias)>&
          fn,
      const std::function<bool(const Mapping& mapping)>& want = nullptr);

  // FindMapping()
  //
  // The mapping holding `address` as last read (no re-read on a miss), or
  // nullptr. Valid until the next Refresh() or AddMapping().
  const Mapping* FindMapping(uint64_t address) const;

  // InExecutableMapping()
  //
  // Whether `address` lies in an executable mapping of the process as last
  // read (no re-read on a miss).
  bool InExecutableMapping(uint64_t address) const {
    const Mapping* m = FindMapping(address);
    return m != nullptr && m->executable;
  }

  // The process (getpid() for ForSelf).
  pid_t pid() const { return pid_; }
  // The current mappings, sorted by start address.
  const std::vector<Mapping>& mappings() const { return mappings_; }
  // Problems met so far, one line each ("/usr/lib/libfoo.so: permission
  // denied ..."), for a diagnostics summary. Lookups in such files still
  // return "file+0xOFFSET".
  std::vector<std::string> Warnings() const;

  // Counters for tests and benchmarks.
  size_t files_parsed() const { return files_parsed_; }
  size_t cached_addresses() const { return address_cache_.size(); }

  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

 private:
  struct LoadedFile {
    std::unique_ptr<ElfFile> elf;    // segments (and symbols)
    std::unique_ptr<ElfFile> debug;  // separate debug file, if found
    SymbolTable table;
    absl::Status status;             // why elf is missing
    // Its .eh_frame index, made on the first CfaRuleAt() (null if none).
    std::unique_ptr<CallFrameInfo> cfi;
    bool cfi_opened = false;
  };

  Symbolizer(pid_t pid, bool self, const SymbolizerOptions& options)
      : pid_(pid), self_(self), options_(options) {}
  absl::Status Init();
  std::string ProcPath(absl::string_view rest) const;
  LoadedFile* GetFile(const Mapping& m);
  // The file's .eh_frame index, opened on first use; nullptr if none.
  const CallFrameInfo* CallFrameInfoOf(LoadedFile* file);
  std::unique_ptr<LoadedFile> LoadFile(const Mapping& m);
  absl::StatusOr<std::unique_ptr<ElfFile>> OpenMappedFile(const Mapping& m);
  absl::StatusOr<std::unique_ptr<ElfFile>> ReadVdso(const Mapping& m);
  // FindMapping(), re-reading maps first on a miss (refresh_on_miss, at
  // most every refresh_interval): code dlopen()ed since the last read.
  const Mapping* FindMappingOrRefresh(uint64_t address);
  bool InNoMapping(uint64_t address) const {
    return !IsKernelAddress(address) && FindMapping(address) == nullptr;
  }
  bool IsMainExecutable(const Mapping& m) const;
  // Sets *cacheable to false for answers that may change without a
  // Refresh() (misses in anonymous memory, where a JIT may add code).
  Symbol LookupUncached(uint64_t address, bool* cacheable);
  Symbol LookupKernel(uint64_t address);
  const std::string& DemangledName(absl::string_view name);
  void MaybeLoadPerfMap();

  pid_t pid_;
  bool self_;
  SymbolizerOptions options_;
  std::vector<Mapping> mappings_;
  // The main executable, identified by inode (and path as a fallback).
  uint64_t exe_inode_ = 0;
  dev_t exe_dev_ = 0;
  std::string exe_path_;
  absl::flat_hash_map<std::string, std::unique_ptr<LoadedFile>> files_;
  absl::flat_hash_map<uint64_t, Symbol> address_cache_;
  absl::flat_hash_map<std::string, std::string> demangled_;
  bool kallsyms_loaded_ = false;
  // Shared with every other Symbolizer of the process (Kallsyms::Shared()):
  // the table is ~5 MB, and a Symbolizer made within a minute of another
  // (another Profiler, a new attach session, a target that exec'd) reuses
  // it instead of reading /proc/kallsyms again.
  std::shared_ptr<const Kallsyms> kallsyms_;
  std::string kallsyms_warning_;
  bool perf_map_loaded_ = false;
  absl::Time perf_map_load_time_ = absl::InfinitePast();
  std::unique_ptr<PerfMap> perf_map_;
  std::string perf_map_warning_;
  absl::Time last_refresh_ = absl::InfinitePast();
  // dlpi_adds + dlpi_subs when maps were last read (ForSelf only).
  uint64_t loader_changes_ = 0;
  size_t files_parsed_ = 0;
};

// Implementation details follow.

namespace symbol_internal {

inline absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// The innermost pid of `pid` in its own pid namespace (NSpid's last field
// of /proc/PID/status), which a containerised JIT uses to name its perf
// map; `pid` itself when unknown.
inline pid_t NamespacePid(pid_t pid) {
  absl::StatusOr<std::string> status = ReadSmallFile(absl::StrCat("/proc/", pid, "/status"), 1 << 16);
  if (!status.ok()) return pid;
  size_t pos = status->find("\nNSpid:");
  if (pos == std::string::npos) return pid;
  absl::string_view rest = absl::string_view(*status).substr(pos + 7);
  rest = rest.substr(0, rest.find('\n'));
  pid_t last = pid;
  for (;;) {
    absl::string_view f = NextField(&rest);
    if (f.empty()) break;
    int v = 0;
    if (absl::SimpleAtoi(f, &v)) last = v;
  }
  return last;
}

}  // namespace symbol_internal

inline absl::StatusOr<std::unique_ptr<Symbolizer>> Symbolizer::ForSelf(
    const SymbolizerOptions& options) {
  std::unique_ptr<Symbolizer> s(new Symbolizer(::getpid(), /*self=*/true, options));
  FLAMEKIT_RETURN_IF_ERROR(s->Init());
  return s;
}

inline absl::StatusOr<std::unique_ptr<Symbolizer>> Symbolizer::ForProcess(
    pid_t pid, const SymbolizerOptions& options) {
  if (pid <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid pid ", pid, "; pass the positive id of a running process"));
  }
  std::unique_ptr<Symbolizer> s(new Symbolizer(pid, /*self=*/pid == ::getpid(), options));
  FLAMEKIT_RETURN_IF_ERROR(s->Init());
  return s;
}

inline std::string Symbolizer::ProcPath(absl::string_view rest) const {
  if (self_) return absl::StrCat("/proc/self/", rest);
  return absl::StrCat("/proc/", pid_, "/", rest);
}

inline const std::string& Symbolizer::DemangledName(absl::string_view name) {
  auto it = demangled_.find(name);
  if (it != demangled_.end()) return it->second;
  std::string out = options_.demangle ? Demangle(name) : std::string(name);
  return demangled_.emplace(std::string(name), std::move(out)).first->second;
}

inline Symbolizer::Symbol Symbolizer::LookupKernel(uint64_t address) {
  if (!kallsyms_loaded_) {
    kallsyms_loaded_ = true;
    if (!options_.kallsyms_path.empty()) {
      absl::StatusOr<std::shared_ptr<const Kallsyms>> k = Kallsyms::Shared(options_.kallsyms_path);
      if (k.ok()) {
        kallsyms_ = *std::move(k);
        if (kallsyms_->restricted()) {
          kallsyms_warning_ = absl::StrCat(
              options_.kallsyms_path,
              ": kernel addresses are hidden; kernel frames show as [kernel]: to name them, "
              "set /proc/sys/kernel/kptr_restrict to 0 and either run with CAP_SYSLOG or set "
              "/proc/sys/kernel/perf_event_paranoid to 1 or lower");
        }
      } else {
        kallsyms_warning_ = std::string(k.status().message());
      }
    }
  }
  if (kallsyms_ != nullptr) {
    if (std::optional<KernelSymbol> s = kallsyms_->Find(address)) {
      return Symbol{std::string(s->name), FrameKind::kKernel};
    }
  }
  return Symbol{"[kernel]", FrameKind::kKernel};
}

inline void Symbolizer::MaybeLoadPerfMap() {
  // A JIT appends as it compiles: re-read a map at most every
  // refresh_interval.
  if (perf_map_loaded_ && absl::Now() - perf_map_load_time_ < options_.refresh_interval) return;
  perf_map_loaded_ = true;
  perf_map_load_time_ = absl::Now();
  if (options_.perf_map_dir.empty()) return;
  // Like perf, trust a map only if the process's user, we or root own it:
  // anyone can create /tmp/perf-PID.map for someone else's PID.
  struct stat proc_st;
  uid_t target_uid = ::stat(ProcPath("").c_str(), &proc_st) == 0 ? proc_st.st_uid : ::geteuid();
  auto load = [&](const std::string& path) -> absl::StatusOr<PerfMap> {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return symbol_internal::FileErrorStatus(errno, "cannot open perf map", path);
    }
    if (st.st_uid != 0 && st.st_uid != ::geteuid() && st.st_uid != target_uid) {
      return absl::PermissionDeniedError(absl::StrCat(
          path, ": ignored, owned by uid ", st.st_uid, " which is neither the process's (",
          target_uid, "), ours nor root's; remove it if it is not the runtime's"));
    }
    return PerfMap::Load(path);
  };
  absl::StatusOr<PerfMap> map = load(absl::StrCat(options_.perf_map_dir, "/perf-", pid_, ".map"));
  if (!map.ok() && absl::IsNotFound(map.status()) && !self_) {
    // A containerised runtime writes it in its own /tmp under its own pid.
    pid_t ns_pid = symbol_internal::NamespacePid(pid_);
    map = load(ProcPath(absl::StrCat("root", options_.perf_map_dir, "/perf-", ns_pid, ".map")));
  }
  if (map.ok()) {
    perf_map_ = std::make_unique<PerfMap>(*std::move(map));
    perf_map_warning_.clear();
  } else if (!absl::IsNotFound(map.status())) {
    perf_map_warning_ = std::string(map.status().message());
  }
}

inline Symbolizer::Symbol Symbolizer::LookupUncached(uint64_t address, bool* cacheable) {
  if (IsKernelAddress(address)) return LookupKernel(address);
  const Mapping* m = FindMappingOrRefresh(address);
  if (m != nullptr && (m->IsFile() || m->IsVdso())) {
    LoadedFile* file = GetFile(*m);
    uint64_t file_offset = address - m->start + m->file_offset;
    if (file->elf != nullptr) {
      std::optional<uint64_t> vaddr = file->elf->FileOffsetToVaddr(file_offset);
      if (vaddr) {
        if (const ElfSymbol* s = file->table.Find(*vaddr)) {
          FrameKind kind = IsMainExecutable(*m) ? FrameKind::kUser : FrameKind::kLibrary;
          return Symbol{DemangledName(s->name), kind};
        }
      }
    }
    absl::string_view base = m->IsVdso() ? absl::string_view("[vdso]") : symbol_internal::Basename(m->path);
    return Symbol{absl::StrCat(base, "+0x", absl::Hex(file_offset)), FrameKind::kUnknown};
  }
  // Anonymous memory or no mapping at all: maybe JIT code.
  MaybeLoadPerfMap();
  if (perf_map_ != nullptr) {
    if (const ElfSymbol* s = perf_map_->Find(address)) {
      return Symbol{DemangledName(s->name), FrameKind::kJit};
    }
  }
  *cacheable = false;  // the JIT may name it later
  if (m != nullptr && m->IsPseudo()) return Symbol{m->path, FrameKind::kUnknown};
  return Symbol{"[unknown]", FrameKind::kUnknown};
}

inline std::optional<CfaRule> Symbolizer::CfaRuleAt(uint64_t address) {
  if (IsKernelAddress(address)) return std::nullopt;
  const Mapping* m = FindMappingOrRefresh(address);
  if (m == nullptr || !(m->IsFile() || m->IsVdso())) return std::nullopt;
  LoadedFile* file = GetFile(*m);
  const CallFrameInfo* cfi = CallFrameInfoOf(file);
  if (cfi == nullptr) return std::nullopt;
  std::optional<uint64_t> vaddr = file->elf->FileOffsetToVaddr(address - m->start + m->file_offset);
  if (!vaddr) return std::nullopt;
  return cfi->RuleAt(*vaddr);
}

inline const CallFrameInfo* Symbolizer::CallFrameInfoOf(LoadedFile* file) {
  if (file->elf == nullptr) return nullptr;
  if (!file->cfi_opened) {
    file->cfi_opened = true;
    absl::StatusOr<std::unique_ptr<CallFrameInfo>> cfi = CallFrameInfo::Open(*file->elf);
    if (cfi.ok()) file->cfi = *std::move(cfi);
  }
  return file->cfi.get();
}

inline void Symbolizer::ForEachCallFrameInfo(
    const std::function<void(const Mapping& mapping, const CallFrameInfo& cfi, int64_t bias)>&
        fn,
    const std::function<bool(const Mapping& mapping)>& want) {
  const std::vector<Mapping> mappings = mappings_;  // GetFile() may Refresh()
  for (const Mapping& m : mappings) {
    if (!m.executable || !(m.IsFile() || m.IsVdso())) continue;
    if (want && !want(m)) continue;
    LoadedFile* file = GetFile(m);
    const CallFrameInfo* cfi = CallFrameInfoOf(file);
    if (cfi == nullptr) continue;
    std::optional<uint64_t> vaddr = file->elf->FileOffsetToVaddr(m.file_offset);
    if (!vaddr) continue;
    fn(m, *cfi, static_cast<int64_t>(m.start - *vaddr));
  }
}

inline Symbolizer::Symbol Symbolizer::Lookup(uint64_t address) {
  auto it = address_cache_.find(address);
  if (it != address_cache_.end()) return it->second;
  bool cacheable = true;
  Symbol s = LookupUncached(address, &cacheable);
  if (!cacheable) return s;
  if (address_cache_.size() >= options_.max_cached_addresses) address_cache_.clear();
  address_cache_.emplace(address, s);
  return s;
}

inline std::vector<Symbolizer::Symbol> Symbolizer::LookupAll(absl::Span<const uint64_t> addresses) {
  if (options_.refresh_on_miss &&
      std::any_of(addresses.begin(), addresses.end(),
                  [this](uint64_t a) { return InNoMapping(a); })) {
    (void)Refresh();  // on failure the old mappings answer
  }
  std::vector<Symbol> out;
  out.reserve(addresses.size());
  // A batch that parses large files can take long (seconds under a
  // sanitizer): a library loaded and unloaded meanwhile must still be seen
  // mapped by someone, so the cheap check runs every few milliseconds.
  absl::Time next_check = absl::Now() + absl::Milliseconds(5);
  for (uint64_t address : addresses) {
    out.push_back(Lookup(address));
    if (self_ && absl::Now() >= next_check) {
      RefreshIfLibrariesChanged();
      next_check = absl::Now() + absl::Milliseconds(5);
    }
  }
  return out;
}

}  // namespace flamekit

// Reading the process's mappings and opening their files: its own file.
#include "flamekit/symbol/symbolizer_mappings.h"  // IWYU pragma: keep

#endif  // FLAMEKIT_SYMBOL_SYMBOLIZER_H_
