// Per-sample random generator: seeded by (seed, epoch, dataset index) so every augmentation
// is the same whatever thread or batch the sample lands in.
#pragma once

#include <cmath>
#include <cstdint>

namespace conveyor {

// SplitMix64 finaliser: a strong 64-bit mixer, also used to derive keys.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class SampleRandom {
 public:
  SampleRandom(uint64_t seed, uint64_t epoch, uint64_t index)
      : state_(mix64(mix64(mix64(seed) ^ epoch) ^ (index * 0xD1B54A32D192ED03ull))) {}

  uint64_t next_u64() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double low, double high) { return low + (high - low) * uniform(); }

  // Uniform integer in [low, high) (high > low), without modulo bias.
  int64_t uniform_int(int64_t low, int64_t high) {
    const uint64_t range = static_cast<uint64_t>(high - low);
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t value;
    do value = next_u64();
    while (value >= limit);
    return low + static_cast<int64_t>(value % range);
  }

  bool bernoulli(double p) { return uniform() < p; }

 private:
  uint64_t state_;
};

}  // namespace conveyor
