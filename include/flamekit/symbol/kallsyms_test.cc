// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/kallsyms.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/symbol/symbol_table.h"
#include "flamekit/symbol/proc_maps.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kSample[] =
    "ffffffff81000000 T _stext\n"
    "ffffffff81000000 T _text\n"
    "ffffffff81001000 T do_syscall_64\n"
    "ffffffff81001200 t local_helper\n"
    "ffffffff81001300 D some_data\n"
    "ffffffff81001400 W weak_fn\n"
    "ffffffffc0100000 t ext4_read [ext4]\n"
    "ffffffffc0100080 t\text4_write\t[ext4]\n"
    "ffffffffc0100100 b ext4_bss [ext4]\n";

std::string Runfile(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/flamekit/", rel);
  return std::string(rel);
}

std::string TempPath(absl::string_view name) {
  const char* t = getenv("TEST_TMPDIR");
  return absl::StrCat(t != nullptr ? t : "/tmp", "/", name, "_", getpid());
}

void WriteFile(const std::string& path, absl::string_view text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
}

std::string NameAt(const Kallsyms& k, uint64_t address) {
  std::optional<KernelSymbol> s = k.Find(address);
  return s.has_value() ? std::string(s->name) : "(none)";
}

// The table as it was built before the compact layout (kept here as the
// reference): every text symbol, ending at the next higher address of any
// symbol, in an ElfReader SymbolTable. Returns nullopt for a restricted
// table.
std::optional<SymbolTable> ReferenceTable(absl::string_view text) {
  struct Entry {
    uint64_t address;
    absl::string_view name;
    bool is_text;
  };
  std::vector<Entry> entries;
  bool any_nonzero = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view fields = line;
    absl::string_view addr_text = symbol_internal::NextField(&fields);
    absl::string_view type = symbol_internal::NextField(&fields);
    absl::string_view name = symbol_internal::NextField(&fields);
    uint64_t address = 0;
    if (!symbol_internal::ParseHex64(addr_text, &address) || type.size() != 1 || name.empty()) {
      continue;
    }
    any_nonzero |= address != 0;
    char t = type[0];
    entries.push_back(Entry{address, name, t == 't' || t == 'T' || t == 'w' || t == 'W'});
  }
  if (!any_nonzero) return std::nullopt;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.address < b.address; });
  std::vector<ElfSymbol> symbols;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].is_text || entries[i].address == 0) continue;
    size_t j = i + 1;
    while (j < entries.size() && entries[j].address == entries[i].address) ++j;
    uint64_t size = j < entries.size() ? entries[j].address - entries[i].address : 0;
    symbols.push_back(ElfSymbol{entries[i].address, size, entries[i].name, true});
  }
  return SymbolTable(std::move(symbols));
}

// Looks up every symbol's address, the byte before it, the byte after, and
// its middle, in `k` and in the reference, and expects the same answers.
void ExpectSameAnswersAsReference(const Kallsyms& k, absl::string_view text,
                                  absl::string_view what) {
  std::optional<SymbolTable> ref = ReferenceTable(text);
  ASSERT_EQ(k.restricted(), !ref.has_value()) << what;
  if (!ref.has_value()) return;
  EXPECT_EQ(k.size(), ref->size()) << what;
  std::vector<uint64_t> probes;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view fields = line;
    uint64_t a = 0;
    if (!symbol_internal::ParseHex64(symbol_internal::NextField(&fields), &a)) continue;
    probes.insert(probes.end(), {a - 1, a, a + 1, a + 0x40});
  }
  size_t mismatches = 0;
  for (uint64_t a : probes) {
    const ElfSymbol* want = ref->Find(a);
    std::optional<KernelSymbol> got = k.Find(a);
    bool same = want == nullptr ? !got.has_value()
                                : got.has_value() && got->name == want->name &&
                                      got->address == want->address && got->size == want->size;
    if (!same && ++mismatches <= 10) {
      ADD_FAILURE() << what << ": at " << absl::StrCat("0x", absl::Hex(a)) << " reference says "
                    << (want ? std::string(want->name) : "(none)") << ", got "
                    << (got ? std::string(got->name) : "(none)");
    }
  }
  EXPECT_EQ(mismatches, 0u) << what << ": of " << probes.size() << " lookups";
}

TEST(KallsymsTest, ParsesTextSymbolsAndEndsThemAtTheNextSymbol) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Parse(kSample, "sample"));
  EXPECT_FALSE(k.restricted());
  ASSERT_TRUE(k.Find(0xffffffff81001000).has_value());
  EXPECT_EQ(k.Find(0xffffffff81001000)->name, "do_syscall_64");
  EXPECT_EQ(k.Find(0xffffffff81001000)->address, 0xffffffff81001000u);
  EXPECT_EQ(k.Find(0xffffffff81001000)->size, 0x200u);
  EXPECT_EQ(k.Find(0xffffffff810011ff)->name, "do_syscall_64");
  EXPECT_EQ(k.Find(0xffffffff81001250)->name, "local_helper");
  // Data symbols are not functions, and they end the function before them.
  EXPECT_EQ(k.Find(0xffffffff81001350), std::nullopt);
  EXPECT_EQ(k.Find(0xffffffff81001400)->name, "weak_fn");
  // Module symbols, separated by spaces or tabs.
  EXPECT_EQ(k.Find(0xffffffffc0100010)->name, "ext4_read");
  EXPECT_EQ(k.Find(0xffffffffc01000ff)->name, "ext4_write");
  EXPECT_EQ(k.Find(0xffffffffc0100100), std::nullopt);
  // Aliases at one address resolve to one of them, deterministically.
  ASSERT_TRUE(k.Find(0xffffffff81000010).has_value());
  EXPECT_EQ(k.Find(0xffffffff81000010)->name, "_stext");
  // Before the first symbol: nothing.
  EXPECT_EQ(k.Find(0xffffffff80000000), std::nullopt);
  EXPECT_EQ(k.size(), 6u);  // _stext, do_syscall_64, local_helper, weak_fn, ext4_read/write
  ExpectSameAnswersAsReference(k, kSample, "kSample");
}

TEST(KallsymsTest, LastSymbolMatchesOnlyItsOwnAddress) {
  constexpr char kText[] =
      "ffffffff81000000 T first\n"
      "ffffffff81000100 T last\n";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Parse(kText));
  EXPECT_EQ(NameAt(k, 0xffffffff810000ff), "first");
  ASSERT_TRUE(k.Find(0xffffffff81000100).has_value());
  EXPECT_EQ(k.Find(0xffffffff81000100)->name, "last");
  EXPECT_EQ(k.Find(0xffffffff81000100)->size, 0u);  // unknown end
  EXPECT_EQ(k.Find(0xffffffff81000101), std::nullopt);
  EXPECT_EQ(k.Find(~uint64_t{0}), std::nullopt);
  ExpectSameAnswersAsReference(k, kText, "two symbols");
}

TEST(KallsymsTest, AllZeroAddressesMeanRestricted) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Kallsyms k, Kallsyms::Parse("0000000000000000 T _text\n0000000000000000 t foo [mod]\n"));
  EXPECT_TRUE(k.restricted());
  EXPECT_EQ(k.size(), 0u);
  EXPECT_EQ(k.Find(0xffffffff81000000), std::nullopt);
  EXPECT_EQ(k.Find(0), std::nullopt);
}

TEST(KallsymsTest, RestrictedFileLoads) {
  std::string path = TempPath("kallsyms_restricted");
  WriteFile(path,
            "0000000000000000 T _text\n0000000000000000 T schedule\n"
            "0000000000000000 t foo\t[mod]\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Load(path));
  EXPECT_TRUE(k.restricted());
  EXPECT_EQ(k.Find(0xffffffff81000010), std::nullopt);
  unlink(path.c_str());
}

TEST(KallsymsTest, ModuleSymbolsInAnyOrder) {
  // Modules listed before the core and out of order, a module symbol that
  // ends at the core's first data symbol, and data at a text address.
  constexpr char kText[] =
      "ffffffffc0200000 t b_fn\t[mod_b]\n"
      "ffffffffc0100040 t a_fn2\t[mod_a]\n"
      "ffffffffc0100000 t a_fn1\t[mod_a]\n"
      "ffffffffc0100080 d a_data\t[mod_a]\n"
      "ffffffff81000000 T _text\n"
      "ffffffff81000000 D same_address_data\n"
      "ffffffff81000100 T core_fn\n"
      "ffffffff81000180 r core_rodata\n"
      "ffffffff81000190 r core_rodata2\n"
      "ffffffff81000200 t core_fn2\n";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Parse(kText));
  EXPECT_EQ(NameAt(k, 0xffffffffc0100000), "a_fn1");
  EXPECT_EQ(NameAt(k, 0xffffffffc010003f), "a_fn1");
  EXPECT_EQ(NameAt(k, 0xffffffffc0100040), "a_fn2");
  EXPECT_EQ(NameAt(k, 0xffffffffc010007f), "a_fn2");
  EXPECT_EQ(NameAt(k, 0xffffffffc0100080), "(none)");
  EXPECT_EQ(NameAt(k, 0xffffffffc0200000), "b_fn");
  EXPECT_EQ(NameAt(k, 0xffffffff81000010), "_text");
  EXPECT_EQ(NameAt(k, 0xffffffff81000180), "(none)");
  EXPECT_EQ(NameAt(k, 0xffffffff81000195), "(none)");
  EXPECT_EQ(NameAt(k, 0xffffffff81000200), "core_fn2");
  EXPECT_EQ(NameAt(k, 0xffffffff8100ffff), "core_fn2");  // ends at the modules
  ExpectSameAnswersAsReference(k, kText, "modules");
}

TEST(KallsymsTest, MalformedLineNamesSourceAndLine) {
  EXPECT_THAT(Kallsyms::Parse("ffffffff81000000 T _text\nnot hex T x\n", "/proc/kallsyms"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/proc/kallsyms:2: expected 'ADDRESS TYPE NAME [MODULE]'")));
  EXPECT_THAT(Kallsyms::Parse("ffffffff81000000 TT _text\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Kallsyms::Parse("ffffffff81000000 T\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      Kallsyms::Parse(absl::StrCat("ffffffff81000000 T ", std::string(70000, 'x'), "\n"), "big"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("big:1: symbol name of 70000 bytes")));
}

TEST(KallsymsTest, LoadMatchesParseAcrossReadBoundaries) {
  // ~450 KB: lines are cut by the 64 KB reads at many places, and the
  // names (up to 700 bytes, longer than the kernel allows) spill over
  // several 64 KB name blocks.
  std::mt19937_64 rng(42);
  std::string text;
  uint64_t address = 0xffffffff81000000;
  for (int i = 0; i < 4000; ++i) {
    address += 16 + rng() % 4096;
    char type = "TtWwDdbr"[rng() % 8];
    std::string name = absl::StrCat("fn_", i, "_", std::string(rng() % 200, 'x'));
    if (i % 500 == 0) name += std::string(500, 'y');
    absl::StrAppendFormat(&text, "%016x %c %s%s\n", address, type, name,
                          i % 3 == 0 ? absl::StrCat("\t[mod", i % 7, "]") : "");
  }
  text += "ffffffffc0000000 T no_newline_at_end";
  std::string path = TempPath("kallsyms_big");
  WriteFile(path, text);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms loaded, Kallsyms::Load(path));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms parsed, Kallsyms::Parse(text));
  EXPECT_EQ(loaded.size(), parsed.size());
  EXPECT_EQ(NameAt(loaded, 0xffffffffc0000000), "no_newline_at_end");
  ExpectSameAnswersAsReference(loaded, text, "Load of generated file");
  ExpectSameAnswersAsReference(parsed, text, "Parse of generated text");
  unlink(path.c_str());
}

TEST(KallsymsTest, ShuffledLinesGiveTheSameAnswers) {
  std::vector<std::string> lines = absl::StrSplit(kSample, '\n', absl::SkipEmpty());
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::shuffle(lines.begin(), lines.end(), rng);
    std::string text = absl::StrJoin(lines, "\n");
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Parse(text));
    EXPECT_EQ(NameAt(k, 0xffffffff81000010), "_stext") << text;
    ExpectSameAnswersAsReference(k, text, text);
  }
}

TEST(KallsymsTest, MatchesTheReferenceOnARealExcerpt) {
  std::string path = Runfile("testdata/symbol/kallsyms_sample.txt");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string text, ReadSmallFile(path));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Load(path));
  EXPECT_FALSE(k.restricted());
  EXPECT_GT(k.size(), 400u);
  ExpectSameAnswersAsReference(k, text, path);
  // The last line (a module symbol, listed after the core's) is the
  // highest address: its end is unknown, so only its own address matches.
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  absl::string_view last = lines.back();
  uint64_t last_address = 0;
  ASSERT_TRUE(symbol_internal::ParseHex64(symbol_internal::NextField(&last), &last_address));
  symbol_internal::NextField(&last);  // type
  absl::string_view last_name = symbol_internal::NextField(&last);
  EXPECT_EQ(NameAt(k, last_address), last_name) << lines.back();
  EXPECT_EQ(k.Find(last_address + 1), std::nullopt) << lines.back();
}

TEST(KallsymsTest, MatchesTheReferenceOnThisMachinesTable) {
  absl::StatusOr<std::string> text = ReadSmallFile("/proc/kallsyms");
  if (!text.ok()) GTEST_SKIP() << text.status();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Parse(*text, "/proc/kallsyms"));
  if (k.restricted()) GTEST_SKIP() << "/proc/kallsyms addresses hidden from this process";
  ExpectSameAnswersAsReference(k, *text, "/proc/kallsyms");
}

TEST(KallsymsTest, LoadsThisMachinesTable) {
  absl::StatusOr<Kallsyms> k = Kallsyms::Load();
  if (!k.ok()) GTEST_SKIP() << k.status();
  if (k->restricted()) GTEST_SKIP() << "/proc/kallsyms addresses hidden from this process";
  EXPECT_GT(k->size(), 1000u);
}

TEST(KallsymsTest, MissingFileIsNotFound) {
  EXPECT_THAT(Kallsyms::Load("/nonexistent/kallsyms"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Kallsyms::Shared("/nonexistent/kallsyms"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(KallsymsTest, SharedReusesOneTable) {
  std::string path = TempPath("kallsyms_shared");
  WriteFile(path, kSample);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> a, Kallsyms::Shared(path));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> b, Kallsyms::Shared(path));
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(NameAt(*b, 0xffffffff81001000), "do_syscall_64");
  // Older than max_age: read again.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> c,
                                Kallsyms::Shared(path, absl::ZeroDuration()));
  EXPECT_NE(c.get(), a.get());
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> d, Kallsyms::Shared(path));
  EXPECT_EQ(d.get(), c.get());
  unlink(path.c_str());
}

TEST(KallsymsTest, SharedRereadsAReplacedFile) {
  std::string path = TempPath("kallsyms_replaced");
  WriteFile(path, "ffffffff81000000 T before\nffffffff81000100 T end\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> a, Kallsyms::Shared(path));
  EXPECT_EQ(NameAt(*a, 0xffffffff81000010), "before");
  WriteFile(path, "ffffffff81000000 T after_rewrite\nffffffff81000100 T end\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> b, Kallsyms::Shared(path));
  EXPECT_EQ(NameAt(*b, 0xffffffff81000010), "after_rewrite");
  // The first caller's table is still valid and unchanged.
  EXPECT_EQ(NameAt(*a, 0xffffffff81000010), "before");
  unlink(path.c_str());
}

TEST(KallsymsTest, SharedDoesNotKeepARestrictedTable) {
  std::string path = TempPath("kallsyms_shared_zero");
  WriteFile(path, "0000000000000000 T _text\n0000000000000000 t foo [mod]\n");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> a, Kallsyms::Shared(path));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Kallsyms> b, Kallsyms::Shared(path));
  EXPECT_TRUE(a->restricted());
  EXPECT_TRUE(b->restricted());
  EXPECT_NE(a.get(), b.get());  // read again: the settings may have changed
  unlink(path.c_str());
}

TEST(KallsymsTest, SharedFromManyThreads) {
  std::string path = TempPath("kallsyms_threads");
  WriteFile(path, kSample);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<std::shared_ptr<const Kallsyms>> k =
            Kallsyms::Shared(path, i % 10 == 0 ? absl::ZeroDuration() : absl::Seconds(60));
        ASSERT_TRUE(k.ok()) << k.status();
        EXPECT_EQ(NameAt(**k, 0xffffffff81001000), "do_syscall_64");
      }
    });
  }
  for (std::thread& t : threads) t.join();
  unlink(path.c_str());
}

TEST(KallsymsTest, KernelAddressesAreTheUpperHalf) {
  EXPECT_TRUE(IsKernelAddress(0xffffffff81000000ull));
  EXPECT_TRUE(IsKernelAddress(0xffff800000000000ull));
  EXPECT_FALSE(IsKernelAddress(0x00007fffffffffffull));
  EXPECT_FALSE(IsKernelAddress(0x0000555555554000ull));
}

}  // namespace
}  // namespace flamekit
