// SPDX-License-Identifier: Apache-2.0
#include "flamekit/perf/perf_ring.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "flamekit/perf/perf_event.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;

pid_t GetTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

__attribute__((noinline)) void BurnCpu(int ms) {
  int64_t end = ThreadCpuNanos() + int64_t{ms} * 1000000;
  volatile uint64_t sink = 0;
  while (ThreadCpuNanos() < end) {
    for (int i = 0; i < 20000; ++i) sink = sink + i;
  }
}

struct CollectingSink : PerfRecordSink {
  void OnSample(const PerfSample& s) override {
    samples.push_back(s);
    chains.emplace_back(s.callchain.begin(), s.callchain.end());
    samples.back().callchain = {};
  }
  void OnMmap(const PerfMmapRecord& m) override { mmaps.emplace_back(m.filename); }
  void OnComm(const PerfCommRecord& c) override { comms.emplace_back(c.comm); }
  void OnTask(const PerfTaskRecord& t) override { tasks.push_back(t); }
  void OnLost(uint64_t n) override { lost += n; }
  std::vector<PerfSample> samples;
  std::vector<std::vector<uint64_t>> chains;
  std::vector<std::string> mmaps;
  std::vector<std::string> comms;
  std::vector<PerfTaskRecord> tasks;
  uint64_t lost = 0;
};

class PerfRingTest : public ::testing::Test {
 protected:
  // Opens cpu-clock on this thread with the given period and side-band
  // records; skips the test when perf events are not allowed here.
  void OpenSelf(absl::Duration period, bool side_band) {
    PerfEventOptions options;
    options.period = PerfPeriod::Interval(period);
    options.record_mmap = side_band;
    options.record_comm = side_band;
    options.record_task = side_band;
    options.exclude_kernel = true;
    absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
    if (!fd.ok()) {
      skip_reason_ = fd.status().ToString();
      return;
    }
    fd_ = std::move(*fd);
    sample_type_ = options.sample_type;
  }
  ScopedFd fd_;
  uint64_t sample_type_ = 0;
  std::string skip_reason_;
};

#define SKIP_IF_NO_PERF() \
  if (!fd_) GTEST_SKIP() << skip_reason_

TEST_F(PerfRingTest, RejectsBadGeometryAndSampleType) {
  EXPECT_THAT(PerfRing::Map(-1, 3, kDefaultPerfSampleType),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("power of two")));
  EXPECT_THAT(PerfRing::Map(-1, 8, kDefaultPerfSampleType | PERF_SAMPLE_READ),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CheckSampleType(kDefaultPerfSampleType), IsOk());
}

TEST_F(PerfRingTest, ReadsOwnSamplesWithCallchains) {
  OpenSelf(absl::Milliseconds(1), /*side_band=*/false);
  SKIP_IF_NO_PERF();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfRing ring, PerfRing::Map(fd_.get(), 64, sample_type_));
  CollectingSink sink;
  int64_t cpu0 = ThreadCpuNanos();
  BurnCpu(200);
  int64_t cpu_ms = (ThreadCpuNanos() - cpu0) / 1000000;
  // Stopped before reading, or a sample taken after Read() (this loop is
  // slow under ASan) would be left pending.
  ASSERT_EQ(ioctl(fd_.get(), PERF_EVENT_IOC_DISABLE, 0), 0);
  PerfRecordCounts counts = ring.Read(sink);
  EXPECT_EQ(counts.malformed, 0u);
  EXPECT_EQ(counts.samples, sink.samples.size());
  // 1 ms period over cpu_ms of CPU: allow for startup and rounding.
  EXPECT_GE(sink.samples.size(), static_cast<size_t>(cpu_ms * 0.7)) << "cpu_ms=" << cpu_ms;
  EXPECT_LE(sink.samples.size(), static_cast<size_t>(cpu_ms * 1.1 + 5));
  uint64_t last_time = 0;
  for (size_t i = 0; i < sink.samples.size(); ++i) {
    const PerfSample& s = sink.samples[i];
    EXPECT_EQ(s.pid, static_cast<uint32_t>(getpid()));
    EXPECT_EQ(s.tid, static_cast<uint32_t>(GetTid()));
    EXPECT_GE(s.time, last_time);
    last_time = s.time;
    // The chain starts with the user context marker and then the sampled IP.
    std::vector<uint64_t> frames;
    bool any_kernel = false;
    ForEachCallchainFrame(sink.chains[i], [&](uint64_t a, bool k) {
      frames.push_back(a);
      any_kernel |= k;
    });
    ASSERT_FALSE(frames.empty());
    EXPECT_EQ(frames[0], s.ip);
    EXPECT_FALSE(any_kernel);
  }
  EXPECT_EQ(ring.pending_bytes(), 0u);
  EXPECT_EQ(ring.totals().samples, counts.samples);
}

TEST_F(PerfRingTest, WrapsAroundWithoutLosingRecords) {
  OpenSelf(absl::Milliseconds(1), /*side_band=*/false);
  SKIP_IF_NO_PERF();
  // One data page holds a few dozen samples: reading every 10 ms of CPU
  // makes the records wrap around the end of the buffer many times.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfRing ring, PerfRing::Map(fd_.get(), 1, sample_type_));
  CollectingSink sink;
  int64_t cpu0 = ThreadCpuNanos();
  for (int i = 0; i < 30; ++i) {
    BurnCpu(10);
    ring.Read(sink);
  }
  int64_t cpu_ms = (ThreadCpuNanos() - cpu0) / 1000000;
  ring.Read(sink);
  EXPECT_EQ(ring.totals().malformed, 0u);
  EXPECT_GT(ring.totals().bytes, 4 * ring.data_size()) << "did not wrap";
  EXPECT_EQ(sink.lost, 0u);
  EXPECT_GE(sink.samples.size(), static_cast<size_t>(cpu_ms * 0.7)) << "cpu_ms=" << cpu_ms;
  for (const PerfSample& s : sink.samples) {
    EXPECT_EQ(s.tid, static_cast<uint32_t>(GetTid()));
  }
}

TEST_F(PerfRingTest, CountsLostRecordsWhenFull) {
  OpenSelf(absl::Microseconds(100), /*side_band=*/false);
  SKIP_IF_NO_PERF();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfRing ring, PerfRing::Map(fd_.get(), 1, sample_type_));
  BurnCpu(200);  // ~2000 samples into a ring that holds a few dozen
  CollectingSink sink;
  ring.Read(sink);
  BurnCpu(5);  // the kernel writes PERF_RECORD_LOST once there is room again
  ring.Read(sink);
  EXPECT_GT(ring.lost_samples(), 100u);
  EXPECT_EQ(ring.lost_samples(), sink.lost);
  EXPECT_GE(ring.totals().lost_records, 1u);
  EXPECT_GT(sink.samples.size(), 0u);
}

TEST_F(PerfRingTest, SeesMmapCommAndThreadRecords) {
  OpenSelf(absl::Milliseconds(10), /*side_band=*/true);
  SKIP_IF_NO_PERF();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfRing ring, PerfRing::Map(fd_.get(), 16, sample_type_));
  // An executable mapping of a named file.
  char path[] = "/tmp/perf_ring_test_XXXXXX";
  int file = mkstemp(path);
  ASSERT_GE(file, 0);
  ASSERT_EQ(ftruncate(file, 4096), 0);
  void* m = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, file, 0);
  ASSERT_NE(m, MAP_FAILED);
  // A new thread name, and a thread created and joined by this thread.
  char old_name[16] = {};
  prctl(PR_GET_NAME, old_name);
  prctl(PR_SET_NAME, "ringtest-name");
  prctl(PR_SET_NAME, old_name);
  std::atomic<pid_t> child_tid{0};
  std::thread t([&] { child_tid = GetTid(); });
  t.join();
  CollectingSink sink;
  ring.Read(sink);
  munmap(m, 4096);
  close(file);
  unlink(path);
  EXPECT_THAT(sink.mmaps, ::testing::Contains(std::string(path)));
  EXPECT_THAT(sink.comms, ::testing::Contains(std::string("ringtest-name")));
  bool saw_fork = false;
  for (const PerfTaskRecord& task : sink.tasks) {
    if (!task.is_exit && task.tid == static_cast<uint32_t>(child_tid.load())) {
      saw_fork = true;
      EXPECT_EQ(task.pid, static_cast<uint32_t>(getpid()));
      EXPECT_EQ(task.ptid, static_cast<uint32_t>(GetTid()));
    }
  }
  EXPECT_TRUE(saw_fork) << "no PERF_RECORD_FORK for thread " << child_tid.load();
}

TEST_F(PerfRingTest, PollWakesWhenSamplesArrive) {
  OpenSelf(absl::Milliseconds(1), /*side_band=*/false);
  SKIP_IF_NO_PERF();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfRing ring, PerfRing::Map(fd_.get(), 8, sample_type_));
  BurnCpu(20);
  pollfd p{fd_.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 1000), 1);
  EXPECT_TRUE(p.revents & POLLIN);
  CollectingSink sink;
  EXPECT_GT(ring.Read(sink).samples, 0u);
}

// Decoding is bounds-checked: truncated records are counted, not read past.
TEST(PerfRecordDecodeTest, TruncatedRecordsAreMalformed) {
  CollectingSink sink;
  PerfRecordCounts counts;
  std::vector<uint64_t> buf(8, 0);
  auto* header = reinterpret_cast<perf_event_header*>(buf.data());
  auto bytes = [&](size_t n) {
    header->size = static_cast<uint16_t>(n);
    return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(buf.data()), n);
  };
  header->type = PERF_RECORD_SAMPLE;
  // IP|TID|TIME|CALLCHAIN with nr = 1000 in a 48-byte record.
  buf[4] = 1000;
  DecodePerfRecord(bytes(40), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.malformed, 1u);
  DecodePerfRecord(bytes(16), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.malformed, 2u);
  buf[4] = 2;
  buf[5] = static_cast<uint64_t>(PERF_CONTEXT_USER);
  buf[6] = 0x1234;
  DecodePerfRecord(bytes(56), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.samples, 1u);
  ASSERT_EQ(sink.chains.size(), 1u);
  EXPECT_EQ(sink.chains[0].size(), 2u);
  header->type = PERF_RECORD_LOST;
  buf[1] = 7;
  buf[2] = 42;
  DecodePerfRecord(bytes(24), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.lost_samples, 42u);
  DecodePerfRecord(bytes(20), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.malformed, 3u);
  DecodePerfRecord(bytes(4), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.malformed, 4u);
  // LOST_SAMPLES: the count alone, no event id before it.
  header->type = PERF_RECORD_LOST_SAMPLES;
  buf[1] = 5;
  DecodePerfRecord(bytes(16), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.lost_samples, 47u);
  EXPECT_EQ(counts.lost_records, 2u);
  DecodePerfRecord(bytes(12), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.malformed, 5u);
}

// PERF_RECORD_SWITCH: direction and preemption from misc, pid/tid/time from
// the sample_id trailer; a trailer cut short is malformed.
TEST(PerfRecordDecodeTest, SwitchRecords) {
  struct SwitchSink : PerfRecordSink {
    void OnSwitch(const PerfSwitchRecord& r) override { switches.push_back(r); }
    std::vector<PerfSwitchRecord> switches;
  } sink;
  PerfRecordCounts counts;
  std::vector<uint64_t> buf(3, 0);
  auto* header = reinterpret_cast<perf_event_header*>(buf.data());
  header->type = PERF_RECORD_SWITCH;
  header->size = 24;
  header->misc = PERF_RECORD_MISC_SWITCH_OUT | PERF_RECORD_MISC_SWITCH_OUT_PREEMPT;
  buf[1] = (uint64_t{12} << 32) | 11;  // pid 11, tid 12
  buf[2] = 123456789;
  auto bytes = [&](size_t n) {
    return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(buf.data()), n);
  };
  DecodePerfRecord(bytes(24), kDefaultPerfSampleType, sink, counts);
  header->misc = 0;
  DecodePerfRecord(bytes(24), kDefaultPerfSampleType, sink, counts);
  DecodePerfRecord(bytes(20), kDefaultPerfSampleType, sink, counts);
  EXPECT_EQ(counts.malformed, 1u);
  ASSERT_EQ(sink.switches.size(), 2u);
  EXPECT_TRUE(sink.switches[0].out);
  EXPECT_TRUE(sink.switches[0].preempt);
  EXPECT_EQ(sink.switches[0].pid, 11u);
  EXPECT_EQ(sink.switches[0].tid, 12u);
  EXPECT_EQ(sink.switches[0].time, 123456789u);
  EXPECT_FALSE(sink.switches[1].out);
  EXPECT_FALSE(sink.switches[1].preempt);
}

// A real event with record_switch and CLOCK_MONOTONIC stamps on this
// thread: its sleeps come back as out/in pairs within the sleeping time.
TEST(PerfSwitchRecordTest, OwnThreadWithMonotonicTimes) {
  PerfEventOptions options;
  options.event = *ParsePerfEvent("context-switches");
  options.period = PerfPeriod::Count(1);
  options.tid = GetTid();
  options.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME;
  options.exclude_kernel = true;  // switch records need no kernel sampling
  options.record_switch = true;
  options.clockid = CLOCK_MONOTONIC;
  timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok()) GTEST_SKIP() << "perf events unavailable: " << fd.status();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PerfRing ring, PerfRing::Map(fd->get(), 8, options.sample_type));
  for (int i = 0; i < 5; ++i) usleep(2000);
  struct SwitchSink : PerfRecordSink {
    void OnSwitch(const PerfSwitchRecord& r) override { switches.push_back(r); }
    std::vector<PerfSwitchRecord> switches;
  } sink;
  ring.Read(sink);
  timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const uint64_t begin = static_cast<uint64_t>(t0.tv_sec) * 1000000000u + t0.tv_nsec;
  const uint64_t end = static_cast<uint64_t>(t1.tv_sec) * 1000000000u + t1.tv_nsec;
  ASSERT_GE(sink.switches.size(), 10u);
  uint64_t off_ns = 0, out_time = 0;
  for (const PerfSwitchRecord& r : sink.switches) {
    EXPECT_EQ(r.tid, static_cast<uint32_t>(GetTid()));
    EXPECT_GE(r.time, begin);
    EXPECT_LE(r.time, end);
    if (r.out) out_time = r.time;
    if (!r.out && out_time != 0) off_ns += r.time - out_time;
  }
  // Five 2 ms sleeps: at least 10 ms off CPU.
  EXPECT_GE(off_ns, 10u * 1000 * 1000);
}

TEST(PerfRecordDecodeTest, CallchainMarksKernelFrames) {
  std::vector<uint64_t> chain = {static_cast<uint64_t>(PERF_CONTEXT_KERNEL), 0xffffffff81000000,
                                 static_cast<uint64_t>(PERF_CONTEXT_USER), 0x401000, 0x402000};
  std::vector<std::pair<uint64_t, bool>> frames;
  ForEachCallchainFrame(chain, [&](uint64_t a, bool k) { frames.emplace_back(a, k); });
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_TRUE(frames[0].second);
  EXPECT_FALSE(frames[1].second);
  EXPECT_EQ(frames[2].first, 0x402000u);
}

}  // namespace
}  // namespace flamekit
