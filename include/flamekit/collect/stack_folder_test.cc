// SPDX-License-Identifier: Apache-2.0
#include "flamekit/collect/stack_folder.h"

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "flamekit/profile/collapsed_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Code laid out by hand: a frameless leaf at 0x1000 whose return address is
// stack word 2, a frame-keeping function at 0x2000, a system call site at
// 0x3000 with no rule; return addresses are 0x5000..0x5fff.
class HandLaidCode : public CodeFacts {
 public:
  LeafFrame LeafFrameAt(uint64_t pc) override {
    ++leaf_questions;
    if (pc == 0x1000) return {LeafFrame::Kind::kFrameless, 2};
    if (pc == 0x2000) return {LeafFrame::Kind::kKept, 0};
    return {LeafFrame::Kind::kUnknown, 0};
  }
  bool IsReturnAddress(uint64_t word) override { return word >= 0x5000 && word < 0x6000; }
  bool IsSyscallSite(uint64_t pc) override { return pc == 0x3000; }
  int leaf_questions = 0;
};

std::string Collapsed(const StackFolder& folder,
                      const absl::flat_hash_map<uint32_t, std::string>& names = {}) {
  Profile profile;
  folder.AddTo(profile, [&](uint32_t tid) {
    auto it = names.find(tid);
    return it == names.end() ? std::string() : it->second;
  });
  return ToCollapsedString(profile);
}

void Name(StackFolder& folder, const absl::flat_hash_map<uint64_t, std::string>& names) {
  for (uint64_t address : folder.TakeUnnamed()) {
    auto it = names.find(address);
    if (it != names.end()) folder.SetName(address, FrameName{it->second, FrameKind::kUser});
  }
}

TEST(StackFolderTest, FoldsEqualStacksAndStepsReturnAddressesIntoTheirCall) {
  StackFolder folder(StackFolderOptions{});
  const uint64_t pcs[] = {0x2000, 0x5101, 0x5201};  // leaf, caller, root
  RawSample s;
  s.pcs = pcs;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(folder.Add(s));
  Name(folder, {{0x2000, "leaf"}, {0x5100, "caller"}, {0x5200, "main"}});
  EXPECT_EQ(folder.samples(), 3u);
  EXPECT_EQ(folder.distinct_stacks(), 1u);
  EXPECT_EQ(Collapsed(folder), "main;caller;leaf 3\n");
}

TEST(StackFolderTest, PutsBackTheCallerOfAFramelessLeaf) {
  HandLaidCode code;
  LeafRepair repair(&code);
  StackFolder folder(StackFolderOptions{}, &repair);
  const uint64_t pcs[] = {0x1000, 0x5201};        // the walk skipped the caller
  const uint64_t words[] = {0x11, 0x22, 0x5101};  // its return address: word 2
  RawSample s;
  s.pcs = pcs;
  s.stack_words = words;
  folder.Add(s);
  folder.Add(s);
  Name(folder, {{0x1000, "leaf"}, {0x5100, "caller"}, {0x5200, "main"}});
  EXPECT_EQ(Collapsed(folder), "main;caller;leaf 2\n");
  // The rule was asked once: answers about code are cached.
  EXPECT_EQ(code.leaf_questions, 1);
}

TEST(StackFolderTest, LeavesAFrameKeepingLeafAndShortStackCopiesAlone) {
  HandLaidCode code;
  LeafRepair repair(&code);
  StackFolder folder(StackFolderOptions{}, &repair);
  const uint64_t kept[] = {0x2000, 0x5201};
  const uint64_t words[] = {0x5101, 0x5101, 0x5101};
  RawSample s;
  s.pcs = kept;
  s.stack_words = words;
  folder.Add(s);
  // Frameless, but the copy holds only two words: nothing to put back.
  const uint64_t frameless[] = {0x1000, 0x5201};
  s.pcs = frameless;
  s.stack_words = absl::MakeConstSpan(words, 2);
  folder.Add(s);
  Name(folder, {{0x1000, "leaf"}, {0x2000, "kept"}, {0x5100, "caller"}, {0x5200, "main"}});
  const std::string out = Collapsed(folder);
  EXPECT_THAT(out, HasSubstr("main;kept 1\n"));
  EXPECT_THAT(out, HasSubstr("main;leaf 1\n"));
  EXPECT_THAT(out, Not(HasSubstr("caller")));
}

TEST(StackFolderTest, SystemCallWrapperGetsItsCallerUnlessTheWalkHasIt) {
  HandLaidCode code;
  LeafRepair repair(&code);
  StackFolder folder(StackFolderOptions{}, &repair);
  const uint64_t words[] = {0x42, 0x5101, 0x5301};
  const uint64_t skipped[] = {0x3000, 0x5201};
  RawSample s;
  s.pcs = skipped;
  s.stack_words = words;
  folder.Add(s);
  // The walk already found 0x5101 after the wrapper: no second copy.
  const uint64_t whole[] = {0x3000, 0x5101, 0x5201};
  s.pcs = whole;
  folder.Add(s);
  Name(folder, {{0x3000, "read"}, {0x5100, "caller"}, {0x5200, "main"}});
  EXPECT_EQ(Collapsed(folder), "main;caller;read 2\n");
}

TEST(StackFolderTest, KernelFramesAreExactAtTheirLeafAndRepairStartsAtTheUserLeaf) {
  HandLaidCode code;
  LeafRepair repair(&code);
  StackFolder folder(StackFolderOptions{}, &repair);
  const uint64_t k = uint64_t{0xffffffff81000000};
  // kernel leaf (exact), kernel return address, user leaf (exact), user root.
  const uint64_t pcs[] = {k + 0x10, k + 0x21, 0x1000, 0x5201};
  const uint64_t words[] = {0, 0, 0x5101};
  RawSample s;
  s.pcs = pcs;
  s.user_leaf = 2;
  s.stack_words = words;
  folder.Add(s);
  std::vector<uint64_t> unnamed = folder.TakeUnnamed();
  EXPECT_THAT(unnamed, ::testing::ElementsAre(k + 0x10, k + 0x20, 0x1000, 0x5100, 0x5200));
  // Never named: kernel addresses stay kernel frames, user ones unknown.
  Profile profile;
  folder.AddTo(profile, nullptr);
  EXPECT_EQ(ToCollapsedString(profile),
            "0x5200;0x5100;0x1000;0xffffffff81000020_[k];0xffffffff81000010_[k] 1\n");
}

TEST(StackFolderTest, ThreadRootsHaveOneSpellingAndGarbageNeverBecomesAThread) {
  StackFolder folder(StackFolderOptions{/*per_thread=*/true});
  // A return address with bit 62 set, as a corrupt frame-pointer chain
  // gives: attach mode once took such words for thread keys.
  const uint64_t pcs[] = {0x2000, 0x6418ec8348d38948};
  RawSample s;
  s.pcs = pcs;
  s.tid = 7;
  folder.Add(s);
  s.tid = 8;
  folder.Add(s);
  Name(folder, {{0x2000, "work"}});
  const std::string out = Collapsed(folder, {{7, "worker"}});
  EXPECT_THAT(out, HasSubstr("[worker tid=7];0x6418ec8348d38947;work 1\n"));
  EXPECT_THAT(out, HasSubstr("[tid=8];0x6418ec8348d38947;work 1\n"));
  EXPECT_EQ(folder.threads(), 2u);
}

TEST(StackFolderTest, TruncationAndThreadStatesAreFramesOfTheirOwn) {
  StackFolder folder(StackFolderOptions{/*per_thread=*/true});
  folder.set_remember_blocked(true);
  const uint64_t pcs[] = {0x2000, 0x5201};
  RawSample s;
  s.pcs = pcs;
  s.tid = 3;
  s.truncated = true;
  s.state = SyscallState(202);  // futex on x86-64
  folder.Add(s);
  EXPECT_TRUE(folder.RepeatLast(3, 4));
  EXPECT_FALSE(folder.RepeatLast(4, 1));  // no blocked sample of thread 4
  s.truncated = false;
  s.state = kRunningState;
  folder.Add(s);
  Name(folder, {{0x2000, "wait"}, {0x5200, "main"}});
  const std::string out = Collapsed(folder, {{3, "w"}});
#if defined(__x86_64__)
  EXPECT_THAT(out, HasSubstr("[w tid=3];[truncated];main;wait;[syscall futex]_[k] 5\n"));
#endif
  EXPECT_THAT(out, HasSubstr("[w tid=3];main;wait;[running] 1\n"));
  EXPECT_EQ(folder.samples(), 6u);
}

TEST(StackFolderTest, HandsOutEachAddressOnceAndAgainAfterForgetNames) {
  StackFolder folder(StackFolderOptions{});
  const uint64_t pcs[] = {0x2000, 0x5201};
  RawSample s;
  s.pcs = pcs;
  folder.Add(s);
  EXPECT_EQ(folder.TakeUnnamed().size(), 2u);
  folder.Add(s);
  EXPECT_TRUE(folder.TakeUnnamed().empty());
  folder.ForgetNames();
  EXPECT_EQ(folder.TakeUnnamed().size(), 2u);
}

TEST(StackFolderTest, RefusesAnEmptySample) {
  StackFolder folder(StackFolderOptions{});
  EXPECT_FALSE(folder.Add(RawSample{}));
  EXPECT_EQ(folder.samples(), 0u);
}

}  // namespace
}  // namespace flamekit
