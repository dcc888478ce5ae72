#include "conveyor/voc/parse_status.h"

namespace conveyor::voc {

void ParseStatus::locate(std::string_view document) {
  const std::size_t end = offset < document.size() ? offset : document.size();
  line = 1;
  column = 1;
  for (std::size_t i = 0; i < end; ++i) {
    const unsigned char c = static_cast<unsigned char>(document[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {  // count characters, not UTF-8 continuation bytes
      ++column;
    }
  }
}

std::string ParseStatus::describe(std::string_view source) const {
  std::string text;
  if (!source.empty()) {
    text.append(source);
    text += ':' + std::to_string(line) + ':' + std::to_string(column) + ": ";
  } else {
    text = "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
  }
  return text + message;
}

}  // namespace conveyor::voc
