// SPDX-License-Identifier: Apache-2.0
// A library attach_workload dlopens during a capture; its time is spent in
// PluginWork -> PluginInner.
#include <stdint.h>

static volatile uint64_t g_plugin_sink = 0;

extern "C" __attribute__((noinline)) void PluginInner() {
  uint64_t x = g_plugin_sink;
  for (int i = 0; i < 200000; ++i) x = x * 17 + i;
  g_plugin_sink = x;
}

extern "C" __attribute__((noinline)) void PluginWork() {
  PluginInner();
  PluginInner();
}
