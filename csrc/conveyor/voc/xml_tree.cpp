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
        parent.text_offset = tree_.texts.size();
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
    if (depth_ == open_.size())
      open_.push_back({index, -1});
    else
      open_[depth_] = {index, -1};
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

// Tag ids for names that mostly repeat from document to document: a small direct-mapped
// cache in front of the pool's hash table (a miss costs one pool lookup). A cached id is
// checked against the pool before use, so the cache is right for any tree and after the pool
// was emptied.
class TagCache {
 public:
  std::uint32_t id(StringPool& tags, std::string_view name) {
    std::uint32_t& entry = entries_[(name.size() * 7 + static_cast<unsigned char>(name.front()) +
                                     static_cast<unsigned char>(name.back()) * 3) &
                                    (kEntries - 1)];
    if (entry < tags.size()) {
      const std::string_view cached = tags[entry];
      if (cached.size() == name.size() && same_bytes(cached.data(), name.data(), name.size()))
        return entry;
    }
    entry = tags.intern(name);
    return entry;
  }

 private:
  static constexpr std::size_t kEntries = 256;
  std::uint32_t entries_[kEntries] = {};
};

// The tree of a "simple" document (no declaration, comments, references, CDATA, attributes,
// namespaces, empty-element tags, CR or non-ASCII; short plain names) in one tight pass.
// Returns false for anything else; the caller then clears the tree and uses the full lexer.
class SimpleTreeReader {
 public:
  SimpleTreeReader(std::string_view document, XmlTree& tree, TagCache& tags)
      : p_(document.data()),
        begin_(document.data()),
        end_(document.data() + document.size()),
        tree_(tree),
        tags_(tags) {}

  bool read() {
    while (p_ < end_ && is_space(*p_)) ++p_;
    if (!start_tag()) return false;
    while (depth_ > 0) {
      const char* run = p_;
      p_ = skip_plain_text(p_, end_);
      if (end_ - p_ < 2 || *p_ != '<') return false;
      Open& top = open_[depth_ - 1];
      XmlNode& node = tree_.nodes[static_cast<std::size_t>(top.node)];
      if (p_ > run && node.first_child < 0) {  // a leaf's text (text after a child is a tail)
        node.text_offset = static_cast<std::size_t>(run - begin_);
        node.text_length = static_cast<std::uint32_t>(p_ - run);
        node.text_in_document = true;
      }
      if (p_[1] == '/') {
        if (static_cast<std::size_t>(end_ - p_) < top.length + 3 ||
            !same_bytes(p_ + 2, top.name, top.length) || p_[2 + top.length] != '>')
          return false;
        p_ += 3 + top.length;
        --depth_;
      } else if (!start_tag()) {
        return false;
      }
    }
    while (p_ < end_ && is_space(*p_)) ++p_;
    return p_ == end_;
  }

 private:
  struct Open {
    const char* name;
    std::size_t length;
    std::int32_t node;
    std::int32_t last_child;
  };
  static constexpr std::size_t kMaxSimpleDepth = 64;

  bool start_tag() {
#if defined(__SSE2__)
    if (depth_ == kMaxSimpleDepth) return false;
    const std::string_view name = plain_start_tag_name(p_, end_);
    if (name.empty()) return false;
    const auto index = static_cast<std::int32_t>(tree_.nodes.size());
    if (depth_ > 0) {
      Open& parent_entry = open_[depth_ - 1];
      XmlNode& parent = tree_.nodes[static_cast<std::size_t>(parent_entry.node)];
      if (parent.first_child < 0) {
        parent.text_offset = parent.text_length = 0;  // not a leaf: its text does not matter
        parent.text_in_document = false;
        parent.first_child = index;
      } else {
        tree_.nodes[static_cast<std::size_t>(parent_entry.last_child)].next_sibling = index;
      }
      parent_entry.last_child = index;
    }
    XmlNode node;
    node.tag = tags_.id(tree_.tags, name);
    tree_.nodes.push_back(node);
    open_[depth_++] = {name.data(), name.size(), index, -1};
    p_ += 2 + name.size();
    return true;
#else
    return false;
#endif
  }

  const char* p_;
  const char* const begin_;
  const char* const end_;
  XmlTree& tree_;
  TagCache& tags_;
  Open open_[kMaxSimpleDepth];
  std::size_t depth_ = 0;
};

bool parse(std::string_view raw, bool is_unicode, XmlTree& tree, ParseStatus& status,
           bool allow_fast_path) {
  tree.clear();
  status = ParseStatus();
  thread_local TagCache tag_cache;
  PreparedDocument document;
  if (prepare_document(raw, is_unicode, tree.transcoded, document, status)) {
    tree.document = document.text;
    if (allow_fast_path && SimpleTreeReader(document.text, tree, tag_cache).read()) return true;
    tree.nodes.clear();
    thread_local LexerWorkspace workspace;
    thread_local std::vector<OpenNode> open;
    TreeBuilder builder(tree, open);
    XmlLexer<TreeBuilder> lexer(document.text, builder, status, document.options, &workspace);
    lexer.run();
  }
  if (!status.ok) status.locate(document.text.empty() ? raw : document.text);
  return status.ok;
}

}  // namespace

bool parse_xml_tree(std::string_view raw, bool is_unicode, XmlTree& tree, ParseStatus& status) {
  return parse(raw, is_unicode, tree, status, /*allow_fast_path=*/true);
}

bool parse_xml_tree_with_lexer(std::string_view raw, bool is_unicode, XmlTree& tree,
                               ParseStatus& status) {
  return parse(raw, is_unicode, tree, status, /*allow_fast_path=*/false);
}

}  // namespace conveyor::voc
