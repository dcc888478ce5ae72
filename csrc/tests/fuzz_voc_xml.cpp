// libFuzzer entry point (built only with -DCONVEYOR_LIBFUZZER=ON and clang); the CTest
// test_voc_fuzz drives the same target with a built-in mutator when libFuzzer is unavailable.
#include "fuzz_voc_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz_voc_xml_one_input(data, size);
}
