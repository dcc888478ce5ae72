#include "check.h"
#include "conveyor/core/error.h"

TEST_CASE("error keeps its kind and message") {
  const conveyor::Error error(conveyor::ErrorKind::kDecode, "bad marker");
  CHECK(error.kind() == conveyor::ErrorKind::kDecode);
  CHECK(std::string(error.what()) == "bad marker");
}

TEST_CASE("error is a std::runtime_error") {
  CHECK_THROWS_KIND(throw conveyor::Error(conveyor::ErrorKind::kIo, "x"), conveyor::ErrorKind::kIo);
}

TEST_MAIN()
