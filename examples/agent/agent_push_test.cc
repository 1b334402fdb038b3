// SPDX-License-Identifier: Apache-2.0
// FLAMEKIT_PUSH under the real agent: push_workload runs with
// LD_PRELOAD=libflamekit_agent.so and pushes 1 s windows to a loopback
// /ingest receiver in this test (trigger/test_ingest_receiver.h). Checks
// the labels, the time ranges, the hot function (our pprof reader, and
// `go tool pprof -raw`, skipped without Go), that no file is left; then,
// against a receiver that never answers, the program's pace (against a
// healthy receiver's run) and how long its exit takes; then bad settings.
// ~15 s.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/profile/pprof_reader.h"
#include "flamekit/testing/profiler_test_util.h"
#include "flamekit/trigger/test_ingest_receiver.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::SamplesWith;
using ::flamekit::trigger_testing::IngestBehaviour;
using ::flamekit::trigger_testing::IngestReceiver;
using ::flamekit::trigger_testing::IngestRequest;
using ::flamekit::trigger_testing::PprofRaw;
using ::flamekit::trigger_testing::TestDir;
using ::testing::HasSubstr;

std::string Runfile(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/flamekit/", path);
}

struct AgentRun {
  pid_t pid = 0;
  int exit_status = -1;
  uint64_t rounds = 0;
  double seconds = 0;             // the spin's length
  absl::Duration exit_delay;      // from "rounds" printed to the process gone
  std::string out, err;
};

// Reads `fd` to EOF (or until `deadline`) into *text.
void Drain(int fd, std::string* text, absl::Time deadline) {
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    text->append(buf, n);
  }
}

// Runs push_workload SECONDS under the agent with `env` added; every bound
// is 20 s (then the child is killed and the test fails).
AgentRun RunUnderAgent(double seconds, std::vector<std::string> env) {
  AgentRun run;
  run.seconds = seconds;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return run;
  env.push_back(absl::StrCat("LD_PRELOAD=", Runfile("examples/agent/libflamekit_agent.so")));
  env.push_back("FLAMEKIT_INTERVAL=5ms");
  env.push_back(absl::StrCat("HOME=", TestDir()));
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string path = Runfile("examples/agent/push_workload");
  std::string arg = absl::StrCat(seconds);
  char* argv[] = {path.data(), arg.data(), nullptr};
  run.pid = fork();
  if (run.pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    if (chdir(TestDir().c_str()) != 0) _exit(126);
    execve(path.c_str(), argv, envp.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  // stdout: "rounds N" is the last thing main() does before returning.
  while (absl::Now() < deadline && !absl::StrContains(run.out, "\n")) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof(buf));
    if (n <= 0) break;
    run.out.append(buf, n);
  }
  const absl::Time printed = absl::Now();
  int status = 0;
  while (absl::Now() < deadline) {
    pid_t r = waitpid(run.pid, &status, WNOHANG);
    if (r == run.pid) {
      run.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  run.exit_delay = absl::Now() - printed;
  if (run.exit_status == -1) {
    kill(run.pid, SIGKILL);
    waitpid(run.pid, &status, 0);
  }
  Drain(err[0], &run.err, absl::Now() + absl::Seconds(2));
  close(out[0]);
  close(err[0]);
  absl::string_view line = absl::StripAsciiWhitespace(run.out);
  if (absl::ConsumePrefix(&line, "rounds ")) (void)absl::SimpleAtoi(line, &run.rounds);
  return run;
}

std::string Describe(const AgentRun& r) {
  return absl::StrCat("exit ", r.exit_status, " after ", absl::FormatDuration(r.exit_delay),
                      "\nstdout: ", r.out, "\nstderr: ", r.err);
}

TEST(AgentPushTest, PushesWindowsWithLabelsAndTheHotFunction) {
  IngestReceiver receiver;
  const int64_t t0 = absl::ToUnixSeconds(absl::Now());
  AgentRun r = RunUnderAgent(2.5, {"FLAMEKIT_PUSH=" + receiver.Url() + "/pyro", "FLAMEKIT_PUSH_EVERY=1s",
                              "FLAMEKIT_APP=pushwork", "FLAMEKIT_LABELS=team=core, env=test"});
  const int64_t t1 = absl::ToUnixSeconds(absl::Now()) + 1;
  ASSERT_EQ(r.exit_status, 0) << Describe(r);
  std::vector<IngestRequest> got = receiver.got();
  // Two full windows and the last ~0.5 s, sent at exit.
  ASSERT_GE(got.size(), 2u) << Describe(r);
  EXPECT_LE(got.size(), 4u) << Describe(r);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(got.size(), " windows sent, 0 dropped, 0 failed")))
      << Describe(r);
  uint64_t hot = 0, total = 0;
  int64_t previous_until = 0;
  bool skip = false;
  for (size_t i = 0; i < got.size(); ++i) {
    IngestRequest& q = got[i];
    SCOPED_TRACE(absl::StrCat("window ", i));
    EXPECT_EQ(q.path, "/pyro/ingest");  // the URL's path is a prefix
    EXPECT_EQ(q.params["format"], "pprof");
    const std::string& name = q.params["name"];
    EXPECT_THAT(name, ::testing::StartsWith("pushwork{"));
    EXPECT_THAT(name, HasSubstr(absl::StrCat("pid=", r.pid)));
    EXPECT_THAT(name, HasSubstr("team=core"));
    EXPECT_THAT(name, HasSubstr("env=test"));
    EXPECT_THAT(name, ::testing::ContainsRegex("build_id=[0-9a-f]{40}"));
    EXPECT_THAT(name, ::testing::ContainsRegex("host=[^,}]+"));
    int64_t from = 0, until = 0;
    ASSERT_TRUE(absl::SimpleAtoi(q.params["from"], &from));
    ASSERT_TRUE(absl::SimpleAtoi(q.params["until"], &until));
    EXPECT_GE(from, t0);
    EXPECT_LE(until, t1);
    EXPECT_LE(until - from, 2);
    EXPECT_GE(from, previous_until) << "windows overlap";
    previous_until = until;
    absl::StatusOr<Profile> window = ParsePprof(q.body, "window");
    ASSERT_TRUE(window.ok()) << window.status();
    hot += SamplesWith(*window, "hot_spin");
    total += window->total_samples();
    if (i == 0) {
      std::string raw = PprofRaw(q.body, TestDir(), "agent0.pb.gz", &skip);
      if (!skip) {
        EXPECT_THAT(raw, HasSubstr("hot_spin")) << raw;
      }
    }
  }
  // 2.5 s of CPU at 5 ms: ~500 samples, nearly all in the spin.
  EXPECT_GT(total, 100u);
  EXPECT_GT(hot, total * 8 / 10) << hot << " of " << total;
  // Pushing and no FLAMEKIT_OUTPUT: no file.
  EXPECT_NE(access(absl::StrCat(TestDir(), "/flamekit-", r.pid, ".html").c_str(), F_OK), 0);
  if (skip) GTEST_SKIP() << "all checked but `go tool pprof`: apt-get install golang-go";
}

TEST(AgentPushTest, HungReceiverNeitherSlowsTheProgramNorHoldsItsExit) {
  IngestReceiver healthy;
  AgentRun fine = RunUnderAgent(3.2, {"FLAMEKIT_PUSH=" + healthy.Url(), "FLAMEKIT_PUSH_EVERY=1s"});
  ASSERT_EQ(fine.exit_status, 0) << Describe(fine);
  EXPECT_THAT(fine.err, HasSubstr("0 dropped, 0 failed")) << Describe(fine);
  IngestBehaviour behaviour;
  behaviour.hang = true;
  IngestReceiver hung(behaviour);
  AgentRun slow = RunUnderAgent(3.2, {"FLAMEKIT_PUSH=" + hung.Url(), "FLAMEKIT_PUSH_EVERY=1s"});
  ASSERT_EQ(slow.exit_status, 0) << Describe(slow);
  EXPECT_GE(hung.seen(), 1) << "the first window was sent and held";
  EXPECT_THAT(slow.err, HasSubstr("0 windows sent")) << Describe(slow);
  const double ratio = static_cast<double>(slow.rounds) / fine.rounds;
  std::printf("push_workload rounds: %llu healthy, %llu hung receiver: ratio %.2f; exit took "
              "%.0f ms healthy, %.0f ms hung\n",
              static_cast<unsigned long long>(fine.rounds),
              static_cast<unsigned long long>(slow.rounds), ratio,
              absl::ToDoubleMilliseconds(fine.exit_delay),
              absl::ToDoubleMilliseconds(slow.exit_delay));
  // Loose (a shared 2-core machine): a program that waited on the network
  // would lose most of its pace, not 30 %.
  EXPECT_GT(ratio, 0.7) << Describe(fine) << Describe(slow);
  // Exit: the last window's Dump and encoding, 1 s stop_wait, the hung
  // send aborted, the profiler stopped (the healthy run's exit shows what
  // the rest costs).
  EXPECT_LT(slow.exit_delay, absl::Milliseconds(2500)) << Describe(slow);
  EXPECT_LT(slow.exit_delay - fine.exit_delay, absl::Milliseconds(1500))
      << Describe(fine) << Describe(slow);
}

TEST(AgentPushTest, BadSettingsLeaveTheProgramRunningUnprofiled) {
  struct Case {
    std::vector<std::string> env;
    const char* message;
  } cases[] = {
      {{"FLAMEKIT_PUSH=ftp://127.0.0.1:1"}, "FLAMEKIT_PUSH: bad push URL"},
      {{"FLAMEKIT_PUSH=http://127.0.0.1:1/?a=b"}, "it has a query"},
      {{"FLAMEKIT_PUSH=http://127.0.0.1:1", "FLAMEKIT_PUSH_EVERY=soon"}, "FLAMEKIT_PUSH_EVERY"},
      {{"FLAMEKIT_PUSH=http://127.0.0.1:1", "FLAMEKIT_PUSH_EVERY=100ms"}, "outside 1s..1h"},
      {{"FLAMEKIT_PUSH=http://127.0.0.1:1", "FLAMEKIT_LABELS=team"}, "FLAMEKIT_LABELS: 'team'"},
      {{"FLAMEKIT_PUSH=http://127.0.0.1:1", "FLAMEKIT_LABELS=a=x}"}, "FLAMEKIT_LABELS"},
      {{"FLAMEKIT_LABELS=a=b"}, "goes with FLAMEKIT_PUSH"},
  };
  for (const Case& c : cases) {
    AgentRun r = RunUnderAgent(0.1, c.env);
    EXPECT_EQ(r.exit_status, 0) << Describe(r);
    EXPECT_GT(r.rounds, 0u) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr(c.message)) << Describe(r);
    EXPECT_THAT(r.err, HasSubstr("not profiling")) << Describe(r);
  }
}

}  // namespace
}  // namespace flamekit
