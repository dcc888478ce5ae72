// A compact element tree (tags and leaf text only) built by the lexer, from which the binding
// makes torchvision's nested dict. Only what parse_voc_xml looks at is kept: element names,
// structure, and the character data of elements without children.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/voc/parse_status.h"

namespace conveyor::voc {

struct XmlNode {
  std::uint32_t tag_offset = 0;  // into XmlTree::names
  std::uint32_t tag_length = 0;
  std::uint32_t text_offset = 0;  // into XmlTree::texts; text of a leaf (empty: no text at all)
  std::uint32_t text_length = 0;
  std::int32_t first_child = -1;
  std::int32_t next_sibling = -1;
};

struct XmlTree {
  std::vector<XmlNode> nodes;  // nodes[0] is the root (when parsing succeeded)
  std::string names;
  std::string texts;

  std::string_view tag(const XmlNode& node) const {
    return std::string_view(names).substr(node.tag_offset, node.tag_length);
  }
  std::string_view text(const XmlNode& node) const {
    return std::string_view(texts).substr(node.text_offset, node.text_length);
  }
  void clear() {
    nodes.clear();
    names.clear();
    texts.clear();
  }
};

// Parses `raw` (bytes, or UTF-8 from a Python str when `is_unicode`) into `tree`. On failure,
// status is not ok and has its line and column filled.
bool parse_xml_tree(std::string_view raw, bool is_unicode, XmlTree& tree, ParseStatus& status);

}  // namespace conveyor::voc
