// SPDX-License-Identifier: Apache-2.0
// CfiTable and UnwindWithCfi() on hand-laid stacks, where every word is
// known: which step (CFI row or frame record) each frame takes, rbp
// restored from its save slot, and the walk stopping (never faulting) on
// rules that point off the stack.

#include "flamekit/unwind/cfi_table.h"

#include "flamekit/unwind/copied_stack.h"

#include <stdint.h>

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace flamekit {
namespace {

uint64_t Address(const uint64_t* p) { return reinterpret_cast<uint64_t>(p); }

std::vector<uint64_t> Walk(const FramePointerStart& start, const StackBounds& bounds,
                           const CfiTable* table) {
  uint64_t frames[16];
  UnwindResult r = UnwindWithCfi(start, bounds, table, frames, 16);
  return std::vector<uint64_t>(frames, frames + r.frame_count);
}

TEST(CfiTableTest, FindReturnsTheRowInForceAndGapsBetweenFunctions) {
  CfiTable table;
  table.AddRow(0x2000, 0x2010, CfiRow::kStackPointer, 16, 0);
  table.AddRow(0x1000, 0x1004, CfiRow::kStackPointer, 8, 0);
  table.AddRow(0x1004, 0x1040, CfiRow::kFramePointer, 16, -16);
  table.Finish();
  EXPECT_EQ(table.Find(0xfff), nullptr);
  ASSERT_NE(table.Find(0x1000), nullptr);
  EXPECT_EQ(table.Find(0x1003)->kind, CfiRow::kStackPointer);
  EXPECT_EQ(table.Find(0x1003)->cfa_offset, 8);
  EXPECT_EQ(table.Find(0x1004)->kind, CfiRow::kFramePointer);
  EXPECT_EQ(table.Find(0x103f)->rbp_offset, -16);
  EXPECT_EQ(table.Find(0x1040)->kind, CfiRow::kNone);  // between functions
  EXPECT_EQ(table.Find(0x2005)->cfa_offset, 16);
  EXPECT_EQ(table.Find(0x9999)->kind, CfiRow::kNone);  // after the last
}

TEST(CfiTableTest, NeighboursWithTheSameRuleAreMerged) {
  CfiTable table;
  for (uint64_t pc = 0x1000; pc < 0x2000; pc += 0x10) {
    table.AddRow(pc, pc + 0x10, CfiRow::kStackPointer, 8, 0);
  }
  table.Finish();
  EXPECT_EQ(table.size(), 2u);  // the rule, then the gap after it
  EXPECT_EQ(table.Find(0x1fff)->kind, CfiRow::kStackPointer);
}

TEST(CfiTableTest, OffsetsThatDoNotFitBecomeNoRule) {
  CfiTable table;
  table.AddRow(0x1000, 0x1010, CfiRow::kStackPointer, int64_t{1} << 40, 0);
  table.AddRow(0x1010, 0x1020, CfiRow::kStackPointer, 8, int64_t{1} << 20);
  table.Finish();
  EXPECT_EQ(table.Find(0x1000)->kind, CfiRow::kNone);
  EXPECT_EQ(table.Find(0x1010)->kind, CfiRow::kNone);
}

// Rows of one made-up file: functions laid one after another from `base`,
// some touching, some with a gap between, each a push then a body.
struct TestRow {
  uint64_t start, end;
  CfiRow::Kind kind;
  int cfa;
};
std::vector<TestRow> FileRows(uint64_t base, int functions, std::mt19937* rng) {
  std::vector<TestRow> rows;
  uint64_t pc = base;
  for (int f = 0; f < functions; ++f) {
    const uint64_t push = 1 + (*rng)() % 4, body = 4 + (*rng)() % 60;
    rows.push_back({pc, pc + push, CfiRow::kStackPointer, 8});
    rows.push_back({pc + push, pc + push + body,
                    (*rng)() % 2 ? CfiRow::kStackPointer : CfiRow::kFramePointer,
                    static_cast<int>(16 + 8 * ((*rng)() % 3))});
    pc += push + body + ((*rng)() % 3 == 0 ? 0 : (*rng)() % 16);
  }
  return rows;
}

void AddAll(const std::vector<TestRow>& rows, CfiTable* table) {
  for (const TestRow& r : rows) table->AddRow(r.start, r.end, r.kind, r.cfa, 0);
}

// Every pc from `lo` to `hi` finds the same rule in both tables.
void ExpectSameRules(const CfiTable& a, const CfiTable& b, uint64_t lo, uint64_t hi) {
  for (uint64_t pc = lo; pc < hi; ++pc) {
    const CfiRow* x = a.Find(pc);
    const CfiRow* y = b.Find(pc);
    ASSERT_EQ(x == nullptr, y == nullptr) << std::hex << pc;
    if (x == nullptr) continue;
    ASSERT_EQ(x->kind, y->kind) << std::hex << pc;
    if (x->kind == CfiRow::kNone) continue;
    ASSERT_EQ(x->cfa_offset, y->cfa_offset) << std::hex << pc;
  }
}

// Sorted rows take Finish()'s one-pass path; shuffled ones its sort. Both
// must give the same table.
TEST(CfiTableTest, SortedAndShuffledRowsGiveTheSameTable) {
  std::mt19937 rng(7);
  std::vector<TestRow> rows = FileRows(0x10000, 500, &rng);
  CfiTable sorted, shuffled;
  AddAll(rows, &sorted);
  std::shuffle(rows.begin(), rows.end(), rng);
  AddAll(rows, &shuffled);
  sorted.Finish();
  shuffled.Finish();
  EXPECT_EQ(sorted.size(), shuffled.size());
  ExpectSameRules(sorted, shuffled, 0xff00, 0x10000 + 500 * 100);
}

// A profiler grows its table file by file (Merge()) as walks reach them:
// in any order, the result answers as one table built from all the files.
TEST(CfiTableTest, MergingFilesOneByOneEqualsBuildingThemTogether) {
  std::mt19937 rng(11);
  std::vector<uint64_t> bases = {0x400000, 0x7f0000001000, 0x7f0000200000};
  std::vector<std::vector<TestRow>> files;
  for (uint64_t base : bases) files.push_back(FileRows(base, 100, &rng));
  // The fourth file starts where the third's last function ends.
  bases.push_back(files.back().back().end);
  files.push_back(FileRows(bases.back(), 100, &rng));
  CfiTable whole;
  for (const auto& f : files) AddAll(f, &whole);
  whole.Finish();
  for (const std::vector<int>& order :
       {std::vector<int>{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}}) {
    CfiTable grown;
    grown.Finish();
    for (int i : order) {
      CfiTable part;
      AddAll(files[i], &part);
      part.Finish();
      grown.Merge(part);
    }
    EXPECT_EQ(grown.size(), whole.size());
    for (uint64_t base : bases) ExpectSameRules(whole, grown, base - 16, base + 0x8000);
  }
}

// A file mapped where another was (dlclose, then dlopen): its rules
// replace the old ones over its range, and the rules of the code after it
// are kept.
TEST(CfiTableTest, MergedFileReplacesTheRulesOfTheRangeItCovers) {
  CfiTable table;
  table.AddRow(0x1000, 0x1800, CfiRow::kStackPointer, 8, 0);   // old file
  table.AddRow(0x3000, 0x3100, CfiRow::kStackPointer, 24, 0);  // the next file
  table.Finish();
  CfiTable part;
  part.AddRow(0x1000, 0x1100, CfiRow::kFramePointer, 16, -16);
  part.Finish();
  table.Merge(part);
  EXPECT_EQ(table.Find(0x1050)->kind, CfiRow::kFramePointer);
  EXPECT_EQ(table.Find(0x1200)->kind, CfiRow::kNone);  // the old rule is gone
  EXPECT_EQ(table.Find(0x3050)->cfa_offset, 24);
}

// Three frames: a frameless leaf (CFA = rsp + 16, rbp saved at CFA - 16),
// a frame-pointer function (CFA = rbp + 16), and one with no rule (frame
// record step), then the end of the chain.
TEST(UnwindWithCfiTest, StepsByRuleAndByFrameRecord) {
  uint64_t stack[32] = {};
  StackBounds bounds{Address(stack), Address(stack + 32)};
  // Leaf: sp = stack; it pushed the caller's rbp (stack[0]) and the call
  // pushed the return address (stack[1]).
  stack[0] = Address(stack + 4);  // the caller's rbp
  stack[1] = 0x2020;
  // Caller at 0x2020: a frame record at rbp = stack + 4.
  stack[4] = Address(stack + 8);
  stack[5] = 0x3030;
  // Its caller at 0x3030 has no rule: its frame record at stack + 8.
  stack[8] = 0;
  stack[9] = 0x4040;
  CfiTable table;
  table.AddRow(0x1000, 0x1100, CfiRow::kStackPointer, 16, -16);
  table.AddRow(0x2000, 0x2100, CfiRow::kFramePointer, 16, -16);
  table.Finish();
  // rbp in the leaf holds something else entirely (no frame pointers).
  FramePointerStart start{0x1010, 0xdeadbeef, Address(stack)};
  EXPECT_EQ(Walk(start, bounds, &table), (std::vector<uint64_t>{0x1010, 0x2020, 0x3030, 0x4040}));
  // The frame-pointer walk alone gets nowhere from that rbp.
  EXPECT_EQ(Walk(start, bounds, nullptr), (std::vector<uint64_t>{0x1010}));
}

TEST(UnwindWithCfiTest, RulesThatPointOffTheStackEndTheWalk) {
  uint64_t stack[8] = {};
  StackBounds bounds{Address(stack), Address(stack + 8)};
  CfiTable table;
  table.AddRow(0x1000, 0x1100, CfiRow::kStackPointer, 4096, 0);  // past the top
  table.AddRow(0x2000, 0x2100, CfiRow::kStackPointer, 0, 0);     // does not grow
  table.AddRow(0x3000, 0x3100, CfiRow::kStackPointer, 12, 0);    // misaligned
  table.Finish();
  for (uint64_t pc : {0x1000, 0x2000, 0x3000}) {
    EXPECT_EQ(Walk({pc, 0, Address(stack)}, bounds, &table), (std::vector<uint64_t>{pc})) << pc;
  }
  // An rbp save slot off the stack ends it too.
  CfiTable slot_off;
  slot_off.AddRow(0x1000, 0x1100, CfiRow::kStackPointer, 16, 4096);
  slot_off.Finish();
  stack[1] = 0x5000;
  EXPECT_EQ(Walk({0x1000, 0, Address(stack)}, bounds, &slot_off),
            (std::vector<uint64_t>{0x1000}));
}

TEST(UnwindWithCfiTest, UnknownBoundsGiveTheLeafOnly) {
  CfiTable table;
  table.Finish();
  EXPECT_EQ(Walk({0x1234, 0, 0x7000}, StackBounds{}, &table), (std::vector<uint64_t>{0x1234}));
}

TEST(UnwindWithCfiTest, MaxFramesTruncates) {
  // A loop of frame records: each points to the next, 16 bytes up.
  uint64_t stack[64] = {};
  for (int i = 0; i + 2 < 64; i += 2) {
    stack[i] = Address(stack + i + 2);
    stack[i + 1] = 0x1000 + i;
  }
  StackBounds bounds{Address(stack), Address(stack + 64)};
  uint64_t frames[5];
  UnwindResult r = UnwindWithCfi({0x42, Address(stack), Address(stack)}, bounds, nullptr, frames, 5);
  EXPECT_EQ(r.frame_count, 5u);
  EXPECT_TRUE(r.truncated);
}

// The same three frames as StepsByRuleAndByFrameRecord, laid out as
// another process's stack at 0x7ffd0000 and handed over as a copy (a perf
// sample's STACK_USER bytes): the walk reads the copy with the target's
// addresses, ends `complete` at the null frame pointer, and a copy cut
// short ends it early, not complete, with no frame made up.
TEST(UnwindCopiedStackTest, WalksAForeignStackFromItsCopy) {
  const uint64_t sp = 0x7ffd0000;
  uint64_t copy[32] = {};
  copy[0] = sp + 4 * 8;  // the caller's rbp, a target address
  copy[1] = 0x2020;
  copy[4] = sp + 8 * 8;
  copy[5] = 0x3030;
  copy[8] = 0;
  copy[9] = 0x4040;
  copy[10] = 0;  // the outermost frame's record: rbp 0 (as _start leaves it)
  CfiTable table;
  table.AddRow(0x1000, 0x1100, CfiRow::kStackPointer, 16, -16);
  table.AddRow(0x2000, 0x2100, CfiRow::kFramePointer, 16, -16);
  table.Finish();
  uint64_t frames[16];
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(copy);
  UnwindResult r = UnwindCopiedStack(&table, {0x1010, 0xdeadbeef, sp}, bytes, sizeof(copy),
                                     frames, 16);
  EXPECT_EQ(std::vector<uint64_t>(frames, frames + r.frame_count),
            (std::vector<uint64_t>{0x1010, 0x2020, 0x3030, 0x4040}));
  EXPECT_TRUE(r.complete);
  // Only the leaf's frame copied: the caller's record lies past the copy.
  r = UnwindCopiedStack(&table, {0x1010, 0xdeadbeef, sp}, bytes, 4 * 8, frames, 16);
  EXPECT_EQ(std::vector<uint64_t>(frames, frames + r.frame_count),
            (std::vector<uint64_t>{0x1010, 0x2020}));
  EXPECT_FALSE(r.complete);
  // No copy: the leaf alone, not complete.
  r = UnwindCopiedStack(&table, {0x1010, 0, sp}, nullptr, 0, frames, 16);
  EXPECT_EQ(r.frame_count, 1u);
  EXPECT_FALSE(r.complete);
}

}  // namespace
}  // namespace flamekit
