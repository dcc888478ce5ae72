#include "conveyor/voc/parse_status.h"

#include <cstdint>

#include "conveyor/voc/xml_chars.h"

namespace conveyor::voc {

std::string ParseStatus::printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    std::uint32_t code;
    const std::size_t n = decode_utf8(p, end, code);
    if (n == 0 || code < 0x20) {
      static const char* digits = "0123456789abcdef";
      const auto byte = static_cast<unsigned char>(*p);
      out += "\\x";
      out += digits[byte >> 4];
      out += digits[byte & 0xF];
      ++p;
    } else {
      out.append(p, n);
      p += n;
    }
  }
  return out;
}

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
