// The VOC XML fuzz target: any bytes must give either a parse or a clean error with a position,
// never a crash, hang or out-of-bounds access; and both readers must agree on well-formedness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "conveyor/voc/voc_annotation.h"
#include "conveyor/voc/xml_tree.h"

// Both batches hold the same files and objects (strings compared by value).
inline bool same_voc_batch(const conveyor::voc::AnnotationBatch& a,
                           const conveyor::voc::AnnotationBatch& b) {
  if (a.size() != b.size() || a.num_objects() != b.num_objects() || a.offsets != b.offsets ||
      a.widths != b.widths || a.heights != b.heights || a.depths != b.depths ||
      a.segmented != b.segmented || a.boxes.size() != b.boxes.size() || a.labels != b.labels ||
      a.difficult != b.difficult || a.truncated != b.truncated)
    return false;
  for (std::size_t i = 0; i < a.boxes.size(); ++i)  // bitwise: NaN cannot occur (finite only)
    if (a.boxes[i] != b.boxes[i]) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a.filenames[i] != b.filenames[i]) return false;
  for (std::size_t i = 0; i < a.num_objects(); ++i)
    if (a.name(i) != b.name(i) || a.pose(i) != b.pose(i)) return false;
  return true;
}

inline int fuzz_voc_xml_one_input(const std::uint8_t* data, std::size_t size) {
  using namespace conveyor::voc;
  const std::string_view document(reinterpret_cast<const char*>(data), size);
  static thread_local XmlTree tree;
  ParseStatus tree_status;
  const bool tree_ok = parse_xml_tree(document, false, tree, tree_status);
  if (!tree_ok && (tree_status.line == 0 || tree_status.message.empty())) std::abort();
  if (tree_ok && tree.nodes.empty()) std::abort();

  // The tree's fast path for simple documents must build exactly the full lexer's tree.
  static thread_local XmlTree full_tree;
  ParseStatus full_tree_status;
  const bool full_tree_ok = parse_xml_tree_with_lexer(document, false, full_tree, full_tree_status);
  if (full_tree_ok != tree_ok || tree.nodes.size() != full_tree.nodes.size()) std::abort();
  if (!tree_ok && tree_status.message != full_tree_status.message) std::abort();
  for (std::size_t i = 0; tree_ok && i < tree.nodes.size(); ++i) {
    const XmlNode& a = tree.nodes[i];
    const XmlNode& b = full_tree.nodes[i];
    if (tree.tag(a) != full_tree.tag(b) || tree.text(a) != full_tree.text(b) ||
        a.first_child != b.first_child || a.next_sibling != b.next_sibling ||
        (a.text_length == 0) != (b.text_length == 0))
      std::abort();
  }

  static const ClassTable keep_all = ClassTable::keep_all();
  AnnotationBatch batch;
  ParseStatus typed_status;
  const bool typed_ok = parse_voc_annotation(document, false, keep_all, batch, typed_status);
  // The typed reader adds VOC rules on top of XML: it may refuse more, never accept more.
  if (typed_ok && !tree_ok) std::abort();
  if (typed_ok && batch.offsets.size() != 2) std::abort();
  if (!typed_ok && batch.size() != 0) std::abort();

  // The fast path for simple documents must agree with the full lexer exactly: same verdict,
  // same fields; and a failure reports the full lexer's error.
  static const ClassTable some_classes({"dog", "horse", "cat", "person"});
  for (const ClassTable* classes : {&keep_all, &some_classes}) {
    AnnotationBatch fast, full;
    ParseStatus fast_status, full_status;
    const bool fast_ok = parse_voc_annotation(document, false, *classes, fast, fast_status);
    const bool full_ok =
        parse_voc_annotation_with_lexer(document, false, *classes, full, full_status);
    if (fast_ok != full_ok || !same_voc_batch(fast, full)) std::abort();
    if (!fast_ok &&
        (fast_status.message != full_status.message || fast_status.offset != full_status.offset))
      std::abort();
  }
  return 0;
}
