#include "conveyor/runtime/index_batches.h"

#include <algorithm>
#include <string>

#include "conveyor/core/error.h"

namespace conveyor {

IndexBatches IndexBatches::regular(const std::vector<int64_t>& order, int64_t batch_size,
                                   bool drop_last) {
  if (batch_size < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "batch_size must be >= 1, got " + std::to_string(batch_size));
  IndexBatches batches;
  const int64_t count = static_cast<int64_t>(order.size());
  const int64_t kept = drop_last ? count - count % batch_size : count;
  batches.indices.assign(order.begin(), order.begin() + kept);
  for (int64_t begin = 0; begin < kept; begin += batch_size)
    batches.offsets.push_back(std::min(begin + batch_size, kept));
  return batches;
}

void IndexBatches::validate(uint64_t dataset_size) const {
  if (offsets.empty() || offsets.front() != 0)
    throw Error(ErrorKind::kInvalidArgument, "batch offsets must start with 0");
  for (size_t b = 1; b < offsets.size(); ++b)
    if (offsets[b] < offsets[b - 1])
      throw Error(ErrorKind::kInvalidArgument,
                  "batch offsets must not decrease: offsets[" + std::to_string(b) +
                      "] = " + std::to_string(offsets[b]) + " < offsets[" + std::to_string(b - 1) +
                      "] = " + std::to_string(offsets[b - 1]));
  if (offsets.back() != static_cast<int64_t>(indices.size()))
    throw Error(ErrorKind::kInvalidArgument,
                "the last batch offset (" + std::to_string(offsets.back()) +
                    ") must equal the number of indices (" + std::to_string(indices.size()) + ")");
  for (size_t i = 0; i < indices.size(); ++i)
    if (indices[i] < 0 || static_cast<uint64_t>(indices[i]) >= dataset_size)
      throw Error(ErrorKind::kInvalidArgument, "indices[" + std::to_string(i) +
                                                   "] = " + std::to_string(indices[i]) +
                                                   " is out of range for a dataset of " +
                                                   std::to_string(dataset_size) + " samples");
}

}  // namespace conveyor
