#include "conveyor/sampling/epoch_order.h"

#include <string>

#include "conveyor/core/error.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {

uint64_t EpochOrder::samples_per_rank(const OrderOptions& o) {
  const uint64_t n = o.dataset_size, world = static_cast<uint64_t>(o.world_size);
  if (o.shard_drop_last && n % world != 0) return n / world;  // == ceil((n - world) / world)
  return (n + world - 1) / world;
}

EpochOrder::EpochOrder(const OrderOptions& options, uint64_t epoch)
    : options_(options),
      permutation_(options.dataset_size,
                   mix64(options.seed) ^ mix64(epoch + 0x632BE59BD9B4E019ull)) {
  if (options.world_size < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "world_size must be >= 1, got " + std::to_string(options.world_size));
  if (options.rank < 0 || options.rank >= options.world_size)
    throw Error(ErrorKind::kInvalidArgument,
                "rank must be in [0, world_size - 1], got rank " + std::to_string(options.rank) +
                    " with world_size " + std::to_string(options.world_size));
  num_samples_ = options.dataset_size == 0 ? 0 : samples_per_rank(options);
}

EpochOrder EpochOrder::from_indices(std::vector<int64_t> explicit_order, uint64_t dataset_size) {
  for (size_t i = 0; i < explicit_order.size(); ++i)
    if (explicit_order[i] < 0 || static_cast<uint64_t>(explicit_order[i]) >= dataset_size)
      throw Error(ErrorKind::kInvalidArgument, "indices[" + std::to_string(i) +
                                                   "] = " + std::to_string(explicit_order[i]) +
                                                   " is out of range for a dataset of " +
                                                   std::to_string(dataset_size) + " samples");
  EpochOrder order;
  order.num_samples_ = explicit_order.size();
  order.explicit_ = std::move(explicit_order);
  order.has_explicit_ = true;
  return order;
}

int64_t EpochOrder::operator[](uint64_t position) const {
  if (has_explicit_) return explicit_[position];
  const uint64_t n = options_.dataset_size;
  uint64_t global =
      static_cast<uint64_t>(options_.rank) + position * static_cast<uint64_t>(options_.world_size);
  if (global >= n) global = (global - n) % n;  // padding repeats the head of the order
  return static_cast<int64_t>(options_.shuffle ? permutation_(global) : global);
}

}  // namespace conveyor
