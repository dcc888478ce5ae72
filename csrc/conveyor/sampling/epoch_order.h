// The order in which one rank visits the dataset in one epoch, with the semantics of
// torch.utils.data.DistributedSampler: every rank gets num_samples() samples; the global order
// is padded by repeating its head to a multiple of world_size (or its tail is dropped with
// shard_drop_last), then rank r takes positions r, r + world_size, ...
#pragma once

#include <cstdint>
#include <vector>

#include "conveyor/sampling/permutation.h"

namespace conveyor {

struct OrderOptions {
  uint64_t dataset_size = 0;
  bool shuffle = false;
  uint64_t seed = 0;
  int64_t rank = 0;
  int64_t world_size = 1;
  bool shard_drop_last = false;
};

class EpochOrder {
 public:
  // Throws Error(kInvalidArgument) for a bad rank/world_size.
  EpochOrder(const OrderOptions& options, uint64_t epoch);
  // An explicit order (already sharded by the caller); each index must be < dataset_size.
  static EpochOrder from_indices(std::vector<int64_t> explicit_order, uint64_t dataset_size);

  uint64_t num_samples() const { return num_samples_; }
  // Dataset index of this rank's `position`-th sample (position < num_samples()).
  int64_t operator[](uint64_t position) const;

  static uint64_t samples_per_rank(const OrderOptions& options);

 private:
  EpochOrder() : permutation_(0, 0) {}

  OrderOptions options_;
  Permutation permutation_;
  uint64_t num_samples_ = 0;
  std::vector<int64_t> explicit_;
  bool has_explicit_ = false;
};

}  // namespace conveyor
