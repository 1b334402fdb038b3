// SPDX-License-Identifier: Apache-2.0
// The kernel chain ring as the handler reads it. First on a ring laid out
// by hand (to reach the cases a live kernel rarely produces: a record
// split by the end of the buffer, a LOST record last, a nearly full ring),
// then on a real perf event of this thread.

#include "flamekit/perf/perf_kernel_chain.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vector>

#include "absl/status/statusor.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/perf/perf_event.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

// A ring in ordinary memory with the kernel's layout: metadata page, then
// kKernelChainDataPages pages of records.
class FakeRing {
 public:
  FakeRing() : page_(sysconf(_SC_PAGESIZE)), size_(kKernelChainDataPages * page_) {
    memory_ = static_cast<uint8_t*>(aligned_alloc(page_, page_ + size_));
    memset(memory_, 0, page_ + size_);
  }
  ~FakeRing() { free(memory_); }
  void* get() { return memory_; }
  perf_event_mmap_page* meta() { return reinterpret_cast<perf_event_mmap_page*>(memory_); }
  uint64_t size() const { return size_; }

  // Starts writing at ring offset `at` (head and tail both there).
  void Reset(uint64_t at) { meta()->data_head = meta()->data_tail = at; }
  void Write(const void* bytes, size_t n) {
    const uint8_t* src = static_cast<const uint8_t*>(bytes);
    for (size_t i = 0; i < n; ++i) memory_[page_ + ((meta()->data_head + i) % size_)] = src[i];
    meta()->data_head += n;
  }
  void Sample(const std::vector<uint64_t>& chain) {
    perf_event_header header{PERF_RECORD_SAMPLE, 0,
                             static_cast<uint16_t>(sizeof(perf_event_header) + 8 +
                                                   8 * chain.size())};
    uint64_t nr = chain.size();
    Write(&header, sizeof(header));
    Write(&nr, 8);
    Write(chain.data(), 8 * chain.size());
  }
  void Lost() {
    perf_event_header header{PERF_RECORD_LOST, 0, sizeof(perf_event_header) + 16};
    uint64_t body[2] = {1, 3};
    Write(&header, sizeof(header));
    Write(body, sizeof(body));
  }

 private:
  size_t page_;
  uint64_t size_;
  uint8_t* memory_;
};

constexpr uint64_t kContextKernel = static_cast<uint64_t>(PERF_CONTEXT_KERNEL);

TEST(TakeNewestKernelChainTest, TakesTheNewestSampleWithoutMarkersAndFreesTheRing) {
  FakeRing ring;
  ring.Reset(0);
  ring.Sample({kContextKernel, 0xffffffff81000010, 0xffffffff81000020});
  ring.Sample({kContextKernel, 0xffffffff81000aaa, 0xffffffff81000bbb, 0xffffffff81000ccc});
  uint64_t out[8];
  ASSERT_EQ(TakeNewestKernelChain(ring.get(), out, 8), 3u);
  EXPECT_EQ(out[0], 0xffffffff81000aaau);
  EXPECT_EQ(out[2], 0xffffffff81000cccu);
  EXPECT_EQ(ring.meta()->data_tail, ring.meta()->data_head);
  EXPECT_EQ(TakeNewestKernelChain(ring.get(), out, 8), 0u) << "consumed records came back";
}

TEST(TakeNewestKernelChainTest, ARecordSplitByTheEndOfTheBufferIsReadWhole) {
  FakeRing ring;
  ring.Reset(ring.size() - 20);  // the header fits, the chain wraps
  ring.Sample({kContextKernel, 0xffffffff81001111, 0xffffffff81002222});
  uint64_t out[8];
  ASSERT_EQ(TakeNewestKernelChain(ring.get(), out, 8), 2u);
  EXPECT_EQ(out[0], 0xffffffff81001111u);
  EXPECT_EQ(out[1], 0xffffffff81002222u);
}

TEST(TakeNewestKernelChainTest, NothingWhenTheNewestOverflowMayHaveBeenLost) {
  FakeRing ring;
  ring.Reset(0);
  ring.Sample({kContextKernel, 0xffffffff81000010});
  ring.Lost();
  uint64_t out[8];
  EXPECT_EQ(TakeNewestKernelChain(ring.get(), out, 8), 0u) << "a LOST record is the newest";
  // A ring with less than one sample's room left: the kernel may have
  // dropped the newest overflow's record, so the newest present is older.
  ring.Reset(0);
  while (ring.size() - ring.meta()->data_head > 256) {
    ring.Sample({kContextKernel, 0xffffffff81000010, 0xffffffff81000020});
  }
  EXPECT_EQ(TakeNewestKernelChain(ring.get(), out, 8), 0u);
  EXPECT_EQ(ring.meta()->data_tail, ring.meta()->data_head) << "the ring was not freed";
}

TEST(TakeNewestKernelChainTest, StopsAtMaxAndAtACorruptHeader) {
  FakeRing ring;
  ring.Reset(0);
  ring.Sample({kContextKernel, 1, 2, 3, 4, 5});
  uint64_t out[8];
  EXPECT_EQ(TakeNewestKernelChain(ring.get(), out, 2), 2u);
  ring.Reset(0);
  perf_event_header zero{PERF_RECORD_SAMPLE, 0, 0};  // would loop forever
  ring.Write(&zero, sizeof(zero));
  EXPECT_EQ(TakeNewestKernelChain(ring.get(), out, 8), 0u);
  EXPECT_EQ(TakeNewestKernelChain(nullptr, out, 8), 0u);
}

TEST(TakeNewestKernelChainTest, RealEventOfThisThreadGivesKernelAddresses) {
  PerfEventOptions options;
  ASSERT_TRUE(ParsePerfEvent("cpu").ok());
  options.event = *ParsePerfEvent("cpu");
  options.period = PerfPeriod::Interval(absl::Microseconds(200));
  options.sample_type = PERF_SAMPLE_CALLCHAIN;
  options.exclude_callchain_user = true;
  options.exclude_kernel = false;
  options.max_callchain = kMaxKernelChain;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok()) GTEST_SKIP() << "no kernel perf events here: " << fd.status();
  void* ring = MapKernelChainRing(fd->get());
  ASSERT_NE(ring, nullptr);
  // Time in the kernel: clearing a buffer for read() of /dev/zero.
  int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(zero, 0);
  static char buffer[1 << 20];
  uint64_t out[kMaxKernelChain];
  size_t best = 0;
  for (int i = 0; i < 2000 && best == 0; ++i) {
    ASSERT_GT(read(zero, buffer, sizeof(buffer)), 0);
    size_t n = TakeNewestKernelChain(ring, out, kMaxKernelChain);
    if (n > 0) {
      best = n;
      for (size_t k = 0; k < n; ++k) EXPECT_GE(out[k], 0xffff800000000000u) << k;
    }
  }
  close(zero);
  UnmapKernelChainRing(ring);
  EXPECT_GT(best, 2u) << "no kernel chain in 2000 reads of 1 MiB";
}

}  // namespace
}  // namespace flamekit
