// SPDX-License-Identifier: Apache-2.0
// BuildCfiTable() over this process, and UnwindWithCfi() with it from a
// real signal taken inside a call chain built without frame pointers.

#include "flamekit/collect/cfi_table_builder.h"

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "flamekit/unwind/cfi_test_chain.h"
#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/stack_bounds.h"
#include "flamekit/unwind/ucontext_regs.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

// What the handler saw; written in the handler, read after raise().
StackBounds g_bounds;
const CfiTable* g_table = nullptr;
uint64_t g_cfi_frames[64];
size_t g_cfi_count = 0;
uint64_t g_fp_frames[64];
size_t g_fp_count = 0;

void WalkBothWays(int, siginfo_t*, void* ucontext) {
  MachineRegisters regs;
  if (!ReadMachineRegisters(ucontext, &regs)) return;
  g_cfi_count = UnwindWithCfi({regs.pc, regs.fp, regs.sp}, g_bounds, g_table, g_cfi_frames, 64)
                    .frame_count;
  g_fp_count =
      UnwindFramePointers({regs.pc, regs.fp, regs.sp}, g_bounds, g_fp_frames, 64).frame_count;
}

__attribute__((noinline)) uint64_t RaiseAtTheBottom(uint64_t work) {
  raise(SIGUSR2);
  return work + 1;
}

std::vector<std::string> Names(Symbolizer& symbolizer, const uint64_t* frames, size_t count) {
  std::vector<std::string> names;
  for (size_t i = 0; i < count; ++i) {
    names.push_back(symbolizer.Lookup(i == 0 ? frames[i] : frames[i] - 1).name);
  }
  return names;
}

// The position of the first name containing `needle`, or -1.
int IndexOf(const std::vector<std::string>& names, absl::string_view needle) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (absl::StrContains(names[i], needle)) return static_cast<int>(i);
  }
  return -1;
}

TEST(BuildCfiTableTest, CoversThisProcessAndItsLibraries) {
  absl::StatusOr<std::unique_ptr<Symbolizer>> symbolizer = Symbolizer::ForSelf();
  ASSERT_TRUE(symbolizer.ok()) << symbolizer.status();
  CfiTableStats stats;
  std::unique_ptr<CfiTable> table = BuildCfiTable(**symbolizer, &stats);
  EXPECT_GE(stats.mappings, 2u);  // this test and libc at least
  EXPECT_GT(stats.rows, 10000u);
  EXPECT_EQ(stats.rows, table->size());
  // Every function of libc has a rule: raise() does.
  const CfiRow* row = table->Find(reinterpret_cast<uint64_t>(&raise) + 1);
  ASSERT_NE(row, nullptr);
  EXPECT_NE(row->kind, CfiRow::kNone);
  RecordProperty("rows", static_cast<int>(stats.rows));
  RecordProperty("bytes", static_cast<int>(stats.bytes));
}

TEST(BuildCfiTableTest, UnwindsThroughCodeWithoutFramePointers) {
  absl::StatusOr<std::unique_ptr<Symbolizer>> symbolizer = Symbolizer::ForSelf();
  ASSERT_TRUE(symbolizer.ok()) << symbolizer.status();
  std::unique_ptr<CfiTable> table = BuildCfiTable(**symbolizer);
  absl::StatusOr<StackBounds> bounds = CurrentThreadStackBounds();
  ASSERT_TRUE(bounds.ok()) << bounds.status();
  g_bounds = *bounds;
  g_table = table.get();
  struct sigaction action = {}, previous = {};
  action.sa_sigaction = WalkBothWays;
  action.sa_flags = SA_SIGINFO;
  ASSERT_EQ(sigaction(SIGUSR2, &action, &previous), 0);
  cfi_test::ChainOuter(1, RaiseAtTheBottom);
  sigaction(SIGUSR2, &previous, nullptr);

  std::vector<std::string> cfi = Names(**symbolizer, g_cfi_frames, g_cfi_count);
  std::vector<std::string> fp = Names(**symbolizer, g_fp_frames, g_fp_count);
  const std::string context = absl::StrCat("CFI walk:\n  ", absl::StrJoin(cfi, "\n  "),
                                           "\nframe-pointer walk:\n  ", absl::StrJoin(fp, "\n  "));
  // The chain, in order, under the function that raised the signal.
  const int bottom = IndexOf(cfi, "RaiseAtTheBottom");
  const int inner = IndexOf(cfi, "ChainInner");
  const int middle = IndexOf(cfi, "ChainMiddle");
  const int outer = IndexOf(cfi, "ChainOuter");
  const int test = IndexOf(cfi, "UnwindsThroughCodeWithoutFramePointers");
  ASSERT_GE(bottom, 0) << context;
  EXPECT_EQ(inner, bottom + 1) << context;
  EXPECT_EQ(middle, bottom + 2) << context;
  EXPECT_EQ(outer, bottom + 3) << context;
  EXPECT_EQ(test, bottom + 4) << context;
  // What this is about: the frame-pointer walk cannot see the chain.
  EXPECT_EQ(IndexOf(fp, "ChainMiddle"), -1) << context;
}

}  // namespace
}  // namespace flamekit
