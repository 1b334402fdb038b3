// SPDX-License-Identifier: Apache-2.0
// Thread discovery as the profiler's collector relies on it: real threads
// appear in and leave the listing, carry their names, and a thread that
// starts after another exited (same thread count) is still noticed.

#include "flamekit/sample/thread_list.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace flamekit {
namespace {

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

bool Listed(pid_t tid) {
  absl::StatusOr<std::vector<pid_t>> tids = ListThreadIds();
  EXPECT_TRUE(tids.ok()) << tids.status();
  return tids.ok() && std::find(tids->begin(), tids->end(), tid) != tids->end();
}

TEST(ListThreadIdsTest, ListsLiveThreadsAndForgetsJoinedOnes) {
  EXPECT_TRUE(Listed(Tid()));
  std::atomic<pid_t> tid{0};
  std::atomic<bool> release{false};
  std::thread thread([&] {
    pthread_setname_np(pthread_self(), "fk-list-test");
    tid = Tid();
    while (!release.load()) std::this_thread::yield();
  });
  while (tid.load() == 0) std::this_thread::yield();
  EXPECT_TRUE(Listed(tid.load()));
  EXPECT_EQ(ReadThreadName(tid.load()), "fk-list-test");
  release = true;
  thread.join();
  EXPECT_FALSE(Listed(tid.load()));
  EXPECT_EQ(ReadThreadName(tid.load()), "");
}

TEST(ListThreadIdsTest, UnreadableDirectoryIsAnErrorThatSaysWhatToDo) {
  absl::StatusOr<std::vector<pid_t>> tids = ListThreadIds("/nonexistent/task");
  ASSERT_FALSE(tids.ok());
  EXPECT_NE(tids.status().message().find("/proc mounted"), absl::string_view::npos);
}

TEST(ThreadNameMatchesTest, ShellGlobs) {
  EXPECT_TRUE(ThreadNameMatches("worker-*", "worker-12"));
  EXPECT_TRUE(ThreadNameMatches("io?", "io3"));
  EXPECT_FALSE(ThreadNameMatches("io?", "io12"));
  EXPECT_FALSE(ThreadNameMatches("worker-*", "main"));
}

TEST(TaskCreationWatchTest, NoticesAThreadThatReplacedAnotherAtTheSameCount) {
  TaskCreationWatch watch;
  if (!watch.available()) GTEST_SKIP() << "/proc/sys/kernel/ns_last_pid cannot be read here";
  std::thread([] {}).join();
  watch.Changed();  // whatever happened so far
  const size_t before = ListThreadIds()->size();
  std::thread([] {}).join();
  ASSERT_EQ(ListThreadIds()->size(), before);  // the count cannot tell
  EXPECT_TRUE(watch.Changed());
}

TEST(TaskCreationWatchTest, QuietWhenNothingWasCreated) {
  TaskCreationWatch watch;
  if (!watch.available()) GTEST_SKIP() << "/proc/sys/kernel/ns_last_pid cannot be read here";
  // Other processes on the machine fork too (tests run in parallel), so
  // look for one quiet pair of calls among many rather than asserting one.
  bool quiet = false;
  for (int i = 0; i < 1000 && !quiet; ++i) {
    watch.Changed();
    quiet = !watch.Changed();
  }
  EXPECT_TRUE(quiet) << "Changed() never returned false";
}

}  // namespace
}  // namespace flamekit

namespace flamekit {
namespace {

TEST(ThreadNameFilterTest, IncludeSelectsExcludeWins) {
  ThreadNameFilter all({}, {});
  EXPECT_TRUE(all.Wants("anything"));
  ThreadNameFilter some({"worker-*", "io"}, {"worker-9"});
  EXPECT_TRUE(some.Wants("worker-1"));
  EXPECT_TRUE(some.Wants("io"));
  EXPECT_FALSE(some.Wants("worker-9"));  // excluded though included
  EXPECT_FALSE(some.Wants("main"));      // not included
  ThreadNameFilter none_but({}, {"gc*"});
  EXPECT_FALSE(none_but.Wants("gc-thread"));
  EXPECT_TRUE(none_but.Wants("main"));
}

}  // namespace
}  // namespace flamekit
