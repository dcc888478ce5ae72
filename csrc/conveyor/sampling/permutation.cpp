#include "conveyor/sampling/permutation.h"

#include "conveyor/sampling/sample_random.h"

namespace conveyor {

Permutation::Permutation(uint64_t size, uint64_t key) : size_(size) {
  // Domain 2^(2*half_bits) >= size, so cycle walking takes < 4 steps on average.
  while (half_bits_ < 32 && (uint64_t{1} << (2 * half_bits_)) < size) ++half_bits_;
  half_mask_ = (uint64_t{1} << half_bits_) - 1;
  uint64_t state = mix64(key ^ 0x5851F42D4C957F2Dull);
  for (auto& round_key : round_keys_) round_key = state = mix64(state);
}

uint64_t Permutation::encrypt(uint64_t value) const {
  uint64_t left = value >> half_bits_;
  uint64_t right = value & half_mask_;
  for (uint64_t round_key : round_keys_) {
    const uint64_t next = left ^ (mix64(right ^ round_key) & half_mask_);
    left = right;
    right = next;
  }
  return (left << half_bits_) | right;
}

uint64_t Permutation::operator()(uint64_t position) const {
  if (size_ <= 1) return position;
  uint64_t value = encrypt(position);
  while (value >= size_) value = encrypt(value);  // cycle walking: stays a bijection on [0, n)
  return value;
}

}  // namespace conveyor
