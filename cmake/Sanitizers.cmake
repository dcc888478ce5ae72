# CONVEYOR_SANITIZE="address,undefined" or "thread": instruments everything built after this
# point (conveyor_core and the tests) with those sanitizers. Any finding aborts the test
# (-fno-sanitize-recover=all); -O1 -g keeps reports readable and runs fast enough for CI.
# The Makefile's ctest-asan / ctest-tsan targets build the C++ tests this way.
set(CONVEYOR_SANITIZE "" CACHE STRING
  "Sanitizers for conveyor_core and the tests, e.g. address,undefined or thread (empty: none)")
if(CONVEYOR_SANITIZE)
  message(STATUS "conveyor: building with -fsanitize=${CONVEYOR_SANITIZE}")
  add_compile_options(-fsanitize=${CONVEYOR_SANITIZE} -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -O1 -g)
  add_link_options(-fsanitize=${CONVEYOR_SANITIZE})
endif()
