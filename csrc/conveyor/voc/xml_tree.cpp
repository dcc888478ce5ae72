#include "conveyor/voc/xml_tree.h"

#include "conveyor/voc/document_encoding.h"
#include "conveyor/voc/xml_lexer.h"

namespace conveyor::voc {
namespace {

struct OpenNode {
  std::int32_t node;
  std::int32_t last_child;
};

class TreeBuilder {
 public:
  // `open` is a reused buffer (no allocation per document once warm).
  TreeBuilder(XmlTree& tree, std::vector<OpenNode>& open) : tree_(tree), open_(open) {}

  void start_element(std::string_view name, std::size_t /*offset*/) {
    const auto index = static_cast<std::int32_t>(tree_.nodes.size());
    XmlNode node;
    node.tag = tree_.tags.intern(name);
    if (depth_ > 0) {
      OpenNode& parent_entry = open_[depth_ - 1];
      XmlNode& parent = tree_.nodes[static_cast<std::size_t>(parent_entry.node)];
      if (parent.first_child < 0) {
        // The parent's text no longer matters (it is not a leaf): drop it.
        if (!parent.text_in_document) tree_.texts.resize(parent.text_offset);
        parent.text_length = 0;
        parent.text_in_document = false;
        parent.first_child = index;
      } else {
        tree_.nodes[static_cast<std::size_t>(parent_entry.last_child)].next_sibling = index;
      }
      parent_entry.last_child = index;
    }
    node.text_offset = tree_.texts.size();
    tree_.nodes.push_back(node);
    if (depth_ == open_.size()) open_.push_back({index, -1});
    else open_[depth_] = {index, -1};
    ++depth_;
  }

  void text(std::string_view chunk) {
    XmlNode& node = tree_.nodes[static_cast<std::size_t>(open_[depth_ - 1].node)];
    if (node.first_child >= 0) return;  // mixed content: ElementTree's tails, ignored
    const std::string_view document = tree_.document;
    if (node.text_length == 0 && chunk.data() >= document.data() &&
        chunk.data() + chunk.size() <= document.data() + document.size()) {
      node.text_offset = static_cast<std::size_t>(chunk.data() - document.data());
      node.text_length = static_cast<std::uint32_t>(chunk.size());
      node.text_in_document = true;  // one run of the document: referenced, not copied
      return;
    }
    if (node.text_in_document) {  // a second chunk: join the two in texts
      const std::string_view first = tree_.text(node);
      node.text_offset = tree_.texts.size();
      node.text_in_document = false;
      tree_.texts.append(first);
    }
    tree_.texts.append(chunk);
    node.text_length += static_cast<std::uint32_t>(chunk.size());
  }

  void end_element() { --depth_; }

 private:
  XmlTree& tree_;
  std::vector<OpenNode>& open_;
  std::size_t depth_ = 0;
};

}  // namespace

bool parse_xml_tree(std::string_view raw, bool is_unicode, XmlTree& tree, ParseStatus& status) {
  tree.clear();
  status = ParseStatus();
  thread_local LexerWorkspace workspace;
  thread_local std::vector<OpenNode> open;
  PreparedDocument document;
  if (prepare_document(raw, is_unicode, tree.transcoded, document, status)) {
    tree.document = document.text;
    TreeBuilder builder(tree, open);
    XmlLexer<TreeBuilder> lexer(document.text, builder, status, document.options, &workspace);
    lexer.run();
  }
  if (!status.ok) status.locate(document.text.empty() ? raw : document.text);
  return status.ok;
}

}  // namespace conveyor::voc
