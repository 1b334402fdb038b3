// SPDX-License-Identifier: Apache-2.0
// File: poisson_sampler.h
//
// Which allocations to sample: Poisson sampling over bytes, as tcmalloc and
// async-profiler do. Each thread counts down a byte budget drawn from an
// exponential distribution with the configured mean (default 512 KiB); the
// allocation that crosses zero is sampled and weighted by the bytes (and
// allocations) it stands for, so big allocations are always seen and many
// small ones are seen in proportion to their bytes.
//
// Thread and signal safety: a PoissonSampler is one thread's state (kept in
// initial-exec TLS by the hooks); it is a POD that is valid zero-filled, so
// a thread that allocates before anything initialised it (threads started
// before the profiler, TLS of a thread in its first malloc) simply draws its
// first budget on its first allocation. Record() allocates nothing, takes
// no lock and makes no system call. Not re-entrant (one thread's state).
//
// Example:
//
//   PoissonSampler s{};                  // zero-filled is valid
//   if (s.Record(size, 512 << 10)) { ... take a stack ...
//     SampleWeight w = EstimateWeight(size, 512 << 10);
//   }

#ifndef FLAMEKIT_HOOKS_POISSON_SAMPLER_H_
#define FLAMEKIT_HOOKS_POISSON_SAMPLER_H_

#include <math.h>
#include <stdint.h>

namespace flamekit {

struct PoissonSampler {
  // Bytes left before the next sample; <= 0 means "draw a budget first".
  int64_t bytes_left;
  // xorshift64* state; 0 = not seeded yet.
  uint64_t rng;

  // Record()
  //
  // Counts `bytes` against the budget; true when this allocation is to be
  // sampled (and a new budget was drawn). `mean_bytes` 1 samples everything.
  // Record(b, m) is `!Take(b) && Crossed(b, m)`; the hooks inline Take()
  // into their fast path and call Crossed() out of line.
  bool Record(uint64_t bytes, uint64_t mean_bytes);

  // Take() is the fast path: when `bytes` is less than the budget left,
  // subtracts it and returns true (not sampled); otherwise changes nothing
  // and returns false (the allocation crosses: Crossed() next). A zero
  // state, or a budget left at 0 for mean <= 1, takes nothing. One
  // unsigned compare, which also sends any size of 2^63 or more to the
  // slow path: bytes_left is never negative (every store below keeps it
  // >= 0, and Take() only subtracts less than it holds).
  bool Take(uint64_t bytes);

  // Crossed() is called once Take() returned false for `bytes`: draws the
  // next budget and says whether this allocation is sampled (a fresh
  // state counts it against its first budget instead). Untake() gives
  // back bytes a successful Take() counted when the allocation is not to
  // be counted after all (a failed operator new).
  bool Crossed(uint64_t bytes, uint64_t mean_bytes);
  void Untake(uint64_t bytes) { bytes_left += Clamp(bytes); }

  static int64_t Clamp(uint64_t bytes) {
    return static_cast<int64_t>(bytes > (1ull << 62) ? (1ull << 62) : bytes);
  }

  // Seed() sets the generator (a thread's id and an address are enough:
  // the draws only need to be independent of the program's sizes).
  void Seed(uint64_t seed) { rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ull; }

  // NextBudget() is an exponential draw with mean `mean_bytes` (>= 1).
  int64_t NextBudget(uint64_t mean_bytes);
};

// SampleWeight
//
// What one sampled allocation of `bytes` stands for: the expected bytes and
// allocations it represents (bytes / p and 1 / p, p = 1 - exp(-bytes/mean),
// the probability that an allocation of that size is sampled). Summing
// these over the samples estimates the true totals without bias.
struct SampleWeight {
  uint64_t bytes = 0;
  uint64_t count = 0;
};
// `dither` (uniform over 32 bits when the caller has random bits: the
// hooks pass their generator's) rounds the count, 1/p, up with the
// probability of its fraction, so counts summed over many samples are
// unbiased: rounding to nearest is off by up to half an allocation per
// sample (1/p = 16.5 at 4 KiB and a 64 KiB mean: +3 %). The default is
// round to nearest.
SampleWeight EstimateWeight(uint64_t bytes, uint64_t mean_bytes, uint32_t dither = 1u << 31);

// Implementation details follow.

inline int64_t PoissonSampler::NextBudget(uint64_t mean_bytes) {
  if (rng == 0) Seed(0);
  // xorshift64*: fast, no state beyond one word, good enough for sampling.
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  const uint64_t r = rng * 0x2545F4914F6CDD1Dull;
  // 53 bits -> u in (0, 1]; -log(u) is exponential with mean 1.
  const double u = (static_cast<double>(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  const double budget = -log(u) * static_cast<double>(mean_bytes);
  // At least one byte; at most 2^62 (a u of 2^-53 gives 36.7 means).
  if (budget < 1.0) return 1;
  if (budget > 4.6e18) return static_cast<int64_t>(4.6e18);
  return static_cast<int64_t>(budget);
}

inline bool PoissonSampler::Take(uint64_t bytes) {
  // The fast path: a compare, then a subtraction that leaves at least 1.
  if (__builtin_expect(bytes < static_cast<uint64_t>(bytes_left), 1)) {
    bytes_left -= static_cast<int64_t>(bytes);
    return true;
  }
  return false;
}

inline bool PoissonSampler::Crossed(uint64_t bytes, uint64_t mean_bytes) {
  if (mean_bytes <= 1) {
    // A budget of 0: every allocation, even of 0 bytes, ends up here.
    bytes_left = 0;
    return true;
  }
  // A fresh (zero) state lands here on its first allocation: it draws a
  // budget and counts this allocation against it instead of sampling it.
  const bool fresh = rng == 0;
  bytes_left = NextBudget(mean_bytes) - (fresh ? Clamp(bytes) : 0);
  if (fresh && bytes_left > 0) return false;
  if (fresh) bytes_left = NextBudget(mean_bytes);
  return true;
}

inline bool PoissonSampler::Record(uint64_t bytes, uint64_t mean_bytes) {
  return !Take(bytes) && Crossed(bytes, mean_bytes);
}

inline SampleWeight EstimateWeight(uint64_t bytes, uint64_t mean_bytes, uint32_t dither) {
  SampleWeight w;
  if (mean_bytes <= 1 || bytes == 0) {
    w.bytes = bytes;
    w.count = 1;
    return w;
  }
  const double p = 1.0 - exp(-static_cast<double>(bytes) / static_cast<double>(mean_bytes));
  if (p <= 0.0) return w;
  w.bytes = static_cast<uint64_t>(static_cast<double>(bytes) / p + 0.5);
  w.count = static_cast<uint64_t>(1.0 / p + static_cast<double>(dither) * (1.0 / 4294967296.0));
  if (w.count == 0) w.count = 1;
  return w;
}

}  // namespace flamekit

#endif  // FLAMEKIT_HOOKS_POISSON_SAMPLER_H_
