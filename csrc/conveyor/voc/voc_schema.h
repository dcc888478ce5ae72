// The VOC annotation schema as the typed readers see it: which element is which field, and how
// field text becomes numbers. Shared by the full reader (voc_annotation.cpp) and the fast path
// for simple documents (simple_voc_reader.cpp), so that both read a document the same way.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace conveyor::voc::schema {

// Where an element sits in the VOC schema.
enum class Field : std::uint8_t {
  kIgnored,
  kAnnotation,
  kFilename,
  kSize,
  kWidth,
  kHeight,
  kDepth,
  kSegmented,
  kObject,
  kName,
  kPose,
  kTruncated,
  kDifficult,
  kBndbox,
  kXmin,
  kYmin,
  kXmax,
  kYmax,
};

inline const char* field_tag(Field field) {
  switch (field) {
    case Field::kFilename:
      return "filename";
    case Field::kWidth:
      return "width";
    case Field::kHeight:
      return "height";
    case Field::kDepth:
      return "depth";
    case Field::kSegmented:
      return "segmented";
    case Field::kName:
      return "name";
    case Field::kPose:
      return "pose";
    case Field::kTruncated:
      return "truncated";
    case Field::kDifficult:
      return "difficult";
    case Field::kBndbox:
      return "bndbox";
    case Field::kXmin:
      return "xmin";
    case Field::kYmin:
      return "ymin";
    case Field::kXmax:
      return "xmax";
    case Field::kYmax:
      return "ymax";
    default:
      return "?";
  }
}

inline bool is_leaf(Field field) {
  return field != Field::kIgnored && field != Field::kAnnotation && field != Field::kSize &&
         field != Field::kObject && field != Field::kBndbox;
}

// tag == literal, with the literal's length known at compile time (no strlen, inlined compare).
template <std::size_t N>
inline bool is(std::string_view tag, const char (&literal)[N]) {
  return tag.size() == N - 1 && std::memcmp(tag.data(), literal, N - 1) == 0;
}

inline Field child_field(Field parent, std::string_view tag) {
  switch (parent) {
    case Field::kAnnotation:
      if (is(tag, "object")) return Field::kObject;
      if (is(tag, "filename")) return Field::kFilename;
      if (is(tag, "size")) return Field::kSize;
      if (is(tag, "segmented")) return Field::kSegmented;
      return Field::kIgnored;
    case Field::kSize:
      if (is(tag, "width")) return Field::kWidth;
      if (is(tag, "height")) return Field::kHeight;
      if (is(tag, "depth")) return Field::kDepth;
      return Field::kIgnored;
    case Field::kObject:
      if (is(tag, "name")) return Field::kName;
      if (is(tag, "bndbox")) return Field::kBndbox;
      if (is(tag, "difficult")) return Field::kDifficult;
      if (is(tag, "truncated")) return Field::kTruncated;
      if (is(tag, "pose")) return Field::kPose;
      return Field::kIgnored;
    case Field::kBndbox:
      if (tag.size() == 4 && tag[1] == 'm') {
        if (is(tag, "xmin")) return Field::kXmin;
        if (is(tag, "ymin")) return Field::kYmin;
        if (is(tag, "xmax")) return Field::kXmax;
        if (is(tag, "ymax")) return Field::kYmax;
      }
      return Field::kIgnored;
    default:
      return Field::kIgnored;
  }
}

inline bool parse_number(std::string_view text, double& value) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  if (text.size() <= 9) {  // fast path: plain decimal integers, the common case in VOC files
    std::uint32_t integer = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i)
      integer = integer * 10 + static_cast<std::uint32_t>(text[i] - '0');
    if (i == text.size()) {
      value = integer;
      return true;
    }
  }
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  return result.ec == std::errc() && result.ptr == end && std::isfinite(value);
}

inline bool parse_integer(std::string_view text, std::int64_t& value) {
  double number;
  if (!parse_number(text, number) || number != std::floor(number) || std::fabs(number) > 1e15)
    return false;
  value = static_cast<std::int64_t>(number);
  return true;
}

// The fields stored once per file (the others are per object).
inline bool is_file_field(Field field) {
  return field == Field::kFilename || field == Field::kSegmented || field == Field::kWidth ||
         field == Field::kHeight || field == Field::kDepth;
}

}  // namespace conveyor::voc::schema
