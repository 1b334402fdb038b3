// SPDX-License-Identifier: Apache-2.0
// Tests for eh_frame.h. The oracle is binutils' own interpreter of the same
// tables, `readelf --debug-dump=frames-interp`: every row it prints for
// real binaries (this test, Debian's libc and libstdc++, a coreutils
// program) must come out the same from CallFrameInfo, at the row's first
// and last address.

#include "flamekit/symbol/eh_frame.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

// One row of readelf's table: the rule from `loc` up to the next row.
struct ExpectedRow {
  uint64_t loc = 0;
  uint64_t end = 0;  // the next row's loc, or the FDE's end
  std::string cfa;   // "rsp+8", "rbp+16", "exp", ...
  std::string ra;    // "c-8", "u", ...
  std::string rbp;   // "c-16", "u", or "" when the column is absent
};

bool HaveReadelf() { return system("readelf --version >/dev/null 2>&1") == 0; }

// Runs readelf on `path` and returns its rows, FDE by FDE. An FDE with no
// rows of its own gets its CIE's first row.
std::vector<ExpectedRow> ReadelfRows(const std::string& path) {
  std::string command = "readelf --debug-dump=frames-interp '" + path + "' 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[1 << 16];
  size_t n;
  while (pipe != nullptr && (n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  if (pipe != nullptr) pclose(pipe);

  std::vector<ExpectedRow> rows;
  std::map<std::string, ExpectedRow> cie_rows;  // CIE offset -> its first row
  std::vector<absl::string_view> columns;
  bool in_cie = false;
  std::string cie_offset;
  uint64_t fde_start = 0, fde_end = 0;
  size_t fde_first_row = 0;
  bool fde_has_rows = false;
  std::string fde_cie;
  auto close_fde = [&] {
    if (in_cie || fde_end == 0) return;
    if (!fde_has_rows) {
      auto it = cie_rows.find(fde_cie);
      if (it == cie_rows.end()) return;
      ExpectedRow row = it->second;
      row.loc = fde_start;
      row.end = fde_end;
      rows.push_back(row);
      return;
    }
    for (size_t i = fde_first_row; i < rows.size(); ++i) {
      rows[i].end = i + 1 < rows.size() ? rows[i + 1].loc : fde_end;
    }
  };
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<absl::string_view> f;
    for (absl::string_view token : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      // "r9 (r9)" is one value: a register saved in another register.
      if (!f.empty() && absl::StartsWith(token, "(")) continue;
      f.push_back(token);
    }
    if (f.size() >= 4 && (f[3] == "CIE" || f[3] == "FDE")) {
      close_fde();
      columns.clear();
      fde_end = 0;
      if (f[3] == "CIE") {
        in_cie = true;
        cie_offset = std::string(f[0]);
      } else {
        in_cie = false;
        fde_cie = std::string(absl::StripPrefix(f[4], "cie="));
        absl::string_view range = absl::StripPrefix(f[5], "pc=");
        std::vector<absl::string_view> ends = absl::StrSplit(range, "..");
        if (ends.size() != 2 || !absl::SimpleHexAtoi(ends[0], &fde_start) ||
            !absl::SimpleHexAtoi(ends[1], &fde_end)) {
          fde_end = 0;
        }
        fde_first_row = rows.size();
        fde_has_rows = false;
      }
      continue;
    }
    if (!f.empty() && f[0] == "LOC") {
      columns.assign(f.begin(), f.end());
      continue;
    }
    uint64_t loc = 0;
    if (columns.empty() || f.size() != columns.size() || !absl::SimpleHexAtoi(f[0], &loc)) continue;
    ExpectedRow row;
    row.loc = loc;
    for (size_t i = 1; i < columns.size(); ++i) {
      if (columns[i] == "CFA") row.cfa = std::string(f[i]);
      if (columns[i] == "ra") row.ra = std::string(f[i]);
      if (columns[i] == "rbp") row.rbp = std::string(f[i]);
    }
    if (in_cie) {
      cie_rows.emplace(cie_offset, row);
    } else if (fde_end != 0) {
      rows.push_back(row);
      fde_has_rows = true;
    }
  }
  close_fde();
  return rows;
}

std::string Describe(const CfaRule& r) {
  std::string cfa = r.base == CfaRule::Base::kStackPointer   ? "rsp+" + std::to_string(r.cfa_offset)
                    : r.base == CfaRule::Base::kFramePointer ? "rbp+" + std::to_string(r.cfa_offset)
                                                             : "other";
  auto saved = [](int64_t offset) { return (offset < 0 ? "c" : "c+") + std::to_string(offset); };
  std::string ra = r.return_address_saved ? saved(r.return_address_offset) : "u";
  std::string rbp = r.frame_pointer_saved ? saved(r.frame_pointer_offset) : "u";
  return cfa + " ra=" + ra + " rbp=" + rbp;
}

// What readelf's row says, in Describe()'s words.
std::string Describe(const ExpectedRow& row) {
  std::string cfa = row.cfa;
  if (!absl::StartsWith(cfa, "rsp+") && !absl::StartsWith(cfa, "rbp+")) cfa = "other";
  std::string ra = absl::StartsWith(row.ra, "c") ? row.ra : "u";
  std::string rbp = absl::StartsWith(row.rbp, "c") ? row.rbp : "u";
  return cfa + " ra=" + ra + " rbp=" + rbp;
}

// Checks every readelf row of `path` at its first and last address;
// returns how many rows were compared.
size_t ExpectSameAsReadelf(const ElfFile& elf, const std::string& path) {
  std::vector<ExpectedRow> rows = ReadelfRows(path);
  EXPECT_GT(rows.size(), 10u) << "readelf printed too few rows for " << path;
  absl::StatusOr<std::unique_ptr<CallFrameInfo>> cfi = CallFrameInfo::Open(elf);
  EXPECT_TRUE(cfi.ok()) << cfi.status();
  if (!cfi.ok()) return 0;
  size_t mismatches = 0;
  for (const ExpectedRow& row : rows) {
    for (uint64_t at : {row.loc, row.end - 1}) {
      if (row.end <= row.loc) continue;
      std::optional<CfaRule> rule = (*cfi)->RuleAt(at);
      std::string got = rule ? Describe(*rule) : "none";
      if (got != Describe(row) && ++mismatches <= 10) {
        ADD_FAILURE() << path << " at 0x" << std::hex << at << ": readelf says "
                      << Describe(row) << " (" << row.cfa << "), we say " << got;
      }
    }
  }
  EXPECT_EQ(mismatches, 0u) << path;
  return rows.size();
}

std::unique_ptr<ElfFile> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::Open(path);
  EXPECT_TRUE(elf.ok()) << elf.status();
  return elf.ok() ? *std::move(elf) : nullptr;
}

TEST(CallFrameInfoTest, AgreesWithReadelfOnRealBinaries) {
  if (!HaveReadelf()) GTEST_SKIP() << "readelf (binutils) is not installed";
  // Not /proc/self/exe: readelf would read itself.
  char self[4096] = {};
  ASSERT_GT(readlink("/proc/self/exe", self, sizeof self - 1), 0);
  const std::vector<std::string> paths = {
      self,
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
      "/usr/bin/ls",
  };
  for (const std::string& path : paths) {
    if (access(path.c_str(), R_OK) != 0) continue;
    std::unique_ptr<ElfFile> elf = OpenOrDie(path);
    if (elf == nullptr) continue;
    size_t rows = ExpectSameAsReadelf(*elf, path);
    RecordProperty(path, static_cast<int>(rows));
  }
}

// ForEachRow() must give, row by row, what RuleAt() gives at both ends of
// the row (RuleAt() is held to readelf above), cover each function once,
// and come in address order.
TEST(CallFrameInfoTest, RowsAgreeWithRuleAtAndDoNotOverlap) {
  for (const std::string path : {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/ls"}) {
    if (access(path.c_str(), R_OK) != 0) continue;
    std::unique_ptr<ElfFile> elf = OpenOrDie(path);
    ASSERT_NE(elf, nullptr);
    absl::StatusOr<std::unique_ptr<CallFrameInfo>> cfi = CallFrameInfo::Open(*elf);
    ASSERT_TRUE(cfi.ok()) << cfi.status();
    size_t rows = 0, mismatches = 0;
    uint64_t previous_end = 0;
    (*cfi)->ForEachRow([&](uint64_t start, uint64_t end, const CfaRule& rule) {
      ++rows;
      EXPECT_LT(start, end);
      if (start < previous_end && ++mismatches <= 5) {
        ADD_FAILURE() << path << ": row at 0x" << std::hex << start << " overlaps the one before";
      }
      previous_end = end;
      for (uint64_t at : {start, end - 1}) {
        std::optional<CfaRule> expected = (*cfi)->RuleAt(at);
        std::string want = expected ? Describe(*expected) : "none";
        if (want != Describe(rule) && ++mismatches <= 5) {
          ADD_FAILURE() << path << " at 0x" << std::hex << at << ": row says " << Describe(rule)
                        << ", RuleAt says " << want;
        }
      }
    });
    EXPECT_GT(rows, (*cfi)->fde_count()) << path;
    EXPECT_EQ(mismatches, 0u) << path;
  }
}

// Renames section `name` in the image's section name table (its last
// byte becomes 'X'), so ElfFile no longer finds it.
std::string RenameSection(std::string image, absl::string_view name) {
  absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::FromBytes(image, "image");
  if (!elf.ok()) return image;
  if (const ElfSection* s = (*elf)->FindSection(name)) {
    size_t at = static_cast<size_t>(s->name.data() - (*elf)->bytes().data());
    image[at + name.size() - 1] = 'X';
  }
  return image;
}

// Without .eh_frame_hdr, Open() must scan .eh_frame itself (what it does
// for files linked without --eh-frame-hdr).
std::string WithoutSearchTable(std::string image) {
  return RenameSection(std::move(image), ".eh_frame_hdr");
}

std::string ReadWholeFile(const std::string& path) {
  absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::Open(path);
  return elf.ok() ? std::string((*elf)->bytes()) : std::string();
}

TEST(CallFrameInfoTest, ScanningWithoutTheSearchTableGivesTheSameRules) {
  if (!HaveReadelf()) GTEST_SKIP() << "readelf (binutils) is not installed";
  const std::string path = "/lib/x86_64-linux-gnu/libc.so.6";
  std::string image = ReadWholeFile(path);
  ASSERT_FALSE(image.empty());
  absl::StatusOr<std::unique_ptr<ElfFile>> scanned =
      ElfFile::FromBytes(WithoutSearchTable(image), "libc without .eh_frame_hdr");
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  ASSERT_EQ((*scanned)->FindSection(".eh_frame_hdr"), nullptr);
  ExpectSameAsReadelf(**scanned, path);
}

TEST(CallFrameInfoTest, AddressesOutsideEveryFunctionHaveNoRule) {
  std::unique_ptr<ElfFile> elf = OpenOrDie("/proc/self/exe");
  ASSERT_NE(elf, nullptr);
  absl::StatusOr<std::unique_ptr<CallFrameInfo>> cfi = CallFrameInfo::Open(*elf);
  ASSERT_TRUE(cfi.ok()) << cfi.status();
  EXPECT_GT((*cfi)->fde_count(), 100u);
  EXPECT_FALSE((*cfi)->RuleAt(0).has_value());
  EXPECT_FALSE((*cfi)->RuleAt(~uint64_t{0}).has_value());
}

TEST(CallFrameInfoTest, FileWithoutEhFrameIsNotFound) {
  std::string image = ReadWholeFile("/proc/self/exe");
  absl::StatusOr<std::unique_ptr<ElfFile>> elf =
      ElfFile::FromBytes(RenameSection(image, ".eh_frame"), "no-eh-frame");
  ASSERT_TRUE(elf.ok()) << elf.status();
  absl::StatusOr<std::unique_ptr<CallFrameInfo>> cfi = CallFrameInfo::Open(**elf);
  EXPECT_TRUE(absl::IsNotFound(cfi.status())) << cfi.status();
}

// Random damage to the tables must give wrong or missing rules, never a
// read outside the file (ASan watches this test in CI).
TEST(CallFrameInfoTest, CorruptTablesNeverReadOutOfBounds) {
  std::string image = ReadWholeFile("/proc/self/exe");
  ASSERT_FALSE(image.empty());
  absl::StatusOr<std::unique_ptr<ElfFile>> clean = ElfFile::FromBytes(image, "self");
  ASSERT_TRUE(clean.ok());
  const ElfSection* frame = (*clean)->FindSection(".eh_frame");
  const ElfSection* hdr = (*clean)->FindSection(".eh_frame_hdr");
  ASSERT_NE(frame, nullptr);
  std::mt19937_64 random(42);
  for (int round = 0; round < 60; ++round) {
    std::string damaged = round % 2 == 0 ? image : WithoutSearchTable(image);
    const ElfSection* target = (round % 3 == 0 && hdr != nullptr) ? hdr : frame;
    for (int i = 0; i < 200; ++i) {
      size_t at = target->offset + random() % target->size;
      damaged[at] = static_cast<char>(random());
    }
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::FromBytes(damaged, "damaged");
    if (!elf.ok()) continue;
    absl::StatusOr<std::unique_ptr<CallFrameInfo>> cfi = CallFrameInfo::Open(**elf);
    if (!cfi.ok()) continue;
    for (int probe = 0; probe < 2000; ++probe) {
      (void)(*cfi)->RuleAt(frame->address > 0x100000 ? random() % (frame->address * 2)
                                                      : random() % 0x200000);
    }
  }
  SUCCEED();
}

}  // namespace
}  // namespace flamekit
