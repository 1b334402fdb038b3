// SPDX-License-Identifier: Apache-2.0
// File: synthetic_profile.h
//
// Deterministic synthetic inputs for the pipeline benchmarks: C++-looking
// frame names and stacks that share prefixes the way real call trees do.
// Generated in memory (no large files in git). Single-threaded, test-only.

#ifndef FLAMEKIT_BENCHMARKS_PIPELINE_SYNTHETIC_PROFILE_H_
#define FLAMEKIT_BENCHMARKS_PIPELINE_SYNTHETIC_PROFILE_H_

#include <stddef.h>
#include <stdint.h>

#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "flamekit/profile/profile.h"

namespace flamekit {
namespace bench {

// `count` distinct C++-style function names (templates, lambdas, anonymous
// namespaces, operators), about 40-90 bytes each.
inline std::vector<std::string> FrameNames(size_t count, uint32_t seed = 1) {
  static const char* const kNamespaces[] = {
      "server", "storage::internal", "(anonymous namespace)", "std::__1", "absl::lts",
      "proto2::io", "net::http2"};
  static const char* const kClasses[] = {
      "RequestHandler", "std::vector<int, std::allocator<int> >", "BlockCache",
      "HashTable<std::string, Entry*>", "Parser", "ThreadPool::Worker", "Codec"};
  static const char* const kMethods[] = {
      "Run()", "operator()(int) const", "Handle(Request const&)",
      "push_back(int const&)", "Lookup(absl::string_view)",
      "{lambda(int)#1}::operator()(int) const", "Encode(Buffer*, size_t)"};
  std::mt19937 rng(seed);
  std::vector<std::string> names;
  names.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    names.push_back(absl::StrCat(kNamespaces[rng() % 7], "::", kClasses[rng() % 7], "::",
                                 "Fn", i, "_", kMethods[rng() % 7]));
  }
  return names;
}

// `unique` distinct stacks of depth [min_depth, max_depth] over `frames`
// frame ids. Each new stack copies a prefix of an earlier one and extends
// it, as a call tree would.
inline std::vector<std::vector<FrameId>> UniqueStacks(size_t unique, size_t frames,
                                                      size_t min_depth, size_t max_depth,
                                                      uint32_t seed = 2) {
  std::mt19937 rng(seed);
  std::vector<std::vector<FrameId>> stacks;
  stacks.reserve(unique);
  struct SpanHash {
    size_t operator()(const std::vector<FrameId>& v) const {
      return absl::Hash<std::vector<FrameId>>()(v);
    }
  };
  absl::flat_hash_set<std::vector<FrameId>, SpanHash> seen;
  while (stacks.size() < unique) {
    size_t depth = min_depth + rng() % (max_depth - min_depth + 1);
    std::vector<FrameId> s;
    if (!stacks.empty()) {
      const std::vector<FrameId>& parent = stacks[rng() % stacks.size()];
      size_t keep = std::min(parent.size(), static_cast<size_t>(rng() % depth));
      s.assign(parent.begin(), parent.begin() + keep);
    }
    while (s.size() < depth) s.push_back(static_cast<FrameId>(rng() % frames));
    if (seen.insert(s).second) stacks.push_back(std::move(s));
  }
  return stacks;
}

// Collapsed text of about `target_bytes`: lines over `unique` distinct
// stacks, in sorted order when `sorted` (as FlameGraph writes them),
// otherwise in random order.
inline std::string CollapsedText(size_t target_bytes, size_t unique, bool sorted,
                                 uint32_t seed = 3) {
  std::vector<std::string> names = FrameNames(5000, seed);
  std::vector<std::vector<FrameId>> stacks = UniqueStacks(unique, names.size(), 10, 60, seed);
  std::vector<std::string> lines;
  lines.reserve(stacks.size());
  std::mt19937 rng(seed);
  for (const auto& s : stacks) {
    std::string line;
    for (size_t i = 0; i < s.size(); ++i) {
      if (i) line += ';';
      line += names[s[i]];
    }
    absl::StrAppend(&line, " ", 1 + rng() % 1000, "\n");
    lines.push_back(std::move(line));
  }
  if (sorted) std::sort(lines.begin(), lines.end());
  std::string text;
  text.reserve(target_bytes + (64 << 10));
  while (text.size() < target_bytes) {
    if (!sorted) std::shuffle(lines.begin(), lines.end(), rng);
    for (const std::string& line : lines) {
      text += line;
      if (text.size() >= target_bytes) break;
    }
  }
  return text;
}

}  // namespace bench
}  // namespace flamekit

#endif  // FLAMEKIT_BENCHMARKS_PIPELINE_SYNTHETIC_PROFILE_H_
