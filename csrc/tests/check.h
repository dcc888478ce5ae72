// A minimal assertion harness for the CTest executables: no framework dependency.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace conveyor_test {

struct TestCase {
  const char* name;
  std::function<void()> body;
};

inline std::vector<TestCase>& registry() {
  static std::vector<TestCase> cases;
  return cases;
}

inline int& failures() {
  static int count = 0;
  return count;
}

struct Registrar {
  Registrar(const char* name, std::function<void()> body) {
    registry().push_back({name, std::move(body)});
  }
};

inline int run_all() {
  for (const auto& test : registry()) {
    const int before = failures();
    test.body();
    std::printf("%s %s\n", failures() == before ? "[ ok ]" : "[FAIL]", test.name);
  }
  std::printf("%zu tests, %d failed checks\n", registry().size(), failures());
  return failures() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace conveyor_test

#define CONVEYOR_CONCAT_INNER(a, b) a##b
#define CONVEYOR_CONCAT(a, b) CONVEYOR_CONCAT_INNER(a, b)

#define TEST_CASE(name)                                                       \
  static void CONVEYOR_CONCAT(test_body_, __LINE__)();                        \
  static conveyor_test::Registrar CONVEYOR_CONCAT(test_registrar_, __LINE__)( \
      name, CONVEYOR_CONCAT(test_body_, __LINE__));                           \
  static void CONVEYOR_CONCAT(test_body_, __LINE__)()

#define CHECK(condition)                                                                 \
  do {                                                                                   \
    if (!(condition)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #condition); \
      ++conveyor_test::failures();                                                       \
    }                                                                                    \
  } while (0)

// Checks that `statement` throws conveyor::Error of the given kind.
#define CHECK_THROWS_KIND(statement, expected_kind)                                        \
  do {                                                                                     \
    bool thrown_ = false;                                                                  \
    try {                                                                                  \
      statement;                                                                           \
    } catch (const conveyor::Error& error_) {                                              \
      thrown_ = error_.kind() == (expected_kind);                                          \
    }                                                                                      \
    if (!thrown_) {                                                                        \
      std::fprintf(stderr, "%s:%d: %s did not throw %s\n", __FILE__, __LINE__, #statement, \
                   #expected_kind);                                                        \
      ++conveyor_test::failures();                                                         \
    }                                                                                      \
  } while (0)

#define TEST_MAIN() \
  int main() { return conveyor_test::run_all(); }
