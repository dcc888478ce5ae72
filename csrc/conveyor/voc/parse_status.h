// The outcome of parsing one XML document, pugixml style: the lexer never throws; callers
// turn a failed status into conveyor::Error(kAnnotation) with the file name and position.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace conveyor::voc {

struct ParseStatus {
  bool ok = true;
  std::size_t offset = 0;  // byte offset of the problem in the (UTF-8) document
  std::size_t line = 0;    // 1-based, filled by locate()
  std::size_t column = 0;  // 1-based, in characters
  std::string message;

  // Records the first failure only; later ones are consequences.
  void fail(std::size_t at, std::string what) {
    if (!ok) return;
    ok = false;
    offset = at;
    message = printable(what);
  }

  // Messages quote document content: keep them valid UTF-8 (invalid bytes become \xNN).
  static std::string printable(const std::string& text);

  // Computes line and column of `offset` in `document` (done once, on failure only).
  void locate(std::string_view document);

  // "path:line:column: message" (or "line L, column C: message" without a path).
  std::string describe(std::string_view source) const;
};

}  // namespace conveyor::voc
