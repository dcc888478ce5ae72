// libFuzzer entry point (built only with -DCONVEYOR_LIBFUZZER=ON and clang); the CTest
// test_decode_fuzz drives the same target with a built-in mutator when libFuzzer is unavailable.
#include "fuzz_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return conveyor_fuzz::fuzz_decode_one_input(data, size);
}
