// The epoch's batches of indices the caller hands the engine, and the per-sample generator.
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/runtime/index_batches.h"
#include "conveyor/sampling/sample_random.h"

using namespace conveyor;

TEST_CASE("regular batches cut an order like torch's BatchSampler") {
  const std::vector<int64_t> order{4, 2, 0, 1, 3, 6, 5};
  IndexBatches kept = IndexBatches::regular(order, 3);
  CHECK(kept.num_batches() == 3 && kept.indices == order);
  CHECK((kept.offsets == std::vector<int64_t>{0, 3, 6, 7}));
  IndexBatches dropped = IndexBatches::regular(order, 3, true);
  CHECK(dropped.num_batches() == 2 && dropped.indices.size() == 6);
  CHECK(dropped.batch_begin(1) == 3 && dropped.batch_end(1) == 6);
  CHECK(IndexBatches::regular({}, 2).num_batches() == 0);
  CHECK(IndexBatches::regular({1}, 2, true).num_batches() == 0);
  CHECK_THROWS_KIND(IndexBatches::regular(order, 0), ErrorKind::kInvalidArgument);
}

TEST_CASE("batches of any size are checked against the dataset") {
  IndexBatches batches;
  batches.indices = {3, 1, 2, 2};
  batches.offsets = {0, 1, 1, 4};  // sizes 1, 0 (empty), 3 (a repeat is fine)
  batches.validate(4);
  CHECK_THROWS_KIND(batches.validate(3), ErrorKind::kInvalidArgument);  // index 3 >= 3
  batches.offsets = {0, 2, 1, 4};
  CHECK_THROWS_KIND(batches.validate(4), ErrorKind::kInvalidArgument);  // decreasing
  batches.offsets = {0, 1, 3};
  CHECK_THROWS_KIND(batches.validate(4), ErrorKind::kInvalidArgument);  // does not end at 4
  batches.offsets = {1, 4};
  CHECK_THROWS_KIND(batches.validate(4), ErrorKind::kInvalidArgument);  // does not start at 0
  batches.offsets = {0, 4};
  batches.indices = {0, -1, 2, 3};
  CHECK_THROWS_KIND(batches.validate(4), ErrorKind::kInvalidArgument);  // negative
}

TEST_CASE("per-sample generator is reproducible and in range") {
  SampleRandom a(1, 2, 3), b(1, 2, 3), c(1, 2, 4);
  CHECK(a.next_u64() == b.next_u64());
  CHECK(a.next_u64() != c.next_u64());
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    CHECK(u >= 0.0 && u < 1.0);
    const int64_t k = a.uniform_int(-3, 4);
    CHECK(k >= -3 && k < 4);
  }
}

TEST_MAIN()
