#include "conveyor/voc/simple_voc_reader.h"

#include <cstdint>

#include "conveyor/voc/voc_schema.h"
#include "conveyor/voc/xml_chars.h"

namespace conveyor::voc {

#if defined(__SSE2__)
namespace {

using namespace schema;

constexpr std::size_t kMaxSimpleDepth = 64;

struct OpenTag {
  const char* name;
  std::size_t length;
  Field field;
};

class SimpleVocReader {
 public:
  SimpleVocReader(std::string_view document, const ClassTable& classes, AnnotationBatch& batch)
      : p_(document.data()),
        end_(document.data() + document.size()),
        classes_(classes),
        batch_(batch) {}

  // False as soon as the document leaves the simple subset or breaks a VOC rule.
  bool read() {
    skip_space();
    if (!start_tag() || stack_[0].field != Field::kAnnotation) return false;
    while (depth_ > 0) {
      // Character data up to the next tag: plain ASCII only, kept only as a leaf's value.
      const char* run = p_;
      p_ = skip_plain_text(p_, end_);
      if (end_ - p_ < 2 || *p_ != '<') return false;
      const OpenTag& top = stack_[depth_ - 1];
      if (p_[1] == '/') {
        if (is_leaf(top.field) && !store(top.field, python_strip(std::string_view(
                                                        run, static_cast<std::size_t>(p_ - run)))))
          return false;
        if (!end_tag()) return false;
      } else {
        if (is_leaf(top.field)) return false;  // a field holding an element (an error)
        if (!start_tag()) return false;
      }
    }
    skip_space();
    if (p_ != end_) return false;  // comments, PIs or junk after the root: the full reader
    batch_.filenames.push_back(filename_);
    batch_.widths.push_back(size_[0]);
    batch_.heights.push_back(size_[1]);
    batch_.depths.push_back(size_[2]);
    batch_.segmented.push_back(segmented_);
    return true;
  }

 private:
  void skip_space() {
    while (p_ < end_ && is_space(*p_)) ++p_;
  }

  // <name> at p_, with a plain name shorter than 16 bytes and no attributes.
  bool start_tag() {
    if (depth_ == kMaxSimpleDepth) return false;
    const std::string_view name = plain_start_tag_name(p_, end_);
    if (name.empty()) return false;
    Field field;
    if (depth_ == 0) {
      if (!is(name, "annotation")) return false;
      field = Field::kAnnotation;
    } else {
      const Field parent = stack_[depth_ - 1].field;
      field = parent == Field::kIgnored ? Field::kIgnored : child_field(parent, name);
    }
    if (field == Field::kObject) {
      object_seen_ = 0;
      name_ = pose_ = std::string_view();
      box_[0] = box_[1] = box_[2] = box_[3] = 0.0f;
      difficult_ = truncated_ = false;
    }
    if (is_leaf(field) || field == Field::kBndbox) {
      const unsigned bit = 1u << static_cast<unsigned>(field);
      unsigned& seen = is_file_field(field) ? file_seen_ : object_seen_;
      if (seen & bit) return false;  // repeated field
      seen |= bit;
    }
    stack_[depth_++] = {name.data(), name.size(), field};
    p_ += 2 + name.size();
    return true;
  }

  // </name> at p_ closing the innermost element, with no space before '>'.
  bool end_tag() {
    const OpenTag& top = stack_[depth_ - 1];
    if (static_cast<std::size_t>(end_ - p_) < top.length + 3 ||
        !same_bytes(p_ + 2, top.name, top.length) || p_[2 + top.length] != '>')
      return false;
    p_ += 3 + top.length;
    --depth_;
    return top.field != Field::kObject || end_object();
  }

  bool end_object() {
    const auto has = [&](Field f) { return (object_seen_ >> static_cast<unsigned>(f)) & 1u; };
    if (!has(Field::kName) || name_.empty() || !has(Field::kBndbox) || !has(Field::kXmin) ||
        !has(Field::kYmin) || !has(Field::kXmax) || !has(Field::kYmax))
      return false;
    const std::int64_t label = classes_.label(name_);
    if (label == 0) return false;
    // One row: the caller's batch is rolled back if the document is abandoned later.
    batch_.boxes.insert(batch_.boxes.end(), box_, box_ + 4);
    batch_.labels.push_back(label);
    batch_.difficult.push_back(difficult_);
    batch_.truncated.push_back(truncated_);
    batch_.name_ids.push_back(intern(name_, last_name_, last_name_id_));
    batch_.pose_ids.push_back(intern(pose_, last_pose_, last_pose_id_));
    ++batch_.offsets.back();
    return true;
  }

  // Pool ids for strings that mostly repeat the previous one (poses nearly always do).
  std::uint32_t intern(std::string_view text, std::string_view& last, std::uint32_t& last_id) {
    if (last_id != StringPool::kAbsent && text == last) return last_id;
    last = text;
    last_id = batch_.strings.intern(text);
    return last_id;
  }

  bool store(Field field, std::string_view text) {
    double number;
    std::int64_t integer;
    switch (field) {
      case Field::kFilename:
        filename_ = text;
        return true;
      case Field::kName:
        name_ = text;
        return true;
      case Field::kPose:
        pose_ = text;
        return true;
      case Field::kWidth:
      case Field::kHeight:
      case Field::kDepth:
        if (text.empty()) return true;  // not declared
        if (!parse_integer(text, integer) || integer < 0) return false;
        size_[static_cast<int>(field) - static_cast<int>(Field::kWidth)] = integer;
        return true;
      case Field::kSegmented:
      case Field::kDifficult:
      case Field::kTruncated:
        if (text.empty()) return true;  // false
        if (!parse_integer(text, integer)) return false;
        if (field == Field::kSegmented)
          segmented_ = integer != 0;
        else if (field == Field::kDifficult)
          difficult_ = integer != 0;
        else
          truncated_ = integer != 0;
        return true;
      case Field::kXmin:
      case Field::kYmin:
      case Field::kXmax:
      case Field::kYmax:
        if (!parse_number(text, number)) return false;
        box_[static_cast<int>(field) - static_cast<int>(Field::kXmin)] = static_cast<float>(number);
        return true;
      default:
        return true;
    }
  }

  const char* p_;
  const char* const end_;
  const ClassTable& classes_;
  AnnotationBatch& batch_;
  OpenTag stack_[kMaxSimpleDepth];
  std::size_t depth_ = 0;
  unsigned file_seen_ = 0, object_seen_ = 0;
  std::string_view filename_, name_, pose_;  // views into the document
  std::string_view last_name_, last_pose_;
  std::uint32_t last_name_id_ = StringPool::kAbsent, last_pose_id_ = StringPool::kAbsent;
  float box_[4] = {0, 0, 0, 0};
  bool difficult_ = false, truncated_ = false, segmented_ = false;
  std::int64_t size_[3] = {-1, -1, -1};  // width, height, depth
};

}  // namespace

bool read_simple_voc(std::string_view document, const ClassTable& classes, AnnotationBatch& batch) {
  const std::size_t files_before = batch.size();
  batch.offsets.push_back(batch.offsets.back());
  if (SimpleVocReader(document, classes, batch).read()) return true;
  batch.truncate(files_before);
  return false;
}

#else  // without SSE2 every document takes the full reader

bool read_simple_voc(std::string_view, const ClassTable&, AnnotationBatch&) { return false; }

#endif

}  // namespace conveyor::voc
