// SPDX-License-Identifier: Apache-2.0
// File: ui_test_hooks.h
//
// The profiler the UI tests drive: the real, process-wide Profiler through
// GlobalProfilerControl. Test-only; thread-safe; never from a signal
// handler.

#ifndef FLAMEKIT_UI_UI_TEST_HOOKS_H_
#define FLAMEKIT_UI_UI_TEST_HOOKS_H_

#include <memory>

#include "flamekit/profiler.h"
#include "flamekit/ui/global_profiler_control.h"
#include "flamekit/ui/profiler_control.h"

namespace flamekit {

inline std::shared_ptr<ProfilerControl> ProfilerForTest() {
  static auto* control =
      new std::shared_ptr<ProfilerControl>(std::make_shared<GlobalProfilerControl>());
  return *control;
}

// Leaves the profiler stopped (whatever a failed test left running).
inline void StopProfilerForTest() { (void)Profiler::Global().Stop(); }

inline void SetProfilerDefaultsForTest(const UiStartOptions& defaults) {
  (void)Profiler::Global().SetDefaultOptions(
      GlobalProfilerControl::ToProfilerOptions(defaults, ProfilerOptions()));
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_TEST_HOOKS_H_
