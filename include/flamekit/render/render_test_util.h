// SPDX-License-Identifier: Apache-2.0
// File: render_test_util.h
//
// Test-only inputs for the renderers: small profiles with fixed metadata
// (so outputs are byte-for-byte reproducible for golden files), hostile
// frame names, and a large generated profile in the shape of the render
// benchmark. Not thread-safety relevant; never used in production code.
//
// Example:
//
//   flamekit::Profile profile = flamekit::render_testing::SmallProfile();

#ifndef FLAMEKIT_RENDER_RENDER_TEST_UTIL_H_
#define FLAMEKIT_RENDER_RENDER_TEST_UTIL_H_

#include <stdint.h>

#include <algorithm>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"

namespace flamekit {
namespace render_testing {

// A frame of a test stack: name and kind.
struct F {
  const char* name;
  FrameKind kind = FrameKind::kUser;
};

// Adds `count` samples of `frames` (root first) to `profile`.
void Add(Profile* profile, std::initializer_list<F> frames, uint64_t count);

// Fixed metadata: cpu, 10 ms, 2026-01-02 03:04:05 UTC for 2.5 s.
void SetFixedMetadata(Profile* profile);

// A dozen stacks over all frame kinds, 2,000 samples.
Profile SmallProfile();

// The same program after a change: some stacks grew, some shrank, one is
// new and one is gone (for diff graphs).
Profile SmallProfileAfter();

// Frame names that try to break out of text: </script>, quotes,
// <img onerror>, unicode, U+2028, invalid UTF-8, control characters, and a
// 10,000-character name.
std::vector<std::string> HostileNames();
Profile HostileProfile();

// Two threads split as synthetic thread root frames.
Profile ThreadProfile();

// `samples` samples over `unique_stacks` distinct stacks of depth 10-60
// with C++-style names; stacks share prefixes like a real call tree.
Profile LargeProfile(uint64_t samples, size_t unique_stacks, uint32_t seed = 42);

// Implementation details follow.

inline void Add(Profile* profile, std::initializer_list<F> frames, uint64_t count) {
  std::vector<FrameId> ids;
  for (const F& f : frames) ids.push_back(profile->InternFrame(f.name, f.kind));
  profile->AddStack(ids, count);
}

inline void SetFixedMetadata(Profile* profile) {
  ProfileMetadata& m = profile->metadata();
  m.event = "cpu";
  m.engine = "perf cpu-clock";
  m.interval = absl::Milliseconds(10);
  m.start_time = absl::FromUnixSeconds(1767323045);  // 2026-01-02 03:04:05 UTC
  m.end_time = m.start_time + absl::Milliseconds(2500);
  m.dropped_samples = 3;
  m.threads = 2;
  m.pid = 4242;
  m.command = "/usr/bin/checkout-service";
}

inline Profile SmallProfile() {
  constexpr FrameKind kLib = FrameKind::kLibrary;
  constexpr FrameKind kKernel = FrameKind::kKernel;
  Profile p;
  SetFixedMetadata(&p);
  p.metadata().title = "checkout-service cpu";
  p.metadata().transforms_json = R"([{"hide": "^__libc"}])";
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"JsonParser::Parse(std::basic_string_view<char>)"}}, 700);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"std::vector<int, std::allocator<int> >::push_back(int const&)"}}, 300);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"memcpy", kLib}}, 150);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"Compress(Buffer*)"}, {"deflate", kLib}}, 250);
  Add(&p, {{"main"}, {"Server::Run()"}, {"epoll_wait", kLib}, {"entry_SYSCALL_64", kKernel},
           {"do_epoll_wait", kKernel}}, 200);
  Add(&p, {{"main"}, {"Server::Run()"}, {"(anonymous namespace)::Flush()"},
           {"write", kLib}, {"entry_SYSCALL_64", kKernel}, {"ksys_write", kKernel}}, 120);
  Add(&p, {{"main"}, {"Server::Run()"}, {"{lambda()#1}::operator()() const"}}, 80);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Cache::Lookup(Key const&)"},
           {"[truncated]", FrameKind::kTruncated}}, 40);
  Add(&p, {{"main"}, {"Server::Run()"}, {"libfoo.so+0x1a2b", FrameKind::kUnknown}}, 60);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Interp::Eval", FrameKind::kJit}}, 50);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Hash(Key const&)", FrameKind::kInlined}}, 40);
  Add(&p, {{"main"}}, 10);
  return p;
}

inline Profile SmallProfileAfter() {
  constexpr FrameKind kLib = FrameKind::kLibrary;
  constexpr FrameKind kKernel = FrameKind::kKernel;
  Profile p;
  SetFixedMetadata(&p);
  p.metadata().title = "checkout-service cpu, after";
  p.metadata().start_time += absl::Hours(1);
  p.metadata().end_time += absl::Hours(1);
  // JsonParser shrank a lot; Compress grew; a new stack; Flush is gone.
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"JsonParser::Parse(std::basic_string_view<char>)"}}, 200);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"std::vector<int, std::allocator<int> >::push_back(int const&)"}}, 310);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"memcpy", kLib}}, 150);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"Compress(Buffer*)"}, {"deflate", kLib}}, 900);
  Add(&p, {{"main"}, {"Server::Run()"}, {"Server::HandleRequest(Request const&)"},
           {"Validate(Order const&)"}}, 180);
  Add(&p, {{"main"}, {"Server::Run()"}, {"epoll_wait", kLib}, {"entry_SYSCALL_64", kKernel},
           {"do_epoll_wait", kKernel}}, 210);
  Add(&p, {{"main"}, {"Server::Run()"}, {"{lambda()#1}::operator()() const"}}, 80);
  Add(&p, {{"main"}}, 10);
  return p;
}

inline std::vector<std::string> HostileNames() {
  return {
      "</script><script>window.fkPwned=1</script>",
      "\"quoted\" and 'single' & ampersand",
      "<img src=x onerror=\"window.fkPwned=2\">",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xCE\xBB \xF0\x9F\x94\xA5 caf\xC3\xA9",
      "line\xE2\x80\xA8separator\xE2\x80\xA9paragraph",
      "bad utf8 \xFF\xFE\xC3( end",
      "control\x01\x07\x1b[31mchars\ttab",
      "<!-- comment --> ]]> {{mustache}} {{{triple}}} ${template}",
      std::string(10000, 'N'),
  };
}

inline Profile HostileProfile() {
  Profile p;
  SetFixedMetadata(&p);
  p.metadata().title = "</title><script>window.fkPwned=3</script> \"title\"";
  p.metadata().transforms_json = R"([{"hide": "</script><b>x</b>"}])";
  FrameId root = p.InternFrame("main");
  uint64_t count = 100;
  for (const std::string& name : HostileNames()) {
    FrameId leaf = p.InternFrame(name);
    FrameId stack[] = {root, leaf};
    p.AddStack(stack, count);
    count += 50;
  }
  return p;
}

inline Profile ThreadProfile() {
  Profile p;
  SetFixedMetadata(&p);
  Add(&p, {{"worker-1 tid=101", FrameKind::kThread}, {"start_thread", FrameKind::kLibrary},
           {"Worker::Loop()"}, {"Crunch(int)"}}, 600);
  Add(&p, {{"worker-2 tid=102", FrameKind::kThread}, {"start_thread", FrameKind::kLibrary},
           {"Worker::Loop()"}, {"Crunch(int)"}}, 400);
  Add(&p, {{"worker-2 tid=102", FrameKind::kThread}, {"start_thread", FrameKind::kLibrary},
           {"Worker::Loop()"}, {"Sleep()"}}, 100);
  return p;
}

inline Profile LargeProfile(uint64_t samples, size_t unique_stacks, uint32_t seed) {
  std::mt19937 rng(seed);
  static const char* const kNamespaces[] = {"net", "db", "http", "rpc", "json", "util",
                                            "cache", "auth", "io", "sched"};
  static const char* const kClasses[] = {"Server", "Connection", "Parser", "Buffer", "Pool",
                                         "Handler", "Session", "Encoder", "Table", "Queue"};
  static const char* const kMethods[] = {"Run", "Handle", "Read", "Write", "Parse", "Flush",
                                         "Lookup", "Insert", "Encode", "Decode", "Process",
                                         "Dispatch"};
  // A pool of function names, C++-style with arguments and templates.
  std::vector<std::string> pool;
  for (int i = 0; i < 6000; ++i) {
    pool.push_back(absl::StrCat(kNamespaces[i % 10], "::", kClasses[(i / 10) % 10], "<std::",
                                i % 3 == 0 ? "string" : "vector<int>", ">::",
                                kMethods[(i / 100) % 12], i / 1200, "(", kClasses[i % 7],
                                " const&, int)"));
  }
  Profile p;
  p.metadata().event = "cpu";
  p.metadata().interval = absl::Milliseconds(1);
  std::vector<FrameId> ids;
  for (const std::string& name : pool) ids.push_back(p.InternFrame(name));
  std::vector<std::vector<FrameId>> stacks;
  stacks.reserve(unique_stacks);
  std::uniform_int_distribution<int> depth_dist(10, 60);
  std::uniform_int_distribution<size_t> pool_dist(0, pool.size() - 1);
  while (stacks.size() < unique_stacks) {
    std::vector<FrameId> stack;
    const size_t depth = static_cast<size_t>(depth_dist(rng));
    if (!stacks.empty()) {
      // Share a prefix with an earlier stack, as calls from the same
      // callers do, then diverge.
      const std::vector<FrameId>& base =
          stacks[std::uniform_int_distribution<size_t>(0, stacks.size() - 1)(rng)];
      // Every stack starts at the same root (a program's main or thread
      // start), so the tree has one root as real profiles do.
      size_t keep = std::uniform_int_distribution<size_t>(1, std::min(base.size(), depth) - 1)(rng);
      stack.assign(base.begin(), base.begin() + keep);
    } else {
      stack.push_back(ids[0]);
    }
    while (stack.size() < depth) stack.push_back(ids[pool_dist(rng)]);
    stacks.push_back(std::move(stack));
  }
  // Skewed counts (a few hot stacks, a long tail), summing to `samples`.
  std::vector<double> weights(stacks.size());
  double weight_sum = 0;
  std::exponential_distribution<double> exp_dist(1.0);
  for (double& w : weights) {
    double e = exp_dist(rng);
    w = e * e * e + 0.05;
    weight_sum += w;
  }
  std::vector<uint64_t> counts(stacks.size());
  uint64_t assigned = 0;
  size_t heaviest = 0;
  for (size_t i = 0; i < stacks.size(); ++i) {
    counts[i] = std::max<uint64_t>(
        1, static_cast<uint64_t>(static_cast<double>(samples) * weights[i] / weight_sum));
    assigned += counts[i];
    if (counts[i] > counts[heaviest]) heaviest = i;
  }
  // Exactly `samples` in all: the heaviest stack absorbs the rounding.
  if (assigned > samples) {
    counts[heaviest] -= std::min(counts[heaviest] - 1, assigned - samples);
  } else {
    counts[heaviest] += samples - assigned;
  }
  for (size_t i = 0; i < stacks.size(); ++i) p.AddStack(stacks[i], counts[i]);
  return p;
}

}  // namespace render_testing
}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_RENDER_TEST_UTIL_H_
