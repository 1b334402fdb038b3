// SPDX-License-Identifier: Apache-2.0
// FLAMEKIT_PUSH* for the agent (contract in agent_push.h).
#include "examples/agent/agent_push.h"

#include <stdlib.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "flamekit/base/human_units.h"

namespace flamekit {
namespace agent {
namespace {

std::string Env(const char* name) {
  const char* value = getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

absl::Status PushFromEnvironment(ProfilerPushOptions* push) {
  push->url = Env("FLAMEKIT_PUSH");
  if (push->url.empty()) {
    for (const char* other : {"FLAMEKIT_PUSH_EVERY", "FLAMEKIT_APP", "FLAMEKIT_LABELS"}) {
      if (!Env(other).empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            other, " goes with FLAMEKIT_PUSH=URL (the Pyroscope server, e.g. "
                   "http://127.0.0.1:4040)"));
      }
    }
    return absl::OkStatus();
  }
  if (std::string every = Env("FLAMEKIT_PUSH_EVERY"); !every.empty()) {
    absl::StatusOr<absl::Duration> d = ParseHumanDuration(every);
    if (!d.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("FLAMEKIT_PUSH_EVERY: '", every, "' is not a duration; e.g. 10s"));
    }
    push->every = *d;
  }
  push->app = Env("FLAMEKIT_APP");
  const std::string labels = Env("FLAMEKIT_LABELS");
  for (absl::string_view item : absl::StrSplit(labels, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "FLAMEKIT_LABELS: '", item, "' is not key=value; e.g. team=core,env=prod"));
    }
    push->labels.emplace_back(std::move(kv[0]), std::move(kv[1]));
  }
  // The profiler's own checks (URL, window, label syntax), with the
  // variables named.
  ProfilerOptions probe;
  probe.push = *push;
  absl::Status valid = Profiler::ValidateOptions(probe);
  if (!valid.ok()) {
    absl::string_view m = valid.message();
    const char* variable = absl::StrContains(m, "push window") ? "FLAMEKIT_PUSH_EVERY"
                           : absl::StrContains(m, "push app")  ? "FLAMEKIT_APP"
                           : absl::StrContains(m, "push label") ? "FLAMEKIT_LABELS"
                                                                : "FLAMEKIT_PUSH";
    return absl::InvalidArgumentError(absl::StrCat(variable, ": ", m));
  }
  return absl::OkStatus();
}

}  // namespace agent
}  // namespace flamekit
