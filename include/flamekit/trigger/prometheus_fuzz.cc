// SPDX-License-Identifier: Apache-2.0
// Fuzz target: a metrics page and the strings a user types for `watch`
// (selector, URL, sizes, durations). Nothing may crash or hang; every
// failure must be a Status. The first line of the input is used as the
// user's string, the whole input as the page.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "flamekit/trigger/metric_selector.h"
#include "flamekit/trigger/prometheus_text.h"
#include "flamekit/base/human_units.h"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/metric_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  absl::string_view first = input.substr(0, input.find('\n'));
  absl::StatusOr<flamekit::PrometheusPage> page = flamekit::ParsePrometheusText(input, "fuzz");
  absl::StatusOr<flamekit::MetricSelector> selector = flamekit::MetricSelector::Parse(first);
  if (page.ok() && selector.ok()) {
    absl::StatusOr<flamekit::SelectedValue> v = flamekit::SelectValue(*page, *selector);
    (void)v;
  }
  if (page.ok() && !page->samples.empty()) {
    // Every parsed name must be selectable by itself.
    absl::StatusOr<flamekit::MetricSelector> own =
        flamekit::MetricSelector::Parse(page->samples[0].name);
    if (!own.ok() || !flamekit::SelectValue(*page, *own).ok()) __builtin_trap();
  }
  (void)flamekit::ParseHttpUrl(first);
  (void)flamekit::ParseHumanSize(first);
  (void)flamekit::ParseHumanDuration(first);
  return 0;
}
