// Typed reading of VOC annotations straight from the lexer's events (no tree): file-level fields
// and per-object boxes, labels, flags, names and poses, appended to a struct of arrays. Plain
// documents (most VOC files) take a one-pass fast path (simple_voc_reader.h) that gives the
// same result; everything else, and every error, goes through the full lexer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/voc/parse_status.h"
#include "conveyor/voc/string_pool.h"

namespace conveyor::voc {

// Class name -> 1-based label. A table made with keep_all() accepts every name (label -1).
class ClassTable {
 public:
  static ClassTable keep_all() { return ClassTable(); }
  explicit ClassTable(const std::vector<std::string>& classes);

  bool keeps_all() const { return keep_all_; }
  // 1-based label, -1 for keep_all tables, 0 when the name is unknown.
  std::int64_t label(std::string_view name) const {
    if (keep_all_) return -1;
    const std::uint32_t id = labels_.find(name);
    return id == StringPool::kAbsent ? 0 : label_of_id_[id];
  }

 private:
  ClassTable() : keep_all_(true) {}
  bool keep_all_ = false;
  StringPool labels_;
  std::vector<std::int64_t> label_of_id_;
};

// Many annotations as a struct of arrays; file i owns object rows offsets[i]..offsets[i+1].
// Object names and poses are ids into `strings` (each distinct text stored once).
struct AnnotationBatch {
  TextColumn filenames;
  std::vector<std::int64_t> widths, heights, depths;  // -1 when not declared
  std::vector<std::uint8_t> segmented;
  std::vector<std::int64_t> offsets{0};
  std::vector<float> boxes;  // 4 per object: xmin, ymin, xmax, ymax
  std::vector<std::int64_t> labels;
  std::vector<std::uint8_t> difficult, truncated;
  std::vector<std::uint32_t> name_ids, pose_ids;
  StringPool strings;

  std::size_t size() const { return widths.size(); }
  std::size_t num_objects() const { return labels.size(); }
  std::string_view name(std::size_t row) const { return strings[name_ids[row]]; }
  std::string_view pose(std::size_t row) const { return strings[pose_ids[row]]; }
  void append(const AnnotationBatch& other);  // concatenates, shifting other's offsets
  void truncate(std::size_t files);           // drops files from index `files` on
  void clear();                               // empties everything, keeping the capacity
};

// Parses one document and appends it to `batch`. On failure nothing is appended and status
// (with line and column) says why: malformed XML, or a document that is not a usable VOC
// annotation (root not <annotation>, object without <name> or a complete <bndbox>, a number
// that does not parse, a repeated field, an unknown class).
bool parse_voc_annotation(std::string_view raw, bool is_unicode, const ClassTable& classes,
                          AnnotationBatch& batch, ParseStatus& status);

// The same without the fast path for simple documents (read_simple_voc): every document goes
// through the full lexer. For tests that check the two paths agree.
bool parse_voc_annotation_with_lexer(std::string_view raw, bool is_unicode,
                                     const ClassTable& classes, AnnotationBatch& batch,
                                     ParseStatus& status);

}  // namespace conveyor::voc
