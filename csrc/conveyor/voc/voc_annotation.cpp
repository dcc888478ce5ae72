#include "conveyor/voc/voc_annotation.h"

#include <array>

#include "conveyor/voc/document_encoding.h"
#include "conveyor/voc/simple_voc_reader.h"
#include "conveyor/voc/voc_schema.h"
#include "conveyor/voc/xml_chars.h"
#include "conveyor/voc/xml_lexer.h"

namespace conveyor::voc {

ClassTable::ClassTable(const std::vector<std::string>& classes) {
  for (std::size_t i = 0; i < classes.size(); ++i)
    if (labels_.intern(classes[i]) == label_of_id_.size())  // a repeated name keeps its first label
      label_of_id_.push_back(static_cast<std::int64_t>(i + 1));
}

void AnnotationBatch::append(const AnnotationBatch& other) {
  const std::int64_t shift = offsets.back();
  offsets.reserve(offsets.size() + other.size());
  for (std::size_t i = 1; i < other.offsets.size(); ++i)
    offsets.push_back(other.offsets[i] + shift);
  const auto append_all = [](auto& into, const auto& from) {
    into.insert(into.end(), from.begin(), from.end());
  };
  filenames.append(other.filenames);
  append_all(widths, other.widths);
  append_all(heights, other.heights);
  append_all(depths, other.depths);
  append_all(segmented, other.segmented);
  append_all(boxes, other.boxes);
  append_all(labels, other.labels);
  append_all(difficult, other.difficult);
  append_all(truncated, other.truncated);
  // Other's string ids, renumbered into this batch's pool.
  std::vector<std::uint32_t> renumber(other.strings.size());
  for (std::uint32_t id = 0; id < renumber.size(); ++id)
    renumber[id] = strings.intern(other.strings[id]);
  name_ids.reserve(name_ids.size() + other.name_ids.size());
  pose_ids.reserve(pose_ids.size() + other.pose_ids.size());
  for (const std::uint32_t id : other.name_ids) name_ids.push_back(renumber[id]);
  for (const std::uint32_t id : other.pose_ids) pose_ids.push_back(renumber[id]);
}

void AnnotationBatch::clear() {
  truncate(0);
  offsets.assign(1, 0);
  strings.clear();
}

void AnnotationBatch::truncate(std::size_t files) {
  // Also drops the rows of a file still being appended (offsets then run one entry ahead).
  if (files > size()) return;
  const auto rows = static_cast<std::size_t>(offsets[files]);
  filenames.truncate(files);
  widths.resize(files);
  heights.resize(files);
  depths.resize(files);
  segmented.resize(files);
  offsets.resize(files + 1);
  boxes.resize(rows * 4);
  labels.resize(rows);
  difficult.resize(rows);
  truncated.resize(rows);
  name_ids.resize(rows);
  pose_ids.resize(rows);
}

namespace {

using namespace schema;

// Receives lexer events and fills one file's entry of the batch.
class VocReader {
 public:
  VocReader(std::string_view document, const ClassTable& classes, AnnotationBatch& batch,
            ParseStatus& status)
      : document_(document), classes_(classes), batch_(batch), status_(status) {}

  void start_element(std::string_view name, std::size_t offset) {
    if (!status_.ok) return;
    Field field;
    if (depth_ == 0) {
      if (!is(name, "annotation"))
        return status_.fail(offset,
                            "the root element is <" + std::string(name) + ">, not <annotation>");
      field = Field::kAnnotation;
    } else {
      const Field parent = stack_[depth_ - 1];
      if (is_leaf(parent))
        return status_.fail(offset, "<" + std::string(field_tag(parent)) +
                                        "> should hold text, not the element <" +
                                        std::string(name) + ">");
      field = parent == Field::kIgnored ? Field::kIgnored : child_field(parent, name);
    }
    if (field == Field::kObject) begin_object(offset);
    if (is_leaf(field) || field == Field::kBndbox) {
      const unsigned bit = 1u << static_cast<unsigned>(field);
      unsigned& seen = is_file_field(field) ? file_seen_ : object_seen_;
      if (seen & bit)
        return status_.fail(offset,
                            "repeated <" + std::string(field_tag(field)) + ">" + object_context());
      seen |= bit;
      value_ = std::string_view();
      value_copied_ = false;
      value_offset_ = offset;
    }
    if (depth_ == stack_.size())  // the lexer's depth bound makes this unreachable
      return status_.fail(offset, "elements nested too deeply");
    stack_[depth_++] = field;
  }

  void text(std::string_view chunk) {
    if (depth_ == 0 || !is_leaf(stack_[depth_ - 1])) return;
    if (value_.empty() && !value_copied_ && chunk.data() >= document_.data() &&
        chunk.data() + chunk.size() <= document_.data() + document_.size()) {
      value_ = chunk;  // the common case: one run of the document, used in place
      return;
    }
    if (!value_copied_) {  // the chunk is decoded text (a reference, CRLF) or a second run
      copy_.assign(value_.data(), value_.size());
      value_copied_ = true;
    }
    copy_.append(chunk);
    value_ = copy_;
  }

  void end_element() {
    if (!status_.ok) return;
    const Field field = stack_[--depth_];
    if (is_leaf(field))
      store(field, python_strip(value_));
    else if (field == Field::kObject)
      end_object();
  }

  // Called once the document parsed: commits the file-level fields.
  void finish() {
    batch_.filenames.push_back(filename_);
    batch_.widths.push_back(size_[0]);
    batch_.heights.push_back(size_[1]);
    batch_.depths.push_back(size_[2]);
    batch_.segmented.push_back(segmented_);
  }

 private:
  std::string object_context() const {
    return in_object_ ? " in object " + std::to_string(object_index_ + 1) : std::string();
  }

  void begin_object(std::size_t offset) {
    in_object_ = true;
    object_seen_ = 0;
    object_offset_ = offset;
    name_id_ = pose_id_ = kNoString;
    box_[0] = box_[1] = box_[2] = box_[3] = 0.0f;
    difficult_ = truncated_ = false;
  }

  void end_object() {
    const auto has = [&](Field f) { return (object_seen_ >> static_cast<unsigned>(f)) & 1u; };
    const auto where = [&] { return " (object " + std::to_string(object_index_ + 1) + ")"; };
    const std::string_view name =
        name_id_ == kNoString ? std::string_view() : batch_.strings[name_id_];
    if (!has(Field::kName) || name.empty())
      return status_.fail(object_offset_, "object without a <name>" + where());
    if (!has(Field::kBndbox))
      return status_.fail(object_offset_,
                          "object '" + std::string(name) + "' has no <bndbox>" + where());
    for (Field f : {Field::kXmin, Field::kYmin, Field::kXmax, Field::kYmax})
      if (!has(f))
        return status_.fail(object_offset_, "the <bndbox> of object '" + std::string(name) +
                                                "' has no <" + field_tag(f) + ">" + where());
    const std::int64_t label = classes_.label(name);
    if (label == 0)
      return status_.fail(name_offset_, "unknown class '" + std::string(name) + "'" + where() +
                                            "; pass classes=None to keep every name");
    if (pose_id_ == kNoString) pose_id_ = batch_.strings.intern(std::string_view());
    batch_.boxes.insert(batch_.boxes.end(), box_, box_ + 4);
    batch_.labels.push_back(label);
    batch_.difficult.push_back(difficult_);
    batch_.truncated.push_back(truncated_);
    batch_.name_ids.push_back(name_id_);
    batch_.pose_ids.push_back(pose_id_);
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
      case Field::kFilename:
        filename_ = text;
        return;
      case Field::kName:
        name_id_ = batch_.strings.intern(text);
        name_offset_ = value_offset_;
        return;
      case Field::kPose:
        pose_id_ = batch_.strings.intern(text);
        return;
      case Field::kWidth:
      case Field::kHeight:
      case Field::kDepth: {
        if (text.empty()) return;  // <depth></depth>: not declared
        if (!parse_integer(text, integer) || integer < 0)
          return invalid(field, text, "a non-negative integer");
        size_[static_cast<int>(field) - static_cast<int>(Field::kWidth)] = integer;
        return;
      }
      case Field::kSegmented:
      case Field::kDifficult:
      case Field::kTruncated: {
        if (text.empty()) return;  // <difficult/>: false
        if (!parse_integer(text, integer)) return invalid(field, text, "an integer (0 or 1)");
        if (field == Field::kSegmented)
          segmented_ = integer != 0;
        else if (field == Field::kDifficult)
          difficult_ = integer != 0;
        else
          truncated_ = integer != 0;
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

  static constexpr std::uint32_t kNoString = StringPool::kAbsent;

  const std::string_view document_;
  const ClassTable& classes_;
  AnnotationBatch& batch_;
  ParseStatus& status_;
  std::array<Field, kMaxDepth> stack_;
  std::size_t depth_ = 0;
  std::string_view value_;  // the current leaf's text: in the document, or in copy_
  bool value_copied_ = false;
  std::string copy_;
  std::size_t value_offset_ = 0;
  unsigned file_seen_ = 0;
  unsigned object_seen_ = 0;
  bool in_object_ = false;
  std::size_t object_index_ = 0;
  std::size_t object_offset_ = 0;
  std::size_t name_offset_ = 0;
  std::uint32_t name_id_ = kNoString, pose_id_ = kNoString;
  float box_[4] = {0, 0, 0, 0};
  bool difficult_ = false, truncated_ = false;
  std::string filename_;
  std::int64_t size_[3] = {-1, -1, -1};  // width, height, depth
  bool segmented_ = false;
};

}  // namespace

namespace {

// The full reader (every XML rule, every error message) on a prepared document.
bool read_with_lexer(const PreparedDocument& document, const ClassTable& classes,
                     AnnotationBatch& batch, ParseStatus& status) {
  const std::size_t files_before = batch.size();
  batch.offsets.push_back(batch.offsets.back());
  thread_local LexerWorkspace workspace;
  VocReader reader(document.text, classes, batch, status);
  XmlLexer<VocReader> lexer(document.text, reader, status, document.options, &workspace);
  if (lexer.run() && status.ok) {
    reader.finish();
    return true;
  }
  status.locate(document.text);
  batch.truncate(files_before);  // drops the rows of the failed document too
  return false;
}

bool parse(std::string_view raw, bool is_unicode, const ClassTable& classes, AnnotationBatch& batch,
           ParseStatus& status, bool allow_fast_path) {
  status = ParseStatus();
  thread_local std::string storage;
  PreparedDocument document;
  if (!prepare_document(raw, is_unicode, storage, document, status)) {
    status.locate(document.text.empty() ? raw : document.text);
    return false;
  }
  if (allow_fast_path && read_simple_voc(document.text, classes, batch)) return true;
  return read_with_lexer(document, classes, batch, status);
}

}  // namespace

bool parse_voc_annotation(std::string_view raw, bool is_unicode, const ClassTable& classes,
                          AnnotationBatch& batch, ParseStatus& status) {
  return parse(raw, is_unicode, classes, batch, status, /*allow_fast_path=*/true);
}

bool parse_voc_annotation_with_lexer(std::string_view raw, bool is_unicode,
                                     const ClassTable& classes, AnnotationBatch& batch,
                                     ParseStatus& status) {
  return parse(raw, is_unicode, classes, batch, status, /*allow_fast_path=*/false);
}

}  // namespace conveyor::voc
