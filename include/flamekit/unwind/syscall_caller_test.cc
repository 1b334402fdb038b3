// SPDX-License-Identifier: Apache-2.0
// The checks that find a system call wrapper's caller, on real code: libc's
// getppid() and this test's own calls.

#include "flamekit/unwind/syscall_caller.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace flamekit {
namespace {

TEST(ReadOwnMemoryTest, ReadsMappedMemoryAndFailsOnUnmapped) {
  uint64_t value = 0x1122334455667788, copy = 0;
  EXPECT_TRUE(ReadOwnMemory(reinterpret_cast<uint64_t>(&value), &copy, sizeof(copy)));
  EXPECT_EQ(copy, value);
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  EXPECT_FALSE(ReadOwnMemory(reinterpret_cast<uint64_t>(page), &copy, sizeof(copy)));
  munmap(page, 4096);
  EXPECT_FALSE(ReadOwnMemory(0, &copy, sizeof(copy)));
}

#if defined(__x86_64__)
TEST(IsSystemCallSiteTest, FindsTheSyscallInLibcGetppid) {
  // A wrapper no sanitizer intercepts (their read() is their own code).
  const uint8_t* code = reinterpret_cast<const uint8_t*>(&getppid);
  uint64_t site = 0;
  for (int i = 0; i + 1 < 256 && site == 0; ++i) {
    if (code[i] == 0x0f && code[i + 1] == 0x05) site = reinterpret_cast<uint64_t>(code + i);
  }
  ASSERT_NE(site, 0u) << "no syscall instruction in the first 256 bytes of getppid()";
  EXPECT_TRUE(IsSystemCallSite(site + 2)) << "after the instruction";
  EXPECT_TRUE(IsSystemCallSite(site)) << "on it (a restarted call)";
  EXPECT_FALSE(IsSystemCallSite(site + 4));
  EXPECT_FALSE(IsSystemCallSite(0));
}

__attribute__((noinline)) uint64_t ReturnAddressOfThisCall() {
  uint64_t r = reinterpret_cast<uint64_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
  return r;
}

TEST(FollowsCallInstructionTest, TrueForReturnAddressesFalseForData) {
  const uint64_t direct = ReturnAddressOfThisCall();
  EXPECT_TRUE(FollowsCallInstruction(direct));
  uint64_t (*volatile indirect_fn)() = &ReturnAddressOfThisCall;
  EXPECT_TRUE(FollowsCallInstruction(indirect_fn())) << "an indirect call";
  static const uint8_t data[16] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90};
  EXPECT_FALSE(FollowsCallInstruction(reinterpret_cast<uint64_t>(data + 8)));
  EXPECT_FALSE(FollowsCallInstruction(3));
}
#endif

}  // namespace
}  // namespace flamekit
