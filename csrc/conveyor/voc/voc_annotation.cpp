#include "conveyor/voc/voc_annotation.h"

#include <charconv>
#include <cmath>

#include "conveyor/voc/document_encoding.h"
#include "conveyor/voc/xml_chars.h"
#include "conveyor/voc/xml_lexer.h"

namespace conveyor::voc {

ClassTable::ClassTable(const std::vector<std::string>& classes) {
  for (std::size_t i = 0; i < classes.size(); ++i)
    labels_.emplace(classes[i], static_cast<std::int64_t>(i + 1));
}

std::int64_t ClassTable::label(std::string_view name) const {
  if (keep_all_) return -1;
  const auto found = labels_.find(std::string(name));
  return found == labels_.end() ? 0 : found->second;
}

void AnnotationBatch::append(AnnotationBatch&& other) {
  const std::int64_t shift = offsets.back();
  for (std::size_t i = 1; i < other.offsets.size(); ++i) offsets.push_back(other.offsets[i] + shift);
  const auto move_all = [](auto& into, auto& from) {
    into.insert(into.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  };
  move_all(filenames, other.filenames);
  move_all(widths, other.widths);
  move_all(heights, other.heights);
  move_all(depths, other.depths);
  move_all(segmented, other.segmented);
  move_all(boxes, other.boxes);
  move_all(labels, other.labels);
  move_all(difficult, other.difficult);
  move_all(truncated, other.truncated);
  move_all(names, other.names);
  move_all(poses, other.poses);
}

void AnnotationBatch::truncate(std::size_t files) {
  if (files >= size()) return;
  const auto rows = static_cast<std::size_t>(offsets[files]);
  filenames.resize(files);
  widths.resize(files);
  heights.resize(files);
  depths.resize(files);
  segmented.resize(files);
  offsets.resize(files + 1);
  boxes.resize(rows * 4);
  labels.resize(rows);
  difficult.resize(rows);
  truncated.resize(rows);
  names.resize(rows);
  poses.resize(rows);
}

namespace {

// Where an element sits in the VOC schema.
enum class Field : std::uint8_t {
  kIgnored, kAnnotation, kFilename, kSize, kWidth, kHeight, kDepth, kSegmented,
  kObject, kName, kPose, kTruncated, kDifficult, kBndbox, kXmin, kYmin, kXmax, kYmax,
};

const char* field_tag(Field field) {
  switch (field) {
    case Field::kFilename: return "filename";
    case Field::kWidth: return "width";
    case Field::kHeight: return "height";
    case Field::kDepth: return "depth";
    case Field::kSegmented: return "segmented";
    case Field::kName: return "name";
    case Field::kPose: return "pose";
    case Field::kTruncated: return "truncated";
    case Field::kDifficult: return "difficult";
    case Field::kBndbox: return "bndbox";
    case Field::kXmin: return "xmin";
    case Field::kYmin: return "ymin";
    case Field::kXmax: return "xmax";
    case Field::kYmax: return "ymax";
    default: return "?";
  }
}

bool is_leaf(Field field) {
  return field != Field::kIgnored && field != Field::kAnnotation && field != Field::kSize &&
         field != Field::kObject && field != Field::kBndbox;
}

Field child_field(Field parent, std::string_view tag) {
  switch (parent) {
    case Field::kAnnotation:
      if (tag == "object") return Field::kObject;
      if (tag == "filename") return Field::kFilename;
      if (tag == "size") return Field::kSize;
      if (tag == "segmented") return Field::kSegmented;
      return Field::kIgnored;
    case Field::kSize:
      if (tag == "width") return Field::kWidth;
      if (tag == "height") return Field::kHeight;
      if (tag == "depth") return Field::kDepth;
      return Field::kIgnored;
    case Field::kObject:
      if (tag == "name") return Field::kName;
      if (tag == "bndbox") return Field::kBndbox;
      if (tag == "difficult") return Field::kDifficult;
      if (tag == "truncated") return Field::kTruncated;
      if (tag == "pose") return Field::kPose;
      return Field::kIgnored;
    case Field::kBndbox:
      if (tag == "xmin") return Field::kXmin;
      if (tag == "ymin") return Field::kYmin;
      if (tag == "xmax") return Field::kXmax;
      if (tag == "ymax") return Field::kYmax;
      return Field::kIgnored;
    default:
      return Field::kIgnored;
  }
}

bool parse_number(std::string_view text, double& value) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  return result.ec == std::errc() && result.ptr == end && std::isfinite(value);
}

bool parse_integer(std::string_view text, std::int64_t& value) {
  double number;
  if (!parse_number(text, number) || number != std::floor(number) || std::fabs(number) > 1e15)
    return false;
  value = static_cast<std::int64_t>(number);
  return true;
}

// Receives lexer events and fills one file's entry of the batch.
class VocReader {
 public:
  VocReader(const ClassTable& classes, AnnotationBatch& batch, ParseStatus& status)
      : classes_(classes), batch_(batch), status_(status) {
    batch_.filenames.emplace_back();
    batch_.widths.push_back(-1);
    batch_.heights.push_back(-1);
    batch_.depths.push_back(-1);
    batch_.segmented.push_back(0);
  }

  void start_element(std::string_view name, std::size_t offset) {
    if (!status_.ok) return;
    Field field;
    if (stack_.empty()) {
      if (name != "annotation")
        return status_.fail(offset, "the root element is <" + std::string(name) +
                                        ">, not <annotation>");
      field = Field::kAnnotation;
    } else {
      const Field parent = stack_.back();
      if (is_leaf(parent))
        return status_.fail(offset, "<" + std::string(field_tag(parent)) +
                                        "> should hold text, not the element <" +
                                        std::string(name) + ">");
      field = child_field(parent, name);
    }
    if (field == Field::kObject) begin_object(offset);
    if (is_leaf(field) || field == Field::kBndbox) {
      const unsigned bit = 1u << static_cast<unsigned>(field);
      unsigned& seen = field == Field::kFilename || field == Field::kSegmented ||
                               field == Field::kWidth || field == Field::kHeight ||
                               field == Field::kDepth
                           ? file_seen_
                           : object_seen_;
      if (seen & bit)
        return status_.fail(offset, "repeated <" + std::string(field_tag(field)) + ">" +
                                        object_context());
      seen |= bit;
      value_.clear();
      value_offset_ = offset;
    }
    stack_.push_back(field);
  }

  void text(std::string_view chunk) {
    if (!stack_.empty() && is_leaf(stack_.back())) value_.append(chunk);
  }

  void end_element() {
    if (!status_.ok) return;
    const Field field = stack_.back();
    stack_.pop_back();
    if (is_leaf(field)) store(field, python_strip(value_));
    else if (field == Field::kObject) end_object();
  }

 private:
  std::string object_context() const {
    return in_object_ ? " in object " + std::to_string(object_index_ + 1) : std::string();
  }

  void begin_object(std::size_t offset) {
    in_object_ = true;
    object_seen_ = 0;
    object_offset_ = offset;
    name_.clear();
    pose_.clear();
    box_[0] = box_[1] = box_[2] = box_[3] = 0.0f;
    difficult_ = truncated_ = false;
  }

  void end_object() {
    const auto has = [&](Field f) { return (object_seen_ >> static_cast<unsigned>(f)) & 1u; };
    const auto where = [&] { return " (object " + std::to_string(object_index_ + 1) + ")"; };
    if (!has(Field::kName) || name_.empty())
      return status_.fail(object_offset_, "object without a <name>" + where());
    if (!has(Field::kBndbox))
      return status_.fail(object_offset_, "object '" + name_ + "' has no <bndbox>" + where());
    for (Field f : {Field::kXmin, Field::kYmin, Field::kXmax, Field::kYmax})
      if (!has(f))
        return status_.fail(object_offset_, "the <bndbox> of object '" + name_ + "' has no <" +
                                                field_tag(f) + ">" + where());
    const std::int64_t label = classes_.label(name_);
    if (label == 0)
      return status_.fail(name_offset_, "unknown class '" + name_ + "'" + where() +
                                            "; pass classes=None to keep every name");
    batch_.boxes.insert(batch_.boxes.end(), box_, box_ + 4);
    batch_.labels.push_back(label);
    batch_.difficult.push_back(difficult_);
    batch_.truncated.push_back(truncated_);
    batch_.names.push_back(std::move(name_));
    batch_.poses.push_back(std::move(pose_));
    name_.clear();
    pose_.clear();
    ++batch_.offsets.back();
    ++object_index_;
    in_object_ = false;
  }

  void invalid(Field field, std::string_view text, const char* expected) {
    status_.fail(value_offset_, "invalid <" + std::string(field_tag(field)) + "> '" +
                                    std::string(text) + "'" + object_context() + ": expected " +
                                    expected);
  }

  void store(Field field, std::string_view text) {
    double number;
    std::int64_t integer;
    switch (field) {
      case Field::kFilename: batch_.filenames.back().assign(text); return;
      case Field::kName:
        name_.assign(text);
        name_offset_ = value_offset_;
        return;
      case Field::kPose: pose_.assign(text); return;
      case Field::kWidth:
      case Field::kHeight:
      case Field::kDepth: {
        if (text.empty()) return;  // <depth></depth>: not declared
        if (!parse_integer(text, integer) || integer < 0)
          return invalid(field, text, "a non-negative integer");
        auto& column = field == Field::kWidth    ? batch_.widths
                       : field == Field::kHeight ? batch_.heights
                                                 : batch_.depths;
        column.back() = integer;
        return;
      }
      case Field::kSegmented:
      case Field::kDifficult:
      case Field::kTruncated: {
        if (text.empty()) return;  // <difficult/>: false
        if (!parse_integer(text, integer)) return invalid(field, text, "an integer (0 or 1)");
        if (field == Field::kSegmented) batch_.segmented.back() = integer != 0;
        else if (field == Field::kDifficult) difficult_ = integer != 0;
        else truncated_ = integer != 0;
        return;
      }
      case Field::kXmin:
      case Field::kYmin:
      case Field::kXmax:
      case Field::kYmax:
        if (!parse_number(text, number)) return invalid(field, text, "a number");
        box_[static_cast<int>(field) - static_cast<int>(Field::kXmin)] = static_cast<float>(number);
        return;
      default:
        return;
    }
  }

  const ClassTable& classes_;
  AnnotationBatch& batch_;
  ParseStatus& status_;
  std::vector<Field> stack_;
  std::string value_;
  std::size_t value_offset_ = 0;
  unsigned file_seen_ = 0;
  unsigned object_seen_ = 0;
  bool in_object_ = false;
  std::size_t object_index_ = 0;
  std::size_t object_offset_ = 0;
  std::size_t name_offset_ = 0;
  std::string name_, pose_;
  float box_[4] = {0, 0, 0, 0};
  bool difficult_ = false, truncated_ = false;
};

}  // namespace

bool parse_voc_annotation(std::string_view raw, bool is_unicode, const ClassTable& classes,
                          AnnotationBatch& batch, ParseStatus& status) {
  status = ParseStatus();
  const std::size_t files_before = batch.size();
  batch.offsets.push_back(batch.offsets.back());
  std::string storage;
  PreparedDocument document;
  if (prepare_document(raw, is_unicode, storage, document, status)) {
    VocReader reader(classes, batch, status);
    XmlLexer<VocReader> lexer(document.text, reader, status, document.options);
    lexer.run();
  }
  if (status.ok) return true;
  status.locate(document.text.empty() ? raw : document.text);
  batch.offsets.pop_back();
  batch.truncate(files_before);
  if (batch.offsets.size() > files_before + 1) batch.offsets.resize(files_before + 1);
  return false;
}

}  // namespace conveyor::voc
