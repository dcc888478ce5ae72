// What the CTest mutation-fuzz drivers share: the run's duration (CONVEYOR_FUZZ_SECONDS, default
// 3 s) and its seed, which changes per run (so CI explores new inputs each time) and is printed
// so that a failure can be replayed with CONVEYOR_FUZZ_SEED=<seed>.
#pragma once

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace conveyor_test {

inline double fuzz_seconds() {
  const char* text = std::getenv("CONVEYOR_FUZZ_SECONDS");
  return text ? std::atof(text) : 3.0;
}

inline std::uint64_t fuzz_seed(const char* name) {
  std::uint64_t seed;
  if (const char* text = std::getenv("CONVEYOR_FUZZ_SEED")) {
    seed = std::strtoull(text, nullptr, 10);
  } else {
    std::random_device device;
    seed = (std::uint64_t(device()) << 32) ^ device() ^
           std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  }
  std::printf("%s: seed %" PRIu64 " (replay with CONVEYOR_FUZZ_SEED=%" PRIu64 ")\n", name, seed,
              seed);
  std::fflush(stdout);
  return seed;
}

}  // namespace conveyor_test
