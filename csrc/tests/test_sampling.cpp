// Shuffle bijection, DistributedSampler sharding semantics, per-sample generator.
#include <algorithm>
#include <set>
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/sampling/epoch_order.h"
#include "conveyor/sampling/permutation.h"
#include "conveyor/sampling/sample_random.h"

using namespace conveyor;

TEST_CASE("permutation is a bijection for many sizes") {
  for (uint64_t n : {1ull, 2ull, 3ull, 7ull, 16ull, 17ull, 1000ull, 4097ull}) {
    Permutation permutation(n, 42);
    std::vector<bool> seen(n, false);
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t value = permutation(i);
      CHECK(value < n);
      if (value < n) {
        CHECK(!seen[value]);
        seen[value] = true;
      }
    }
  }
}

TEST_CASE("permutation depends on the key and shuffles") {
  Permutation a(1000, 1), b(1000, 2);
  int same = 0, fixed = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    same += a(i) == b(i);
    fixed += a(i) == i;
  }
  CHECK(same < 20);
  CHECK(fixed < 20);
}

TEST_CASE("huge datasets need no index array") {
  Permutation permutation(uint64_t{1} << 40, 7);
  std::set<uint64_t> values;
  for (uint64_t i = 0; i < 1000; ++i) values.insert(permutation(i));
  CHECK(values.size() == 1000);
  for (uint64_t v : values) CHECK(v < (uint64_t{1} << 40));
}

TEST_CASE("sharding pads by repetition like DistributedSampler") {
  // N = 10, world 4: num_samples = 3, total 12, positions 10, 11 repeat indices 0, 1.
  std::vector<int> counts(10, 0);
  for (int rank = 0; rank < 4; ++rank) {
    EpochOrder order(OrderOptions{10, false, 0, rank, 4, false}, 0);
    CHECK(order.num_samples() == 3);
    for (uint64_t p = 0; p < order.num_samples(); ++p) {
      CHECK(order[p] == static_cast<int64_t>((rank + 4 * p) % 10));
      ++counts[order[p]];
    }
  }
  CHECK(counts[0] == 2 && counts[1] == 2 && counts[9] == 1);
}

TEST_CASE("sharding with drop_last is disjoint and drops the tail") {
  std::set<int64_t> seen;
  for (int rank = 0; rank < 4; ++rank) {
    EpochOrder order(OrderOptions{10, true, 5, rank, 4, true}, 3);
    CHECK(order.num_samples() == 2);
    for (uint64_t p = 0; p < order.num_samples(); ++p) CHECK(seen.insert(order[p]).second);
  }
  CHECK(seen.size() == 8);
}

TEST_CASE("shuffled order changes with the epoch and stays a permutation") {
  EpochOrder first(OrderOptions{50, true, 9, 0, 1, false}, 0),
      second(OrderOptions{50, true, 9, 0, 1, false}, 1);
  std::vector<int64_t> a, b;
  for (uint64_t p = 0; p < 50; ++p) {
    a.push_back(first[p]);
    b.push_back(second[p]);
  }
  CHECK(a != b);
  std::sort(a.begin(), a.end());
  for (int64_t i = 0; i < 50; ++i) CHECK(a[i] == i);
}

TEST_CASE("bad rank or world size and explicit orders are checked") {
  CHECK_THROWS_KIND(EpochOrder(OrderOptions{10, false, 0, 4, 4, false}, 0),
                    ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(EpochOrder(OrderOptions{10, false, 0, 0, 0, false}, 0),
                    ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(EpochOrder::from_indices({1, 10}, 10), ErrorKind::kInvalidArgument);
  EpochOrder explicit_order = EpochOrder::from_indices({3, 1, 2}, 10);
  CHECK(explicit_order.num_samples() == 3 && explicit_order[0] == 3);
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
