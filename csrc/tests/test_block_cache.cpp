#include "conveyor/core/block_cache.h"

#include <cstring>

#include "check.h"

TEST_CASE("a released block is reused for the same size only") {
  conveyor::BlockCache cache(1 << 20, 4);
  std::uint8_t* a = cache.acquire(1000);
  std::memset(a, 7, 1000);
  cache.release(a, 1000);
  CHECK(cache.cached_bytes() == 1000);
  std::uint8_t* other = cache.acquire(999);
  CHECK(other != a);
  CHECK(cache.acquire(1000) == a);
  CHECK(cache.cached_bytes() == 0);
  cache.release(a, 1000);
  cache.release(other, 999);
}

TEST_CASE("the cache stays within its byte and block budgets") {
  conveyor::BlockCache cache(3000, 2);
  for (int i = 0; i < 5; ++i)
    cache.release(cache.acquire(std::size_t(1000 + i)), std::size_t(1000 + i));
  CHECK(cache.cached_bytes() <= 3000);
  std::uint8_t* big = cache.acquire(5000);
  cache.release(big, 5000);  // over budget: freed, not cached
  CHECK(cache.cached_bytes() <= 3000);
}

TEST_MAIN()
