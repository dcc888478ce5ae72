// One epoch's batches of dataset indices, as the Python sampler made them: batch b holds
// indices[offsets[b] .. offsets[b + 1]). Batches may differ in size (any batch_sampler); the
// engine never reorders them, so Python alone owns the sample order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace conveyor {

struct IndexBatches {
  std::vector<int64_t> indices;
  std::vector<int64_t> offsets{0};  // num_batches() + 1 entries, starting at 0

  // Equal-size batches over `order` (the last one shorter unless drop_last drops it).
  static IndexBatches regular(const std::vector<int64_t>& order, int64_t batch_size,
                              bool drop_last = false);

  int64_t num_batches() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t batch_begin(int64_t batch) const { return offsets[static_cast<size_t>(batch)]; }
  int64_t batch_end(int64_t batch) const { return offsets[static_cast<size_t>(batch) + 1]; }
  // Throws Error(kInvalidArgument) naming the first offset or index that is wrong.
  void validate(uint64_t dataset_size) const;
};

}  // namespace conveyor
