// SPDX-License-Identifier: Apache-2.0
// File: target_symbols.h
//
// SymbolizerAttachSymbols adapts flamekit::Symbolizer (symbol/symbolizer.h)
// to the AttachSymbols interface of attach.h: addresses of another process
// named from /proc/PID/maps and its ELF files (through /proc/PID/root, so
// containers resolve), mappings reported by PERF_RECORD_MMAP2 added as they
// arrive, and the maps re-read after the target execs (launch mode); and,
// for --unwind dwarf/auto, the .eh_frame rules of the files the walks reach
// as one CfiTable (collect/cfi_table_builder.h) that grows file by file
// (CfiTable::Merge(): a new file costs its own rows, not a rebuild).
// Building the rules of every mapped file at the start was half of a redis
// capture's CPU, most of it for libcrypto and libssl, which no sample
// passes through.
//
// Thread-safety: like Symbolizer, one thread at a time (the AttachSession's).
// Not for signal handlers.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::unique_ptr<AttachSymbols> symbols,
//                             SymbolizerAttachSymbols::ForProcess(pid));
//   AttachSession::Create(options, std::move(symbols));

#ifndef FLAMEKIT_ATTACH_TARGET_SYMBOLS_H_
#define FLAMEKIT_ATTACH_TARGET_SYMBOLS_H_

#include <sys/mman.h>
#include <sys/types.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "flamekit/attach/attach.h"
#include "flamekit/collect/cfi_table_builder.h"
#include "flamekit/perf/perf_record.h"
#include "flamekit/symbol/proc_maps.h"
#include "flamekit/symbol/symbolizer.h"

namespace flamekit {

class SymbolizerAttachSymbols : public AttachSymbols {
 public:
  // ForProcess()
  //
  // Reads /proc/PID/maps now. NotFound when there is no such process;
  // PermissionDenied when its maps are hidden from us.
  static absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> ForProcess(
      pid_t pid, const SymbolizerOptions& options = SymbolizerOptions());

  Name Lookup(uint64_t address, bool kernel) override;
  void OnMmap(const PerfMmapRecord& record) override;
  void OnExec() override;
  void Warm(bool kernel_frames) override;
  std::optional<uint32_t> FramelessReturnSlot(uint64_t pc) override;
  bool IsCode(uint64_t address) override;
  void ForgetFrameRules() override {
    frames_.reset();
    rules_.reset();
    covered_.clear();
    wanted_.clear();
  }
  const CfiTable* FrameRules() override;
  void NoteFrameMmap(const PerfMmapRecord& record) override;
  bool WantFrameRulesAt(uint64_t pc) override;

  // MappingFromPerf()
  //
  // The Mapping a PERF_RECORD_MMAP/MMAP2 record describes.
  static Mapping MappingFromPerf(const PerfMmapRecord& record);

  Symbolizer& symbolizer() { return *symbolizer_; }
  std::vector<std::string> Warnings() const { return symbolizer_->Warnings(); }

 private:
  SymbolizerAttachSymbols(pid_t pid, const SymbolizerOptions& options,
                          std::unique_ptr<Symbolizer> s)
      : pid_(pid), options_(options), symbolizer_(std::move(s)) {}
  // The Symbolizer for FramelessReturnSlot() and IsCode(), which the
  // session calls from its own thread while symbolizer_ serves the symbol
  // worker: a second one, made on first use, that parses call frame
  // information and no symbols.
  Symbolizer* Frames();
  // The first range of covered_ that starts after `address`.
  std::vector<std::pair<uint64_t, uint64_t>>::iterator CoveredRangeAfter(uint64_t address);

  pid_t pid_;
  SymbolizerOptions options_;
  std::unique_ptr<Symbolizer> symbolizer_;
  std::unique_ptr<Symbolizer> frames_;
  bool frames_failed_ = false;
  // The rules of the files walks reached, for --unwind dwarf/auto.
  std::unique_ptr<CfiTable> rules_;
  // The mappings [start, end) walks asked about, sorted by start: files
  // whose rules are in rules_ (or that had none), and mappings that can
  // have none (anonymous, not executable), so that each is looked up once;
  // and the files asked for since the last FrameRules().
  std::vector<std::pair<uint64_t, uint64_t>> covered_;
  std::vector<Mapping> wanted_;
};

// Implementation details follow.

inline absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>>
SymbolizerAttachSymbols::ForProcess(pid_t pid, const SymbolizerOptions& options) {
  absl::StatusOr<std::unique_ptr<Symbolizer>> s = Symbolizer::ForProcess(pid, options);
  if (!s.ok()) return s.status();
  return std::unique_ptr<SymbolizerAttachSymbols>(
      new SymbolizerAttachSymbols(pid, options, std::move(*s)));
}

inline AttachSymbols::Name SymbolizerAttachSymbols::Lookup(uint64_t address, bool kernel) {
  (void)kernel;  // the symbolizer tells kernel addresses by their range
  Symbolizer::Symbol s = symbolizer_->Lookup(address);
  return Name{std::move(s.name), s.kind};
}

inline Mapping SymbolizerAttachSymbols::MappingFromPerf(const PerfMmapRecord& record) {
  Mapping m;
  m.start = record.addr;
  m.end = record.addr + record.len;
  m.file_offset = record.pgoff;
  // PERF_RECORD_MMAP (no prot) is only sent for executable mappings.
  m.executable = !record.is_mmap2 || (record.prot & PROT_EXEC) != 0;
  m.readable = !record.is_mmap2 || (record.prot & PROT_READ) != 0;
  m.writable = (record.prot & PROT_WRITE) != 0;
  m.is_private = (record.flags & MAP_PRIVATE) != 0;
  m.dev_major = record.maj;
  m.dev_minor = record.min;
  m.inode = record.ino;
  m.path = std::string(record.filename);
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(m.path, kDeleted)) {
    m.path.resize(m.path.size() - kDeleted.size());
    m.deleted = true;
  }
  return m;
}

inline void SymbolizerAttachSymbols::OnMmap(const PerfMmapRecord& record) {
  const Mapping m = MappingFromPerf(record);
  symbolizer_->AddMapping(m);
  // Open the file now, while the target lives: a short-lived target (launch
  // mode) may be gone, with its /proc/PID/root, before any of its
  // addresses is looked up. The answer is discarded; the file stays loaded.
  if (m.executable && m.IsFile()) (void)symbolizer_->Lookup(m.start);
}

inline void SymbolizerAttachSymbols::Warm(bool kernel_frames) {
  // The first kernel lookup loads /proc/kallsyms (the largest read); do it
  // before sampling starts. The answer is discarded.
  if (kernel_frames) (void)symbolizer_->Lookup(~uint64_t{0} << 47);
  // Every executable file of the target, opened while it lives (see
  // OnMmap()).
  std::vector<uint64_t> starts;
  for (const Mapping& m : symbolizer_->mappings()) {
    if (m.executable && m.IsFile()) starts.push_back(m.start);
  }
  for (uint64_t start : starts) (void)symbolizer_->Lookup(start);
}

inline Symbolizer* SymbolizerAttachSymbols::Frames() {
  if (frames_ == nullptr && !frames_failed_) {
    SymbolizerOptions options = options_;
    options.function_names = false;
    options.use_debug_files = false;  // debug files carry no .eh_frame
    options.kallsyms_path.clear();
    options.perf_map_dir.clear();
    absl::StatusOr<std::unique_ptr<Symbolizer>> s = Symbolizer::ForProcess(pid_, options);
    if (s.ok()) {
      frames_ = *std::move(s);
    } else {
      frames_failed_ = true;  // the target is gone: nothing more to learn
    }
  }
  return frames_.get();
}

inline std::optional<uint32_t> SymbolizerAttachSymbols::FramelessReturnSlot(uint64_t pc) {
  Symbolizer* frames = Frames();
  if (frames == nullptr) return std::nullopt;
  std::optional<CfaRule> rule = frames->CfaRuleAt(pc);
  return rule ? rule->FramelessReturnSlot() : std::nullopt;
}

inline bool SymbolizerAttachSymbols::IsCode(uint64_t address) {
  Symbolizer* frames = Frames();
  return frames != nullptr && frames->InExecutableMapping(address);
}


inline const CfiTable* SymbolizerAttachSymbols::FrameRules() {
  if (rules_ == nullptr) {
    rules_ = std::make_unique<CfiTable>();
    rules_->Finish();
  }
  if (wanted_.empty() || Frames() == nullptr) return rules_.get();
  // One part for the files asked for since the last call, merged in as a
  // block: the files already covered are not read again.
  std::vector<Mapping> wanted;
  wanted.swap(wanted_);
  std::unique_ptr<CfiTable> part = BuildCfiTable(*frames_, nullptr, [&wanted](const Mapping& m) {
    return std::any_of(wanted.begin(), wanted.end(), [&m](const Mapping& w) {
      return w.start == m.start && w.end == m.end;
    });
  });
  rules_->Merge(*part);
  return rules_.get();
}

inline std::vector<std::pair<uint64_t, uint64_t>>::iterator
SymbolizerAttachSymbols::CoveredRangeAfter(uint64_t address) {
  return std::upper_bound(covered_.begin(), covered_.end(), address,
                          [](uint64_t a, const std::pair<uint64_t, uint64_t>& range) {
                            return a < range.first;
                          });
}

inline bool SymbolizerAttachSymbols::WantFrameRulesAt(uint64_t pc) {
  auto after = CoveredRangeAfter(pc);
  if (after != covered_.begin() && pc < std::prev(after)->second) return false;
  Symbolizer* frames = Frames();
  if (frames == nullptr) return false;
  const Mapping* found = frames->FindMapping(pc);
  if (found == nullptr) return false;
  const Mapping& m = *found;
  // Covered from now on, whether or not the mapping has rules: a file
  // without .eh_frame, or JIT code in an anonymous mapping, is looked up
  // once, not on every frame that passes through it.
  covered_.insert(CoveredRangeAfter(m.start), {m.start, m.end});
  if (!m.executable || !(m.IsFile() || m.IsVdso())) return false;
  wanted_.push_back(m);
  return true;
}

inline void SymbolizerAttachSymbols::NoteFrameMmap(const PerfMmapRecord& record) {
  if (frames_ == nullptr) return;  // made later from /proc/PID/maps, with it
  const Mapping m = MappingFromPerf(record);
  frames_->AddMapping(m);
  // A mapping over a covered range (a library loaded where another was):
  // its rules come in again when a walk reaches it, and replace the old.
  covered_.erase(std::remove_if(covered_.begin(), covered_.end(),
                                [&m](const std::pair<uint64_t, uint64_t>& range) {
                                  return range.first < m.end && m.start < range.second;
                                }),
                 covered_.end());
}

inline void SymbolizerAttachSymbols::OnExec() {
  // A new image: start over, so the main executable is the new one.
  absl::StatusOr<std::unique_ptr<Symbolizer>> fresh = Symbolizer::ForProcess(pid_, options_);
  if (fresh.ok()) {
    symbolizer_ = std::move(*fresh);
  } else {
    (void)symbolizer_->Refresh();
  }
  Warm(/*kernel_frames=*/false);
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_TARGET_SYMBOLS_H_
