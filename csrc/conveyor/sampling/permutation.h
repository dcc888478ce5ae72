// A seeded bijection over [0, n) evaluated in O(1) memory: a balanced Feistel network over the
// smallest even-bit power-of-two domain >= n, with cycle walking back into [0, n). Shuffling a
// billion samples costs nothing up front and no index array.
#pragma once

#include <cstdint>

namespace conveyor {

class Permutation {
 public:
  Permutation(uint64_t size, uint64_t key);
  uint64_t size() const { return size_; }
  // The element at position `position` (< size) of the permuted order.
  uint64_t operator()(uint64_t position) const;

 private:
  uint64_t encrypt(uint64_t value) const;

  static constexpr int kRounds = 6;
  uint64_t size_;
  int half_bits_ = 1;
  uint64_t half_mask_ = 1;
  uint64_t round_keys_[kRounds];
};

}  // namespace conveyor
