// A compact element tree (tags and leaf text only) built by the lexer, from which the binding
// makes torchvision's nested dict. Only what parse_voc_xml looks at is kept: element names,
// structure, and the character data of elements without children.
//
// Tags are ids into a pool that a reused tree keeps from one document to the next (VOC files
// share a few dozen tags), so that the binding can keep one Python str per tag id. Leaf text
// that is one run of the document is referenced in place, not copied: the tree is valid while
// the document passed to parse_xml_tree is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/voc/parse_status.h"
#include "conveyor/voc/string_pool.h"

namespace conveyor::voc {

struct XmlNode {
  std::uint32_t tag = 0;          // id in XmlTree::tags
  std::uint32_t text_length = 0;  // text of a leaf (0: no text at all)
  std::size_t text_offset = 0;    // into the document, or into XmlTree::texts
  bool text_in_document = false;
  std::int32_t first_child = -1;
  std::int32_t next_sibling = -1;
};

struct XmlTree {
  // Tag pools larger than this are emptied before the next document (hostile input cannot
  // grow them without bound); tag_generation then changes, so cached ids must be dropped.
  static constexpr std::size_t kMaxPooledTags = 4096;

  std::vector<XmlNode> nodes;  // nodes[0] is the root (when parsing succeeded)
  StringPool tags;
  std::uint64_t tag_generation = 0;
  std::string texts;          // leaf text that had to be decoded or joined
  std::string_view document;  // the UTF-8 text parsed (the input, or `transcoded`)
  std::string transcoded;     // the input in UTF-8 when it declared another encoding

  std::string_view tag(const XmlNode& node) const { return tags[node.tag]; }
  std::string_view text(const XmlNode& node) const {
    return (node.text_in_document ? document : std::string_view(texts))
        .substr(node.text_offset, node.text_length);
  }
  void clear() {
    nodes.clear();
    texts.clear();
    document = std::string_view();
    if (tags.size() > kMaxPooledTags) {
      tags.clear();
      ++tag_generation;
    }
  }
};

// Parses `raw` (bytes, or UTF-8 from a Python str when `is_unicode`) into `tree`. On failure,
// status is not ok and has its line and column filled.
bool parse_xml_tree(std::string_view raw, bool is_unicode, XmlTree& tree, ParseStatus& status);

// The same without the one-pass fast path for simple documents (every document goes through
// the full lexer). For tests that check the two paths build the same tree.
bool parse_xml_tree_with_lexer(std::string_view raw, bool is_unicode, XmlTree& tree,
                               ParseStatus& status);

}  // namespace conveyor::voc
