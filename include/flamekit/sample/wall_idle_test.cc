// SPDX-License-Identifier: Apache-2.0
// The pure parts of the wall engine's idle detection: the signal value's
// encoding, the kernel's /proc/TID/syscall text, and the mark's seqlock as
// seen from one thread. The engine itself is tested in sampler_test.cc and
// profiler_test.cc with real blocked threads.

#include "flamekit/sample/wall_idle.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace flamekit {
namespace {

TEST(WallSignalValueTest, CarriesSlotAndSequenceAndIsRecognised) {
  uintptr_t value = WallSignalValue(4095, 0xbeef);
  EXPECT_TRUE(IsWallSignalValue(value));
  EXPECT_EQ((value >> 16) & 0xffff, 4095u);
  EXPECT_EQ(value & 0xffff, 0xbeefu);
  EXPECT_FALSE(IsWallSignalValue(0x666b63746d));  // another cookie
  EXPECT_FALSE(IsWallSignalValue(0));
}

TEST(ParseSyscallSiteTest, BlockedCallGivesItsArgumentsAndWhereItWasMade) {
  SyscallSite site;
  ASSERT_TRUE(ParseSyscallSite(
      "202 0x7ffd20935e28 0x189 0x0 0x0 0x0 0xffffffff 0x7f6864738d90 0x7f68648a3f16\n",
      &site));
  EXPECT_EQ(site.number, 202);
  EXPECT_EQ(site.args[0], 0x7ffd20935e28u);
  EXPECT_EQ(site.args[1], 0x189u);
  EXPECT_EQ(site.args[5], 0xffffffffu);
  EXPECT_EQ(site.sp, 0x7f6864738d90u);
  EXPECT_EQ(site.site, 0x7f68648a3f16u - kSyscallInstructionBytes);
}

TEST(ParseSyscallSiteTest, RunningOrNotInACallOrGarbageIsNotASite) {
  SyscallSite site;
  EXPECT_FALSE(ParseSyscallSite("running\n", &site));
  EXPECT_FALSE(ParseSyscallSite("-1 0x7ffd20935e28 0x7f68648a3f16\n", &site));
  EXPECT_FALSE(ParseSyscallSite("", &site));
  EXPECT_FALSE(ParseSyscallSite("202 0x1 0x2 0x3 0x4 0x5 0x6 zz 0x7f68648a3f16", &site));
  EXPECT_FALSE(ParseSyscallSite("202 0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x1", &site));
}

// The handler and the kernel must describe one blocked call the same way:
// a real thread blocked in read() is signalled, its mark compared with
// what /proc says afterwards.
TEST(WallMarkTest, HandlerMarkMatchesTheKernelsViewOfTheSameCall) {
  static std::atomic<bool> noted{false};
  struct sigaction action = {};
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  action.sa_sigaction = [](int, siginfo_t* info, void* ucontext) {
    MachineRegisters regs;
    int32_t number = -1;
    bool restarting = false;
    if (!ReadMachineRegisters(ucontext, &regs)) return;
    bool blocked = InterruptedSystemCall(ucontext, &number, &restarting);
    NoteWallSample(reinterpret_cast<uintptr_t>(info->si_value.sival_ptr), blocked,
                   restarting, regs, ucontext);
    noted = true;
  };
  struct sigaction previous;
  ASSERT_EQ(sigaction(SIGUSR2, &action, &previous), 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<pid_t> tid{0};
  std::thread reader([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    char c;
    ASSERT_EQ(read(fds[0], &c, 1), 1);  // restarted after the handler
  });
  while (tid.load() == 0) std::this_thread::yield();
  const std::string path = "/proc/self/task/" + std::to_string(tid.load()) + "/syscall";
  auto read_site = [&](SyscallSite* site) {
    // "running" until the thread is blocked.
    for (int attempt = 0; attempt < 400; ++attempt) {
      std::ifstream file(path);
      std::stringstream content;
      content << file.rdbuf();
      if (ParseSyscallSite(content.str(), site)) return true;
      if (content.str().empty()) return false;
      usleep(5000);
    }
    return false;
  };
  SyscallSite before;
  bool readable = read_site(&before);
  if (readable) {
    siginfo_t info = {};
    info.si_signo = SIGUSR2;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_ptr = reinterpret_cast<void*>(WallSignalValue(9, 5));
    ASSERT_EQ(syscall(SYS_rt_tgsigqueueinfo, getpid(), tid.load(), SIGUSR2, &info), 0);
    while (!noted.load()) std::this_thread::yield();
  }
  SyscallSite after;
  bool still_blocked = readable && read_site(&after);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  reader.join();
  close(fds[0]);
  close(fds[1]);
  sigaction(SIGUSR2, &previous, nullptr);
  if (!readable) GTEST_SKIP() << path << " is not readable here";
  EXPECT_EQ(before.number, SYS_read);
  ASSERT_TRUE(still_blocked);
  WallMarkSnapshot mark;
  ASSERT_TRUE(ReadWallMark(9, &mark));
  EXPECT_EQ(mark.sequence, 5);
  EXPECT_TRUE(SameBlockedCall(mark, before));
  EXPECT_TRUE(SameBlockedCall(mark, after));
  // Another call, or the same call with another argument, is not the same.
  SyscallSite other = after;
  other.args[0] += 1;
  EXPECT_FALSE(SameBlockedCall(mark, other));
  other = after;
  other.sp += 16;
  EXPECT_FALSE(SameBlockedCall(mark, other));
}

TEST(WallMarkTest, RunningThreadLeavesNoSiteAndForeignValuesTouchNothing) {
  MachineRegisters regs{0x1000, 0x2000, 0x3000};  // pc, fp, sp
  NoteWallSample(WallSignalValue(7, 43), /*blocked=*/false, false, regs, nullptr);
  WallMarkSnapshot mark;
  ASSERT_TRUE(ReadWallMark(7, &mark));
  EXPECT_EQ(mark.sequence, 43);
  EXPECT_EQ(mark.site, 0u);
  SyscallSite any;
  EXPECT_FALSE(SameBlockedCall(mark, any));

  NoteWallSample(0x1234, true, true, regs, nullptr);
  NoteWallSample(WallSignalValue(kNoWallSlot, 1), true, true, regs, nullptr);
  ASSERT_TRUE(ReadWallMark(7, &mark));
  EXPECT_EQ(mark.sequence, 43);
  EXPECT_FALSE(ReadWallMark(kNoWallSlot, &mark));
}

}  // namespace
}  // namespace flamekit
