// SPDX-License-Identifier: Apache-2.0
#include "examples/agent/agent_preload.h"

#include <string>

#include "gtest/gtest.h"

namespace flamekit {
namespace agent {
namespace {

bool IsAgent(absl::string_view entry) {
  return entry == "/opt/libflamekit_agent.so" || entry == "libflamekit_agent.so";
}

static void ExpectRemoved(absl::string_view ld_preload, absl::string_view want) {
  EXPECT_EQ(RemovePreloadEntries(ld_preload, &IsAgent), want) << "LD_PRELOAD=" << ld_preload;
}

TEST(RemovePreloadEntriesTest, KeepsOtherPreloads) {
  ExpectRemoved("/opt/libflamekit_agent.so", "");
  ExpectRemoved("libflamekit_agent.so", "");
  ExpectRemoved("/lib/a.so /opt/libflamekit_agent.so /lib/b.so", "/lib/a.so /lib/b.so");
  ExpectRemoved("/lib/a.so:/opt/libflamekit_agent.so", "/lib/a.so");
  ExpectRemoved("/opt/libflamekit_agent.so:/lib/a.so:/lib/b.so", "/lib/a.so:/lib/b.so");
  ExpectRemoved("  /lib/a.so   libflamekit_agent.so ", "/lib/a.so");
  ExpectRemoved("/lib/a.so /lib/b.so", "/lib/a.so /lib/b.so");
  ExpectRemoved("", "");
}

}  // namespace
}  // namespace agent
}  // namespace flamekit
