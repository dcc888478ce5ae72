#include "conveyor/voc/xml_tree.h"

#include "conveyor/voc/document_encoding.h"
#include "conveyor/voc/xml_lexer.h"

namespace conveyor::voc {
namespace {

class TreeBuilder {
 public:
  explicit TreeBuilder(XmlTree& tree) : tree_(tree) {}

  void start_element(std::string_view name, std::size_t /*offset*/) {
    const auto index = static_cast<std::int32_t>(tree_.nodes.size());
    XmlNode node;
    node.tag_offset = static_cast<std::uint32_t>(tree_.names.size());
    node.tag_length = static_cast<std::uint32_t>(name.size());
    tree_.names.append(name);
    if (!open_.empty()) {
      XmlNode& parent = tree_.nodes[static_cast<std::size_t>(open_.back())];
      if (parent.first_child < 0) {
        // The parent's text no longer matters (it is not a leaf): drop it.
        tree_.texts.resize(parent.text_offset);
        parent.text_length = 0;
        parent.first_child = index;
      } else {
        tree_.nodes[static_cast<std::size_t>(last_child_.back())].next_sibling = index;
      }
      last_child_.back() = index;
    }
    node.text_offset = static_cast<std::uint32_t>(tree_.texts.size());
    tree_.nodes.push_back(node);
    open_.push_back(index);
    last_child_.push_back(-1);
  }

  void text(std::string_view chunk) {
    XmlNode& node = tree_.nodes[static_cast<std::size_t>(open_.back())];
    if (node.first_child >= 0) return;  // mixed content: ElementTree's tails, ignored
    tree_.texts.append(chunk);
    node.text_length += static_cast<std::uint32_t>(chunk.size());
  }

  void end_element() {
    open_.pop_back();
    last_child_.pop_back();
  }

 private:
  XmlTree& tree_;
  std::vector<std::int32_t> open_;
  std::vector<std::int32_t> last_child_;
};

}  // namespace

bool parse_xml_tree(std::string_view raw, bool is_unicode, XmlTree& tree, ParseStatus& status) {
  tree.clear();
  status = ParseStatus();
  std::string storage;
  PreparedDocument document;
  if (prepare_document(raw, is_unicode, storage, document, status)) {
    TreeBuilder builder(tree);
    XmlLexer<TreeBuilder> lexer(document.text, builder, status, document.options);
    lexer.run();
  }
  if (!status.ok) status.locate(document.text.empty() ? raw : document.text);
  return status.ok;
}

}  // namespace conveyor::voc
