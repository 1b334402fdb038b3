// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/kallsyms.h"

#include <string>

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

TEST(KallsymsTest, ParsesTextSymbolsAndEndsThemAtTheNextSymbol) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Parse(kSample, "sample"));
  EXPECT_FALSE(k.restricted());
  ASSERT_NE(k.Find(0xffffffff81001000), nullptr);
  EXPECT_EQ(k.Find(0xffffffff81001000)->name, "do_syscall_64");
  EXPECT_EQ(k.Find(0xffffffff810011ff)->name, "do_syscall_64");
  EXPECT_EQ(k.Find(0xffffffff81001250)->name, "local_helper");
  // Data symbols are not functions, and they end the function before them.
  EXPECT_EQ(k.Find(0xffffffff81001350), nullptr);
  EXPECT_EQ(k.Find(0xffffffff81001400)->name, "weak_fn");
  // Module symbols, separated by spaces or tabs.
  EXPECT_EQ(k.Find(0xffffffffc0100010)->name, "ext4_read");
  EXPECT_EQ(k.Find(0xffffffffc01000ff)->name, "ext4_write");
  EXPECT_EQ(k.Find(0xffffffffc0100100), nullptr);
  // Aliases at one address resolve to one of them, deterministically.
  ASSERT_NE(k.Find(0xffffffff81000010), nullptr);
  EXPECT_EQ(k.Find(0xffffffff81000010)->name, "_stext");
  // Before the first symbol: nothing.
  EXPECT_EQ(k.Find(0xffffffff80000000), nullptr);
}

TEST(KallsymsTest, AllZeroAddressesMeanRestricted) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Kallsyms k, Kallsyms::Parse("0000000000000000 T _text\n0000000000000000 t foo [mod]\n"));
  EXPECT_TRUE(k.restricted());
  EXPECT_EQ(k.Find(0xffffffff81000000), nullptr);
}

TEST(KallsymsTest, MalformedLineNamesSourceAndLine) {
  EXPECT_THAT(Kallsyms::Parse("ffffffff81000000 T _text\nnot hex T x\n", "/proc/kallsyms"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/proc/kallsyms:2: expected 'ADDRESS TYPE NAME [MODULE]'")));
  EXPECT_THAT(Kallsyms::Parse("ffffffff81000000 TT _text\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Kallsyms::Parse("ffffffff81000000 T\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(KallsymsTest, LoadsThisMachinesTable) {
  absl::StatusOr<Kallsyms> k = Kallsyms::Load();
  if (!k.ok()) GTEST_SKIP() << k.status();
  if (k->restricted()) GTEST_SKIP() << "/proc/kallsyms addresses hidden from this process";
  EXPECT_GT(k->size(), 1000u);
}

TEST(KallsymsTest, MissingFileIsNotFound) {
  EXPECT_THAT(Kallsyms::Load("/nonexistent/kallsyms"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(KallsymsTest, KernelAddressesAreTheUpperHalf) {
  EXPECT_TRUE(IsKernelAddress(0xffffffff81000000ull));
  EXPECT_TRUE(IsKernelAddress(0xffff800000000000ull));
  EXPECT_FALSE(IsKernelAddress(0x00007fffffffffffull));
  EXPECT_FALSE(IsKernelAddress(0x0000555555554000ull));
}

}  // namespace
}  // namespace flamekit
