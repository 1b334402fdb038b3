// SPDX-License-Identifier: Apache-2.0
// File: kallsyms.h
//
// Kallsyms reads the kernel's symbol table, /proc/kallsyms ("ADDR TYPE NAME
// [MODULE]" per line), to name kernel addresses from perf callchains.
// Thread-safety: not for signal handlers (allocates, reads files). A
// Kallsyms is immutable once built: its const methods may be called from
// many threads at once. Kallsyms::Shared() may be called from any thread.
//
// The kernel shows real addresses only when kptr_restrict is 0 and the
// reader has CAP_SYSLOG or perf_event_paranoid is 1 or lower (kptr_restrict
// 1: CAP_SYSLOG needed; 2: never). Otherwise every address reads as zero:
// Load() still succeeds but restricted() is true and Find() finds nothing,
// so callers show such frames as "[kernel]".
//
// Kernel symbols have no sizes; a text symbol is taken to end where the next
// symbol of any kind (text or data) starts, which in the kernel's complete
// table is where the function ends. The last symbol of the table has no
// known end and matches only its own address. Of several text symbols at
// one address (aliases such as _stext/_text) the smallest name is kept.
//
// Memory: the table is ~120k symbols and ~5 MB of text on a distribution
// kernel, and the profiler's cpu engine needs it in the profiled process.
// So the file is read 64 KB at a time (never whole), each kept symbol costs
// 16 bytes plus its name's bytes in a block arena (no per-name allocation,
// no string_view or size per symbol; data symbols keep no name), and
// Shared() lets every user in the process share one table.
//
// Example:
//
//   absl::StatusOr<std::shared_ptr<const flamekit::Kallsyms>> k =
//       flamekit::Kallsyms::Shared();
//   if (k.ok() && !(*k)->restricted()) {
//     if (std::optional<flamekit::KernelSymbol> s = (*k)->Find(pc)) name = s->name;
//   }

#ifndef FLAMEKIT_SYMBOL_KALLSYMS_H_
#define FLAMEKIT_SYMBOL_KALLSYMS_H_

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/config.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/symbol/proc_maps.h"

namespace flamekit {

// IsKernelAddress()
//
// True for an address in the upper (kernel) half of the x86-64 / arm64
// address space.
inline bool IsKernelAddress(uint64_t address) { return (address >> 63) != 0; }

namespace kallsyms_internal {
class Builder;
}  // namespace kallsyms_internal

// KernelSymbol
//
// A text symbol found by Kallsyms::Find(). `name` points into the Kallsyms
// table and is valid as long as the table is.
struct KernelSymbol {
  uint64_t address = 0;
  // Up to the next symbol's address; 0 for the table's last symbol, whose
  // end is unknown.
  uint64_t size = 0;
  absl::string_view name;
};

class Kallsyms {
 public:
  Kallsyms() = default;
  Kallsyms(Kallsyms&&) = default;
  Kallsyms& operator=(Kallsyms&&) = default;
  // Copying would duplicate megabytes by accident; share a Shared() pointer.
  Kallsyms(const Kallsyms&) = delete;
  Kallsyms& operator=(const Kallsyms&) = delete;

  // Shared()
  //
  // The table of `path`, shared by every caller in the process: a table
  // loaded by an earlier call is returned again (no re-read, no second copy
  // in memory) while it is younger than `max_age`, unless it was restricted
  // (settings may have changed since; re-reading a hidden table is cheap in
  // memory) or the file's identity (device, inode, size, mtime) changed.
  // One table is kept: a call with another path replaces it. Modules loaded
  // after a table was read are missing from it until it is reloaded, hence
  // the age limit. Errors are not remembered; the next call tries again.
  //
  // The lock is held only to copy the cached pointer, never while reading
  // the file: a fork() while another thread loads does not leave the
  // child's copy of the lock held for the whole load (the embedded
  // profiler's calls also run under its symbol lock, which its fork
  // handler takes). The price: two threads that find the table stale at
  // the same moment both load it; the later one is kept.
  static absl::StatusOr<std::shared_ptr<const Kallsyms>> Shared(
      absl::string_view path = "/proc/kallsyms",
      absl::Duration max_age = absl::Seconds(FLAMEKIT_KALLSYMS_SHARED_MAX_AGE_SECONDS));

  // Load()
  //
  // Reads `path` (default /proc/kallsyms) into a new table of its own; most
  // callers want Shared() instead. Errors name the path (and line number
  // for a malformed line).
  static absl::StatusOr<Kallsyms> Load(absl::string_view path = "/proc/kallsyms");

  // Parse()
  //
  // Parses kallsyms text; a malformed line is an InvalidArgument error
  // naming `source` and the line number.
  static absl::StatusOr<Kallsyms> Parse(absl::string_view text,
                                        absl::string_view source = "kallsyms");

  // restricted()
  //
  // True when every address was zero: the kernel hides them (see the file
  // comment for the settings that reveal them).
  bool restricted() const { return restricted_; }

  // Find()
  //
  // The text symbol containing `address`, or nullopt.
  std::optional<KernelSymbol> Find(uint64_t address) const;

  // size()
  //
  // The number of distinct text symbols (aliases at one address count once).
  size_t size() const { return text_symbols_; }

 private:
  friend class kallsyms_internal::Builder;

  // One entry per distinct address, sorted: a text symbol (name_size > 0)
  // or the start of non-text (name_size == 0), which ends the text symbol
  // before it. 16 bytes: 120k of them are ~1.9 MB.
  struct Entry {
    uint64_t address;
    uint32_t name_ref;   // block index << kBlockBits | offset in the block
    uint32_t name_size;  // 0: no text symbol starts here
  };
  static_assert(sizeof(Entry) == 16, "Entry is the per-symbol cost; keep it 16 bytes");

  // Names live in fixed 64 KB blocks rather than one growing string: a
  // growing string is copied on every doubling (a 3 MB arena means a 2 MB
  // and a 4 MB buffer alive at once) and keeps up to half its capacity
  // unused. A name never straddles two blocks, which wastes at most one
  // name's bytes per block.
  static constexpr int kBlockBits = 16;
  static constexpr size_t kBlockSize = size_t{1} << kBlockBits;

  absl::string_view NameOf(const Entry& e) const {
    return absl::string_view(blocks_[e.name_ref >> kBlockBits].get() +
                                 (e.name_ref & (kBlockSize - 1)),
                             e.name_size);
  }

  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<char[]>> blocks_;
  size_t text_symbols_ = 0;
  bool restricted_ = false;
};

// Implementation details follow.

namespace kallsyms_internal {

// Builds a Kallsyms one line at a time, so that Load() can feed it from a
// 64 KB read buffer and Parse() from a string, with the same checks.
class Builder {
 public:
  explicit Builder(absl::string_view source) : source_(source) {}

  absl::Status AddLine(absl::string_view line) {
    ++line_no_;
    if (line.empty()) return absl::OkStatus();
    absl::string_view fields = line;
    absl::string_view addr_text = symbol_internal::NextField(&fields);
    absl::string_view type = symbol_internal::NextField(&fields);
    absl::string_view name = symbol_internal::NextField(&fields);  // "[module]" follows
    uint64_t address = 0;
    if (!symbol_internal::ParseHex64(addr_text, &address) || type.size() != 1 || name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ":", line_no_, ": expected 'ADDRESS TYPE NAME [MODULE]', got \"",
                       absl::CHexEscape(line.substr(0, 200)), "\""));
    }
    if (address == 0) return absl::OkStatus();  // hidden, or not a real address
    any_nonzero_ = true;
    char t = type[0];
    if (t == 't' || t == 'T' || t == 'w' || t == 'W') {
      if (name.size() > Kallsyms::kBlockSize) {
        // A name must fit in one block; the kernel caps them at
        // KSYM_NAME_LEN (512 bytes since Linux 6.1).
        return absl::InvalidArgumentError(absl::StrCat(source_, ":", line_no_, ": symbol name of ",
                                                       name.size(), " bytes; at most ",
                                                       Kallsyms::kBlockSize, " are accepted"));
      }
      absl::StatusOr<uint32_t> ref = StoreName(name);
      if (!ref.ok()) return ref.status();
      k_.entries_.push_back(Kallsyms::Entry{address, *ref, static_cast<uint32_t>(name.size())});
    } else {
      // Only the address matters: it ends the text symbol before it.
      k_.entries_.push_back(Kallsyms::Entry{address, 0, 0});
    }
    return absl::OkStatus();
  }

  Kallsyms Finish() && {
    using Entry = Kallsyms::Entry;
    if (!any_nonzero_) {
      // Every address hidden (zero lines were skipped): nothing to find.
      Kallsyms restricted;
      restricted.restricted_ = true;
      return restricted;
    }
    std::vector<Entry>& e = k_.entries_;
    // By address; at one address text first, and among text the smallest
    // name (as SymbolTable chose among aliases), so the pick does not depend
    // on the file's order. /proc/kallsyms is sorted already (module symbols
    // follow the core ones), so this is one cheap pass there.
    auto less = [this](const Entry& a, const Entry& b) {
      if (a.address != b.address) return a.address < b.address;
      if ((a.name_size != 0) != (b.name_size != 0)) return a.name_size != 0;
      if (a.name_size == 0) return false;  // two non-text entries: no name to compare
      return k_.NameOf(a) < k_.NameOf(b);
    };
    if (!std::is_sorted(e.begin(), e.end(), less)) std::sort(e.begin(), e.end(), less);
    // Keep the first entry of each address, and a non-text entry only right
    // after a text one (where it ends that symbol): the next kept entry's
    // address is then always where a kept text symbol ends.
    size_t out = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      if (out > 0 && e[out - 1].address == e[i].address) continue;
      if (e[i].name_size == 0 && (out == 0 || e[out - 1].name_size == 0)) continue;
      e[out++] = e[i];
    }
    e.resize(out);
    // Doubling left up to half the capacity unused; shrinking copies the
    // array once, so do it only when that frees a worthwhile amount.
    if (e.capacity() - e.size() > e.size() / 8) e.shrink_to_fit();
    k_.text_symbols_ = static_cast<size_t>(
        std::count_if(e.begin(), e.end(), [](const Entry& x) { return x.name_size != 0; }));
    // Names of aliases that were dropped stay in the arena: a few hundred
    // bytes on a real kernel, not worth a second copy of the arena.
    return std::move(k_);
  }

 private:
  absl::StatusOr<uint32_t> StoreName(absl::string_view name) {
    if (k_.blocks_.empty() || Kallsyms::kBlockSize - used_ < name.size()) {
      // Offsets are 32 bits: block << 16 | offset, so at most 65536 blocks
      // (4 GB of names, ~1000 times a real table).
      if (k_.blocks_.size() >= (size_t{1} << (32 - Kallsyms::kBlockBits))) {
        return absl::ResourceExhaustedError(
            absl::StrCat(source_, ":", line_no_, ": more than 4 GB of symbol names"));
      }
      k_.blocks_.push_back(std::make_unique<char[]>(Kallsyms::kBlockSize));
      used_ = 0;
    }
    uint32_t ref = static_cast<uint32_t>(((k_.blocks_.size() - 1) << Kallsyms::kBlockBits) | used_);
    memcpy(k_.blocks_.back().get() + used_, name.data(), name.size());
    used_ += name.size();
    return ref;
  }

  absl::string_view source_;
  size_t line_no_ = 0;
  bool any_nonzero_ = false;
  size_t used_ = 0;  // bytes used in the last block
  Kallsyms k_;
};

// What Shared() compares to notice a replaced file.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns;
  }
};

inline FileIdentity IdentityOf(const struct stat& st) {
  return FileIdentity{st.st_dev, st.st_ino, st.st_size,
                      int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

struct SharedSlot {
  std::mutex mu;
  std::string path;
  FileIdentity identity;
  absl::Time loaded_at;
  std::shared_ptr<const Kallsyms> table;
};

inline SharedSlot& GlobalSharedSlot() {
  // Leaked: a table handed out must outlive static destruction, and
  // threads may still call Shared() while the process exits.
  static SharedSlot* slot = new SharedSlot;
  return *slot;
}

// Load(), returning also the identity of the file it read.
inline absl::StatusOr<Kallsyms> LoadFile(absl::string_view path, FileIdentity* identity) {
  struct stat st;
  absl::StatusOr<ScopedFd> opened = symbol_internal::OpenRegularFile(path, &st);
  if (!opened.ok()) return opened.status();
  ScopedFd fd = *std::move(opened);
  if (identity != nullptr) *identity = IdentityOf(st);
  Builder builder(path);
  // 64 KB at a time, never the whole file (~5 MB in one string, more while
  // it grows). /proc/kallsyms returns about a page (whole lines) per read()
  // whatever is asked; other files fill the buffer and may cut a line.
  // Heap, not stack: the caller may be a thread with a small stack.
  constexpr size_t kReadSize = 64 * 1024;
  std::unique_ptr<char[]> buf(new char[kReadSize]);
  std::string partial;  // a line cut by the end of the previous read
  while (true) {
    ssize_t n = ::read(fd.get(), buf.get(), kReadSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      return symbol_internal::FileErrorStatus(errno, "cannot read", path);
    }
    if (n == 0) break;
    absl::string_view chunk(buf.get(), static_cast<size_t>(n));
    if (!partial.empty()) {
      size_t nl = chunk.find('\n');
      if (nl == absl::string_view::npos) {
        partial.append(chunk.data(), chunk.size());
        continue;
      }
      partial.append(chunk.data(), nl);
      chunk.remove_prefix(nl + 1);
      absl::Status s = builder.AddLine(partial);
      if (!s.ok()) return s;
      partial.clear();
    }
    for (size_t nl; (nl = chunk.find('\n')) != absl::string_view::npos;) {
      absl::Status s = builder.AddLine(chunk.substr(0, nl));
      if (!s.ok()) return s;
      chunk.remove_prefix(nl + 1);
    }
    partial.assign(chunk.data(), chunk.size());
  }
  if (!partial.empty()) {
    absl::Status s = builder.AddLine(partial);
    if (!s.ok()) return s;
  }
  return std::move(builder).Finish();
}

}  // namespace kallsyms_internal

inline absl::StatusOr<Kallsyms> Kallsyms::Load(absl::string_view path) {
  return kallsyms_internal::LoadFile(path, nullptr);
}

inline absl::StatusOr<Kallsyms> Kallsyms::Parse(absl::string_view text, absl::string_view source) {
  kallsyms_internal::Builder builder(source);
  while (!text.empty()) {
    size_t nl = text.find('\n');
    absl::Status s = builder.AddLine(text.substr(0, nl));
    if (!s.ok()) return s;
    text.remove_prefix(nl == absl::string_view::npos ? text.size() : nl + 1);
  }
  return std::move(builder).Finish();
}

inline absl::StatusOr<std::shared_ptr<const Kallsyms>> Kallsyms::Shared(absl::string_view path,
                                                                        absl::Duration max_age) {
  kallsyms_internal::SharedSlot& slot = kallsyms_internal::GlobalSharedSlot();
  struct stat st;
  // A stat() failure just means no reuse; LoadFile() reports the error.
  const bool have_identity = ::stat(std::string(path).c_str(), &st) == 0;
  {
    std::lock_guard<std::mutex> lock(slot.mu);
    if (slot.table != nullptr && have_identity && slot.path == path &&
        slot.identity == kallsyms_internal::IdentityOf(st) &&
        absl::Now() - slot.loaded_at < max_age) {
      return slot.table;
    }
  }
  kallsyms_internal::FileIdentity identity;
  absl::Time loaded_at = absl::Now();
  absl::StatusOr<Kallsyms> loaded = kallsyms_internal::LoadFile(path, &identity);
  if (!loaded.ok()) return loaded.status();
  auto table = std::make_shared<const Kallsyms>(*std::move(loaded));
  if (!table->restricted()) {
    std::shared_ptr<const Kallsyms> replaced;  // freed after unlocking
    std::lock_guard<std::mutex> lock(slot.mu);
    slot.path = std::string(path);
    slot.identity = identity;
    slot.loaded_at = loaded_at;
    replaced = std::exchange(slot.table, table);
  }
  return table;
}

inline std::optional<KernelSymbol> Kallsyms::Find(uint64_t address) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), address,
                             [](uint64_t a, const Entry& e) { return a < e.address; });
  if (it == entries_.begin()) return std::nullopt;
  const Entry& e = *(it - 1);
  if (e.name_size == 0) return std::nullopt;
  // Entries have distinct addresses, so the next one is where this ends.
  uint64_t size = it != entries_.end() ? it->address - e.address : 0;
  if (address - e.address >= std::max<uint64_t>(size, 1)) return std::nullopt;
  return KernelSymbol{e.address, size, NameOf(e)};
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_KALLSYMS_H_
