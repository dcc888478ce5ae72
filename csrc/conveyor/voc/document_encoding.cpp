#include "conveyor/voc/document_encoding.h"

#include <cstdint>
#include <cstring>

#include "conveyor/voc/xml_chars.h"

namespace conveyor::voc {
namespace {

// The encoding pseudo-attribute of a leading XML declaration, lower-cased ("" when absent).
std::string declared_encoding(std::string_view raw) {
  std::size_t start = 0;
  if (raw.size() >= 3 && std::memcmp(raw.data(), "\xEF\xBB\xBF", 3) == 0) start = 3;
  if (raw.compare(start, 5, "<?xml") != 0) return {};
  const std::size_t close = raw.find("?>", start);
  if (close == std::string_view::npos) return {};
  const std::string_view declaration = raw.substr(start, close - start);
  const std::size_t key = declaration.find("encoding");
  if (key == std::string_view::npos) return {};
  std::size_t i = key + 8;
  while (i < declaration.size() && is_space(declaration[i])) ++i;
  if (i >= declaration.size() || declaration[i] != '=') return {};
  ++i;
  while (i < declaration.size() && is_space(declaration[i])) ++i;
  if (i >= declaration.size() || (declaration[i] != '"' && declaration[i] != '\'')) return {};
  const char quote = declaration[i++];
  const std::size_t end = declaration.find(quote, i);
  if (end == std::string_view::npos) return {};
  std::string name(declaration.substr(i, end - i));
  for (char& c : name)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return name;
}

// windows-1252 bytes 0x80..0x9F (0 marks the five undefined bytes).
constexpr std::uint16_t kCp1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

bool transcode_single_byte(std::string_view raw, bool cp1252, std::string& storage,
                           ParseStatus& status) {
  storage.clear();
  storage.reserve(raw.size() + raw.size() / 8);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    std::uint32_t code = c;
    if (cp1252 && c >= 0x80 && c <= 0x9F) {
      code = kCp1252High[c - 0x80];
      if (code == 0) {
        status.fail(storage.size(), "byte value " + std::to_string(c) +
                                        " is undefined in the declared windows-1252 encoding");
        return false;
      }
    }
    append_utf8(storage, code);
  }
  return true;
}

}  // namespace

bool prepare_document(std::string_view raw, bool is_unicode, std::string& storage,
                      PreparedDocument& out, ParseStatus& status) {
  out.text = raw;
  out.options = {};
  const auto has_prefix = [&](const char* bytes, std::size_t n) {
    return raw.size() >= n && std::memcmp(raw.data(), bytes, n) == 0;
  };
  if (has_prefix("\xFE\xFF", 2) || has_prefix("\xFF\xFE", 2) || has_prefix("\0\0\xFE\xFF", 4) ||
      has_prefix("<\0", 2) || has_prefix("\0<", 2)) {
    status.fail(0, "UTF-16/UTF-32 documents are not supported; save the annotation as UTF-8");
    return false;
  }
  if (is_unicode) return true;
  const std::string encoding = declared_encoding(raw);
  if (encoding.empty() || encoding == "utf-8" || encoding == "utf8") return true;
  if (encoding == "us-ascii" || encoding == "ascii") {
    out.options.ascii_only = true;
    return true;
  }
  const bool latin1 = encoding == "iso-8859-1" || encoding == "latin-1" || encoding == "latin1" ||
                      encoding == "iso8859-1" || encoding == "l1";
  const bool cp1252 = encoding == "windows-1252" || encoding == "cp1252";
  if (!latin1 && !cp1252) {
    status.fail(raw.find("encoding"), "unsupported encoding '" + encoding +
                                          "' (conveyor reads UTF-8, US-ASCII, ISO-8859-1 and "
                                          "windows-1252)");
    return false;
  }
  if (!transcode_single_byte(raw, cp1252, storage, status)) return false;
  out.text = storage;
  return true;
}

}  // namespace conveyor::voc
