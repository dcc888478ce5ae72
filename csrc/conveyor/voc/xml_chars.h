// Character-level rules of XML 1.0 on UTF-8 input: decoding, the Char production, name
// characters, and Python's str.strip() whitespace (torchvision strips leaf text with it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace conveyor::voc {

// Decodes one UTF-8 sequence at [p, end). Returns its length (1..4) and sets `code`, or returns
// 0 for an invalid sequence (truncated, overlong, surrogate, beyond U+10FFFF).
inline std::size_t decode_utf8(const char* p, const char* end, std::uint32_t& code) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(p[i]); };
  const unsigned char c0 = byte(0);
  if (c0 < 0x80) {
    code = c0;
    return 1;
  }
  std::size_t length;
  std::uint32_t minimum;
  if ((c0 & 0xE0) == 0xC0) {
    length = 2, code = c0 & 0x1F, minimum = 0x80;
  } else if ((c0 & 0xF0) == 0xE0) {
    length = 3, code = c0 & 0x0F, minimum = 0x800;
  } else if ((c0 & 0xF8) == 0xF0) {
    length = 4, code = c0 & 0x07, minimum = 0x10000;
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3F);
  }
  if (code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

// The Char production of XML 1.0 (expat also refuses U+FFFE and U+FFFF).
inline bool is_xml_char(std::uint32_t c) {
  if (c < 0x20) return c == 0x9 || c == 0xA || c == 0xD;
  return c <= 0xD7FF || (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Byte classes for the lexer's hot loops (one table lookup instead of a chain of compares).
enum ByteClass : std::uint8_t {
  kNameStartByte = 1,  // ASCII NameStartChar
  kNameByte = 2,       // ASCII NameChar
  kPlainTextByte = 4,  // ASCII character data needing no attention (not < & ] CR or a control)
  kColonByte = 8,      // ':' (a namespace prefix separator in names)
};

constexpr std::array<std::uint8_t, 256> make_byte_classes() {
  std::array<std::uint8_t, 256> table{};
  for (int c = 0; c < 128; ++c) {
    const bool start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool name = start || (c >= '0' && c <= '9') || c == '-' || c == '.';
    const bool plain = (c >= 0x20 && c != '<' && c != '&' && c != ']') || c == '\n' || c == '\t';
    table[c] =
        static_cast<std::uint8_t>((start ? kNameStartByte : 0) | (name ? kNameByte : 0) |
                                  (plain ? kPlainTextByte : 0) | (c == ':' ? kColonByte : 0));
  }
  return table;
}

inline constexpr std::array<std::uint8_t, 256> kByteClasses = make_byte_classes();

inline bool is_ascii_name_start(unsigned char c) { return kByteClasses[c] & kNameStartByte; }
inline bool is_ascii_name_char(unsigned char c) { return kByteClasses[c] & kNameByte; }
inline bool is_plain_text(unsigned char c) { return kByteClasses[c] & kPlainTextByte; }

// The first byte at or after `p` that is not plain text (see kPlainTextByte), or `end`.
// Sixteen bytes at a time with SSE2 (always present on x86-64): text runs in VOC files are
// short, so what matters is deciding a whole run with one compare instead of a loop.
inline const char* skip_plain_text(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), tab = _mm_set1_epi8('\t'),
                newline = _mm_set1_epi8('\n'), less = _mm_set1_epi8('<'),
                ampersand = _mm_set1_epi8('&'), bracket = _mm_set1_epi8(']');
  while (end - p >= 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed compare: controls and every byte >= 0x80 are "below space".
    const __m128i low =
        _mm_andnot_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, tab), _mm_cmpeq_epi8(bytes, newline)),
                         _mm_cmplt_epi8(bytes, space));
    const __m128i special =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, less), _mm_cmpeq_epi8(bytes, ampersand)),
                     _mm_or_si128(_mm_cmpeq_epi8(bytes, bracket), low));
    const int mask = _mm_movemask_epi8(special);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && is_plain_text(static_cast<unsigned char>(*p))) ++p;
  return p;
}

#if defined(__SSE2__)
// How many of the 16 bytes at p are in [A-Za-z0-9_.-] before the first that is not (16: all).
// The caller guarantees 16 readable bytes.
inline int simple_name_length(const char* p) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  // Range checks as signed compares after shifting the range's start to -128.
  const auto in_range = [](__m128i values, char first, int count) {
    const __m128i shifted = _mm_add_epi8(values, _mm_set1_epi8(static_cast<char>(0x80 - first)));
    return _mm_cmplt_epi8(shifted, _mm_set1_epi8(static_cast<char>(-128 + count)));
  };
  const __m128i letter = in_range(_mm_or_si128(bytes, _mm_set1_epi8(0x20)), 'a', 26);
  const __m128i digit = in_range(bytes, '0', 10);
  const __m128i punctuation = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('_')),
                                                        _mm_cmpeq_epi8(bytes, _mm_set1_epi8('.'))),
                                           _mm_cmpeq_epi8(bytes, _mm_set1_epi8('-')));
  const int in_name = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), punctuation));
  return __builtin_ctz(static_cast<unsigned>(~in_name));  // bit 16 of ~in_name is always set
}

// The name of a plain start tag "<name>" at p: no attributes, an ASCII name shorter than 16
// bytes. Empty for anything else (the full lexer then reads it). Needs 17 readable bytes.
inline std::string_view plain_start_tag_name(const char* p, const char* end) {
  if (end - p < 17 || *p != '<') return {};
  const unsigned char first = static_cast<unsigned char>(p[1]);
  if (!is_ascii_name_start(first) || first == ':') return {};
  const int length = simple_name_length(p + 1);
  if (length >= 16 || p[1 + length] != '>') return {};
  return std::string_view(p + 1, static_cast<std::size_t>(length));
}
#endif

// a[0, n) == b[0, n) for short strings, without a call to memcmp.
inline bool same_bytes(const char* a, const char* b, std::size_t n) {
  if (n >= 8) {
    std::uint64_t x, y;
    for (; n > 8; n -= 8, a += 8, b += 8) {
      std::memcpy(&x, a, 8);
      std::memcpy(&y, b, 8);
      if (x != y) return false;
    }
    std::memcpy(&x, a + n - 8, 8);  // the last 8 bytes (overlapping what was compared)
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  if (n >= 4) {
    std::uint32_t x0, y0, x1, y1;
    std::memcpy(&x0, a, 4);
    std::memcpy(&y0, b, 4);
    std::memcpy(&x1, a + n - 4, 4);
    std::memcpy(&y1, b + n - 4, 4);
    return x0 == y0 && x1 == y1;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// NameStartChar / NameChar of XML 1.0 (fifth edition) for code points >= 0x80.
inline bool is_unicode_name_start(std::uint32_t c) {
  return (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x2FF) ||
         (c >= 0x370 && c <= 0x37D) || (c >= 0x37F && c <= 0x1FFF) ||
         (c >= 0x200C && c <= 0x200D) || (c >= 0x2070 && c <= 0x218F) ||
         (c >= 0x2C00 && c <= 0x2FEF) || (c >= 0x3001 && c <= 0xD7FF) ||
         (c >= 0xF900 && c <= 0xFDCF) || (c >= 0xFDF0 && c <= 0xFFFD) ||
         (c >= 0x10000 && c <= 0xEFFFF);
}

inline bool is_unicode_name_char(std::uint32_t c) {
  return is_unicode_name_start(c) || c == 0xB7 || (c >= 0x300 && c <= 0x36F) ||
         (c >= 0x203F && c <= 0x2040);
}

inline void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// Whitespace as Python's str.isspace() sees it, restricted to characters XML allows.
inline bool is_python_space(std::uint32_t c) {
  switch (c) {
    case 0x9:
    case 0xA:
    case 0xD:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

// str.strip() on valid UTF-8 text.
inline std::string_view python_strip(std::string_view text) {
  if (text.empty()) return text;
  // Fast path: ASCII, non-space at both ends (every VOC value in practice).
  const auto first = static_cast<unsigned char>(text.front());
  const auto last = static_cast<unsigned char>(text.back());
  if (first > ' ' && first < 0x80 && last > ' ' && last < 0x80) return text;
  const char* begin = text.data();
  const char* end = begin + text.size();
  while (begin < end) {
    std::uint32_t c;
    const std::size_t n = decode_utf8(begin, end, c);
    if (n == 0 || !is_python_space(c)) break;
    begin += n;
  }
  while (end > begin) {
    const char* start = end - 1;
    while (start > begin && (static_cast<unsigned char>(*start) & 0xC0) == 0x80) --start;
    std::uint32_t c;
    const std::size_t n = decode_utf8(start, end, c);
    if (n == 0 || !is_python_space(c)) break;
    end = start;
  }
  return std::string_view(begin, static_cast<std::size_t>(end - begin));
}

}  // namespace conveyor::voc
