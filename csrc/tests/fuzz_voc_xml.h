// The VOC XML fuzz target: any bytes must give either a parse or a clean error with a position,
// never a crash, hang or out-of-bounds access; and both readers must agree on well-formedness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "conveyor/voc/voc_annotation.h"
#include "conveyor/voc/xml_tree.h"

inline int fuzz_voc_xml_one_input(const std::uint8_t* data, std::size_t size) {
  using namespace conveyor::voc;
  const std::string_view document(reinterpret_cast<const char*>(data), size);
  static thread_local XmlTree tree;
  ParseStatus tree_status;
  const bool tree_ok = parse_xml_tree(document, false, tree, tree_status);
  if (!tree_ok && (tree_status.line == 0 || tree_status.message.empty())) std::abort();
  if (tree_ok && tree.nodes.empty()) std::abort();

  static const ClassTable keep_all = ClassTable::keep_all();
  AnnotationBatch batch;
  ParseStatus typed_status;
  const bool typed_ok = parse_voc_annotation(document, false, keep_all, batch, typed_status);
  // The typed reader adds VOC rules on top of XML: it may refuse more, never accept more.
  if (typed_ok && !tree_ok) std::abort();
  if (typed_ok && batch.offsets.size() != 2) std::abort();
  if (!typed_ok && batch.size() != 0) std::abort();
  return 0;
}
