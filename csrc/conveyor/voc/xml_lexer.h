// A strict, non-validating XML 1.0 (+ namespaces) reader for small documents such as VOC
// annotations. It checks well-formedness the way expat does and reports content as events:
//
//   handler.start_element(std::string_view name, std::size_t offset)   // name "{uri}local"
//   handler.text(std::string_view chunk)     // decoded character data (CRLF -> LF, references)
//   handler.end_element()
//
// Design: iterative (an explicit element stack bounded by kMaxDepth, never C++ recursion), no
// exceptions, no allocation per token on the common path, and no entity expansion ever: only the
// five predefined entities and character references are decoded; a DOCTYPE that declares
// entities is refused. Errors set a ParseStatus (first error wins) and stop the scan.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "conveyor/voc/parse_status.h"
#include "conveyor/voc/xml_chars.h"

namespace conveyor::voc {

inline constexpr std::size_t kMaxDepth = 1000;

struct LexOptions {
  bool ascii_only = false;  // the document declared encoding="US-ASCII"
};

struct OpenElement {
  const char* qname;
  std::size_t qname_length;
  std::size_t namespace_mark;  // namespace bindings before this element's declarations
};

struct NamespaceBinding {
  std::string prefix;  // "" for the default namespace
  std::string uri;
};

// The lexer's growable buffers. A caller parsing many documents on one thread passes the same
// workspace to each lexer, so that a document costs no allocation once the buffers are warm.
struct LexerWorkspace {
  std::vector<OpenElement> stack;
  std::vector<NamespaceBinding> ns_bindings;
  std::vector<std::string_view> attributes;
  std::vector<std::string> expanded;
  std::string scratch;
  std::string value;
  std::string resolved;

  void reset() {
    stack.clear();
    ns_bindings.clear();
  }
};

template <class Handler>
class XmlLexer {
 public:
  // Text chunks passed to handler.text() are valid during the call only (decoded references
  // live in a scratch buffer); chunks lying inside `document` stay valid as long as it does.
  XmlLexer(std::string_view document, Handler& handler, ParseStatus& status,
           LexOptions options = {}, LexerWorkspace* workspace = nullptr)
      : begin_(document.data()),
        p_(document.data()),
        end_(document.data() + document.size()),
        handler_(handler),
        status_(status),
        options_(options),
        ws_(workspace != nullptr ? *workspace : own_workspace_) {
    ws_.reset();
  }

  // Parses the whole document. Returns status.ok.
  bool run() {
    if (remaining() >= 3 && std::memcmp(p_, "\xEF\xBB\xBF", 3) == 0) p_ += 3;
    if (starts_with("<?xml") && remaining() > 5 && (is_space(p_[5]) || p_[5] == '?')) {
      if (!xml_declaration()) return false;
    }
    if (!prolog()) return false;
    if (!content()) return false;
    return epilog();
  }

 private:
  using Binding = NamespaceBinding;

  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  std::size_t offset(const char* at) const { return static_cast<std::size_t>(at - begin_); }
  bool starts_with(const char* literal) const {
    const std::size_t n = std::strlen(literal);
    return remaining() >= n && std::memcmp(p_, literal, n) == 0;
  }
  bool fail(const char* at, std::string message) {
    status_.fail(offset(at), std::move(message));
    return false;
  }
  bool fail_truncated() { return fail(end_, "unexpected end of document (truncated?)"); }
  void skip_space() {
    const char* p = p_;
    while (p < end_ && is_space(*p)) ++p;
    p_ = p;
  }

  // Validates one character at p_ (any byte value) and advances; false on invalid input.
  bool check_char() {
    const unsigned char c = static_cast<unsigned char>(*p_);
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
        return fail(p_, "invalid character U+" + hex(c) + " (not allowed in XML 1.0)");
      ++p_;
      return true;
    }
    if (options_.ascii_only) return fail(p_, "non-ASCII byte in a document declared US-ASCII");
    std::uint32_t code;
    const std::size_t n = decode_utf8(p_, end_, code);
    if (n == 0) return fail(p_, "invalid UTF-8 byte sequence");
    if (!is_xml_char(code)) return fail(p_, "invalid character U+" + hex(code));
    p_ += n;
    return true;
  }

  static std::string hex(std::uint32_t value) {
    static const char* digits = "0123456789ABCDEF";
    std::string text;
    do {
      text.insert(text.begin(), digits[value & 0xF]);
      value >>= 4;
    } while (value);
    while (text.size() < 4) text.insert(text.begin(), '0');
    return text;
  }

  // Name production; returns false (with an error) when no valid name starts at p_.
  bool name(std::string_view& out) {
    const char* start = p_;
    // Fast path: an ASCII name (a local cursor: the compiler keeps it in a register).
    if (p_ < end_ && is_ascii_name_start(static_cast<unsigned char>(*p_))) {
      const char* p = p_;
      const char* const end = end_;
      unsigned seen = kByteClasses[static_cast<unsigned char>(*p)];
      ++p;
      while (p < end) {
        const unsigned byte_class = kByteClasses[static_cast<unsigned char>(*p)];
        if (!(byte_class & kNameByte)) break;
        seen |= byte_class;
        ++p;
      }
      p_ = p;
      if (p == end || static_cast<unsigned char>(*p) < 0x80) {
        out = std::string_view(start, static_cast<std::size_t>(p - start));
        name_has_colon_ = (seen & kColonByte) != 0;
        return true;
      }
    }
    bool first = p_ == start;
    while (p_ < end_) {
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c < 0x80) {
        if (first ? !is_ascii_name_start(c) : !is_ascii_name_char(c)) break;
        ++p_;
      } else {
        std::uint32_t code;
        const std::size_t n = decode_utf8(p_, end_, code);
        if (n == 0) return fail(p_, "invalid UTF-8 byte sequence");
        if (first ? !is_unicode_name_start(code) : !is_unicode_name_char(code)) break;
        p_ += n;
      }
      first = false;
    }
    if (p_ == start) {
      if (p_ == end_) return fail_truncated();
      return fail(p_, "expected a name");
    }
    out = std::string_view(start, static_cast<std::size_t>(p_ - start));
    name_has_colon_ = out.find(':') != std::string_view::npos;
    return true;
  }

  // <?xml version="1.x" encoding="..." standalone="yes|no"?> (the encoding was handled by the
  // caller before lexing; here it is only checked for syntax).
  bool xml_declaration() {
    const char* start = p_;
    p_ += 5;
    const char* names[] = {"version", "encoding", "standalone"};
    int next = 0;
    bool seen_version = false;
    while (true) {
      const char* before_space = p_;
      skip_space();
      if (starts_with("?>")) {
        p_ += 2;
        break;
      }
      if (p_ >= end_) return fail_truncated();
      if (p_ == before_space) return fail(p_, "malformed XML declaration");
      std::string_view key;
      if (!name(key)) return false;
      int which = -1;
      for (int i = next; i < 3; ++i)
        if (key == names[i]) which = i;
      if (which < 0 || (which > 0 && !seen_version))
        return fail(p_ - key.size(),
                    "malformed XML declaration: unexpected '" + std::string(key) + "'");
      next = which + 1;
      seen_version = true;
      skip_space();
      if (p_ >= end_ || *p_ != '=') return fail(p_, "malformed XML declaration: expected '='");
      ++p_;
      skip_space();
      if (p_ >= end_) return fail_truncated();
      const char quote = *p_;
      if (quote != '"' && quote != '\'')
        return fail(p_, "malformed XML declaration: expected a quote");
      const char* value_start = ++p_;
      while (p_ < end_ && *p_ != quote) ++p_;
      if (p_ >= end_) return fail_truncated();
      const std::string_view value(value_start, static_cast<std::size_t>(p_ - value_start));
      ++p_;
      if (!valid_declaration_value(which, value))
        return fail(value_start, "malformed XML declaration: bad " + std::string(names[which]) +
                                     " '" + std::string(value) + "'");
    }
    if (!seen_version) return fail(start, "XML declaration without version");
    return true;
  }

  static bool valid_declaration_value(int which, std::string_view value) {
    if (which == 0) {  // expat accepts any run of [A-Za-z0-9._-] as the version
      for (char c : value)
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
          return false;
      return true;
    }
    if (which == 1) {  // EncName: [A-Za-z] ([A-Za-z0-9._] | '-')*
      if (value.empty() || !((value[0] | 0x20) >= 'a' && (value[0] | 0x20) <= 'z')) return false;
      for (char c : value)
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
          return false;
      return true;
    }
    return value == "yes" || value == "no";
  }

  // Misc* (doctypedecl Misc*)? up to the root's '<'.
  bool prolog() {
    bool seen_doctype = false;
    while (true) {
      skip_space();
      if (p_ >= end_) return fail(p_, "no root element");
      if (*p_ != '<') return fail(p_, "text outside the root element");
      if (starts_with("<!--")) {
        if (!comment()) return false;
      } else if (starts_with("<?")) {
        if (!processing_instruction()) return false;
      } else if (starts_with("<!DOCTYPE")) {
        if (seen_doctype) return fail(p_, "a second DOCTYPE");
        seen_doctype = true;
        if (!doctype()) return false;
      } else if (starts_with("<!")) {
        return fail(p_, "unexpected markup before the root element");
      } else {
        return true;
      }
    }
  }

  bool epilog() {
    while (true) {
      skip_space();
      if (p_ >= end_) return true;
      if (starts_with("<!--")) {
        if (!comment()) return false;
      } else if (starts_with("<?")) {
        if (!processing_instruction()) return false;
      } else if (*p_ == '<') {
        return fail(p_, "junk after the root element (a second root element?)");
      } else {
        return fail(p_, "text outside the root element");
      }
    }
  }

  bool comment() {
    p_ += 4;
    while (true) {
      if (p_ >= end_) return fail_truncated();
      if (*p_ == '-' && remaining() >= 2 && p_[1] == '-') {
        if (remaining() >= 3 && p_[2] == '>') {
          p_ += 3;
          return true;
        }
        if (remaining() < 3) return fail_truncated();
        return fail(p_, "'--' is not allowed inside a comment");
      }
      if (!check_char()) return false;
    }
  }

  bool processing_instruction() {
    const char* start = p_;
    p_ += 2;
    std::string_view target;
    if (!name(target)) return false;
    if (target.size() == 3 && (target[0] | 0x20) == 'x' && (target[1] | 0x20) == 'm' &&
        (target[2] | 0x20) == 'l')
      return fail(start, "XML declaration not at the start of the document");
    if (target.find(':') != std::string_view::npos)
      return fail(start + 2, "a processing instruction target must not contain ':'");
    if (starts_with("?>")) {
      p_ += 2;
      return true;
    }
    if (p_ >= end_) return fail_truncated();
    if (!is_space(*p_)) return fail(p_, "malformed processing instruction");
    while (true) {
      if (p_ >= end_) return fail_truncated();
      if (starts_with("?>")) {
        p_ += 2;
        return true;
      }
      if (!check_char()) return false;
    }
  }

  bool quoted_literal() {
    if (p_ >= end_) return fail_truncated();
    const char quote = *p_;
    if (quote != '"' && quote != '\'')
      return fail(p_, "malformed DOCTYPE: expected a quoted literal");
    ++p_;
    while (true) {
      if (p_ >= end_) return fail_truncated();
      if (*p_ == quote) {
        ++p_;
        return true;
      }
      if (!check_char()) return false;
    }
  }

  bool require_space() {
    if (p_ >= end_) return fail_truncated();
    if (!is_space(*p_)) return fail(p_, "malformed DOCTYPE: expected whitespace");
    skip_space();
    return true;
  }

  // <!DOCTYPE name ExternalID? [internal subset]? >. The external DTD is never read. Inside the
  // internal subset, element/attribute/notation declarations are skipped; entity declarations
  // and parameter-entity references are refused (no entity expansion, ever).
  bool doctype() {
    p_ += 9;
    if (!require_space()) return false;
    std::string_view root_name;
    if (!name(root_name)) return false;
    skip_space();
    if (starts_with("SYSTEM")) {
      p_ += 6;
      if (!require_space() || !quoted_literal()) return false;
    } else if (starts_with("PUBLIC")) {
      p_ += 6;
      if (!require_space() || !quoted_literal() || !require_space() || !quoted_literal())
        return false;
    }
    skip_space();
    if (p_ < end_ && *p_ == '[') {
      ++p_;
      if (!internal_subset()) return false;
      skip_space();
    }
    if (p_ >= end_) return fail_truncated();
    if (*p_ != '>') return fail(p_, "malformed DOCTYPE");
    ++p_;
    return true;
  }

  bool internal_subset() {
    while (true) {
      skip_space();
      if (p_ >= end_) return fail_truncated();
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (starts_with("<!ENTITY"))
        return fail(p_, "DOCTYPE declares an entity: refused (conveyor never expands entities)");
      if (*p_ == '%')
        return fail(p_, "parameter entity reference in DOCTYPE: refused (no entity expansion)");
      if (starts_with("<!--")) {
        if (!comment()) return false;
      } else if (starts_with("<?")) {
        if (!processing_instruction()) return false;
      } else if (starts_with("<!ELEMENT") || starts_with("<!ATTLIST") ||
                 starts_with("<!NOTATION")) {
        p_ += 2;
        while (true) {  // skip the declaration, honouring quoted literals
          if (p_ >= end_) return fail_truncated();
          if (*p_ == '>') {
            ++p_;
            break;
          }
          if (*p_ == '"' || *p_ == '\'') {
            if (!quoted_literal()) return false;
          } else if (*p_ == '%') {
            return fail(p_, "parameter entity reference in DOCTYPE: refused (no entity expansion)");
          } else if (!check_char()) {
            return false;
          }
        }
      } else {
        return fail(p_, "malformed DOCTYPE internal subset");
      }
    }
  }

  // &...; at p_. Decodes into `out` (predefined entities and character references only).
  bool reference(std::string& out) {
    const char* start = p_;
    ++p_;
    if (p_ >= end_) return fail_truncated();
    if (*p_ == '#') {
      ++p_;
      std::uint32_t code = 0;
      bool any = false;
      const bool hexadecimal = p_ < end_ && *p_ == 'x';
      if (hexadecimal) ++p_;
      while (p_ < end_ && *p_ != ';') {
        const char c = *p_;
        int digit;
        if (c >= '0' && c <= '9')
          digit = c - '0';
        else if (hexadecimal && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
          digit = (c | 0x20) - 'a' + 10;
        else
          return fail(start, "malformed character reference");
        code = code * (hexadecimal ? 16 : 10) + static_cast<std::uint32_t>(digit);
        if (code > 0x10FFFF) return fail(start, "character reference out of range");
        any = true;
        ++p_;
      }
      if (p_ >= end_) return fail_truncated();
      if (!any) return fail(start, "malformed character reference");
      if (!is_xml_char(code))
        return fail(start, "character reference to an invalid character U+" + hex(code));
      ++p_;
      append_utf8(out, code);
      return true;
    }
    std::string_view entity;
    if (!name(entity)) return fail(start, "malformed entity reference");
    if (p_ >= end_) return fail_truncated();
    if (*p_ != ';') return fail(start, "malformed entity reference (missing ';')");
    ++p_;
    if (entity == "lt")
      out += '<';
    else if (entity == "gt")
      out += '>';
    else if (entity == "amp")
      out += '&';
    else if (entity == "apos")
      out += '\'';
    else if (entity == "quot")
      out += '"';
    else
      return fail(start, "undefined entity &" + std::string(entity) + ";");
    return true;
  }

  // Character data up to the next '<' (or the end), validated and decoded, as text events.
  bool character_data() {
    while (p_ < end_) {
      const char* run = p_;
      // Fast path: plain ASCII text.
      p_ = skip_plain_text(p_, end_);
      if (p_ > run) handler_.text(std::string_view(run, static_cast<std::size_t>(p_ - run)));
      if (p_ >= end_) return true;
      const char c = *p_;
      if (c == '<') return true;
      if (c == '&') {
        ws_.scratch.clear();
        if (!reference(ws_.scratch)) return false;
        handler_.text(ws_.scratch);
      } else if (c == '\r') {
        ++p_;
        if (p_ < end_ && *p_ == '\n') ++p_;
        handler_.text("\n");
      } else if (c == ']') {
        if (remaining() >= 3 && p_[1] == ']' && p_[2] == '>')
          return fail(p_, "']]>' is not allowed in text");
        ++p_;
        handler_.text("]");
      } else {
        const char* start = p_;
        if (!check_char()) return false;
        handler_.text(std::string_view(start, static_cast<std::size_t>(p_ - start)));
      }
    }
    return true;
  }

  bool cdata() {
    p_ += 9;
    while (true) {
      const char* run = p_;
      while (p_ < end_ && *p_ != ']' && *p_ != '\r' && static_cast<unsigned char>(*p_) >= 0x20 &&
             static_cast<unsigned char>(*p_) < 0x80)
        ++p_;
      if (p_ > run) handler_.text(std::string_view(run, static_cast<std::size_t>(p_ - run)));
      if (p_ >= end_) return fail_truncated();
      if (starts_with("]]>")) {
        p_ += 3;
        return true;
      }
      if (*p_ == '\r') {
        ++p_;
        if (p_ < end_ && *p_ == '\n') ++p_;
        handler_.text("\n");
        continue;
      }
      const char* start = p_;
      if (!check_char()) return false;
      handler_.text(std::string_view(start, static_cast<std::size_t>(p_ - start)));
    }
  }

  // Attribute value at p_ (a quote). Validated; decoded into ws_.value only when `keep`.
  bool attribute_value(bool keep) {
    const char quote = *p_;
    ++p_;
    ws_.value.clear();
    while (true) {
      if (p_ >= end_) return fail_truncated();
      const char c = *p_;
      if (c == quote) {
        ++p_;
        return true;
      }
      if (c == '<') return fail(p_, "'<' is not allowed in an attribute value");
      if (c == '&') {
        ws_.scratch.clear();
        if (!reference(ws_.scratch)) return false;
        if (keep) ws_.value += ws_.scratch;
        continue;
      }
      if (c == '\t' || c == '\n' || c == '\r') {
        // Attribute-value normalisation (XML 1.0 3.3.3): literal white space becomes a space,
        // after "\r\n" -> "\n"; white space written as a character reference is kept.
        ++p_;
        if (c == '\r' && p_ < end_ && *p_ == '\n') ++p_;
        if (keep) ws_.value += ' ';
        continue;
      }
      const char* start = p_;
      if (!check_char()) return false;
      if (keep) ws_.value.append(start, static_cast<std::size_t>(p_ - start));
    }
  }

  const Binding* lookup(std::string_view prefix) const {
    for (auto it = ws_.ns_bindings.rbegin(); it != ws_.ns_bindings.rend(); ++it)
      if (it->prefix == prefix) return &*it;
    return nullptr;
  }

  // Start tag at p_ ('<' followed by a name). Sets `empty` for <x/>.
  bool start_tag(bool& empty) {
    const char* tag_start = p_;
    ++p_;
    std::string_view qname;
    if (!name(qname)) return false;
    const bool qname_has_colon = name_has_colon_;
    const std::size_t mark = ws_.ns_bindings.size();
    bool has_prefixed_attribute = false;
    const bool plain = p_ < end_ && *p_ == '>';  // the common case: no attributes
    if (plain) {
      ++p_;
      empty = false;
    } else {
      ws_.attributes.clear();
    }
    while (!plain) {
      const char* before_space = p_;
      skip_space();
      if (p_ >= end_) return fail_truncated();
      if (*p_ == '>') {
        ++p_;
        empty = false;
        break;
      }
      if (*p_ == '/') {
        if (remaining() < 2) return fail_truncated();
        if (p_[1] != '>') return fail(p_, "expected '/>'");
        p_ += 2;
        empty = true;
        break;
      }
      if (p_ == before_space) return fail(p_, "expected whitespace, '>' or '/>' in a start tag");
      std::string_view attribute;
      if (!name(attribute)) return false;
      for (const auto& seen : ws_.attributes)
        if (seen == attribute)
          return fail(p_ - attribute.size(),
                      "duplicate attribute '" + std::string(attribute) + "'");
      ws_.attributes.push_back(attribute);
      skip_space();
      if (p_ >= end_) return fail_truncated();
      if (*p_ != '=') return fail(p_, "expected '=' after attribute name");
      ++p_;
      skip_space();
      if (p_ >= end_) return fail_truncated();
      if (*p_ != '"' && *p_ != '\'') return fail(p_, "expected a quoted attribute value");
      const bool declares = attribute == "xmlns" || attribute.substr(0, 6) == "xmlns:";
      const char* value_start = p_;
      if (!attribute_value(declares)) return false;
      if (declares) {
        if (!declare_namespace(attribute, value_start)) return false;
      } else if (attribute.find(':') != std::string_view::npos) {
        has_prefixed_attribute = true;
      }
    }
    if (has_prefixed_attribute) {
      ws_.expanded.clear();
      for (const auto& attribute : ws_.attributes) {
        const std::size_t colon = attribute.find(':');
        if (colon == std::string_view::npos || attribute.substr(0, 6) == "xmlns:") continue;
        const std::string_view prefix = attribute.substr(0, colon);
        const std::string_view local = attribute.substr(colon + 1);
        if (prefix.empty() || local.empty() || local.find(':') != std::string_view::npos)
          return fail(tag_start,
                      "malformed qualified attribute name '" + std::string(attribute) + "'");
        const Binding* binding = prefix == "xml" ? nullptr : lookup(prefix);
        if (prefix != "xml" && binding == nullptr)
          return fail(tag_start, "unbound namespace prefix '" + std::string(prefix) + "'");
        std::string name = (binding ? binding->uri : std::string("xml")) + '\n';
        name.append(local);
        for (const auto& seen : ws_.expanded)
          if (seen == name)
            return fail(tag_start, "duplicate attribute '" + std::string(attribute) +
                                       "' (same namespace and local name as another)");
        ws_.expanded.push_back(std::move(name));
      }
    }
    if (ws_.stack.size() >= kMaxDepth)
      return fail(tag_start, "elements nested deeper than " + std::to_string(kMaxDepth));
    ws_.stack.push_back({qname.data(), qname.size(), mark});
    return emit_start(qname, qname_has_colon, tag_start);
  }

  bool declare_namespace(std::string_view attribute, const char* at) {
    const std::string_view prefix = attribute.size() > 5 ? attribute.substr(6) : std::string_view();
    static const char* kXmlUri = "http://www.w3.org/XML/1998/namespace";
    static const char* kXmlnsUri = "http://www.w3.org/2000/xmlns/";
    if (attribute.size() == 6) return fail(at, "malformed namespace declaration 'xmlns:'");
    if (prefix == "xmlns") return fail(at, "the prefix 'xmlns' must not be declared");
    if (prefix == "xml" ? ws_.value != kXmlUri : (ws_.value == kXmlUri || ws_.value == kXmlnsUri))
      return fail(at, "reserved namespace prefix or URI misused");
    if (ws_.value.find('}') != std::string::npos)  // expat's namespace separator, as in ElementTree
      return fail(at, "a namespace URI must not contain '}'");
    if (!prefix.empty() && ws_.value.empty())
      return fail(at, "a namespace prefix cannot be undeclared in XML 1.0");
    ws_.ns_bindings.push_back({std::string(prefix), ws_.value});
    return true;
  }

  bool emit_start(std::string_view qname, bool has_colon, const char* tag_start) {
    if (!has_colon) {
      const Binding* binding = ws_.ns_bindings.empty() ? nullptr : lookup("");
      if (binding == nullptr || binding->uri.empty()) {
        handler_.start_element(qname, offset(tag_start));
      } else {
        ws_.resolved = "{" + binding->uri + "}";
        ws_.resolved.append(qname);
        handler_.start_element(ws_.resolved, offset(tag_start));
      }
      return true;
    }
    const std::size_t colon = qname.find(':');
    const std::string_view prefix = qname.substr(0, colon);
    const std::string_view local = qname.substr(colon + 1);
    if (prefix.empty() || local.empty() || local.find(':') != std::string_view::npos)
      return fail(tag_start, "malformed qualified name '" + std::string(qname) + "'");
    if (prefix == "xmlns") return fail(tag_start, "element names must not use the prefix 'xmlns'");
    std::string uri;
    if (prefix == "xml") {
      uri = "http://www.w3.org/XML/1998/namespace";
    } else {
      const Binding* binding = lookup(prefix);
      if (binding == nullptr)
        return fail(tag_start, "unbound namespace prefix '" + std::string(prefix) + "'");
      uri = binding->uri;
    }
    ws_.resolved = "{" + uri + "}";
    ws_.resolved.append(local);
    handler_.start_element(ws_.resolved, offset(tag_start));
    return true;
  }

  bool end_tag() {
    const char* tag_start = p_;
    p_ += 2;
    const OpenElement& open_element = ws_.stack.back();
    const std::size_t length = open_element.qname_length;
    // Fast path: the expected name, followed by something that cannot continue a name.
    if (remaining() > length && same_bytes(p_, open_element.qname, length) &&
        !is_ascii_name_char(static_cast<unsigned char>(p_[length])) &&
        static_cast<unsigned char>(p_[length]) < 0x80) {
      p_ += length;
      if (*p_ == '>') {
        ++p_;
        close_element();
        return true;
      }
      skip_space();
      if (p_ >= end_) return fail_truncated();
      if (*p_ != '>') return fail(p_, "expected '>' to close an end tag");
      ++p_;
      close_element();
      return true;
    }
    std::string_view qname;
    if (!name(qname)) return false;
    skip_space();
    if (p_ >= end_) return fail_truncated();
    if (*p_ != '>') return fail(p_, "expected '>' to close an end tag");
    ++p_;
    const OpenElement& open = ws_.stack.back();
    if (qname != std::string_view(open.qname, open.qname_length))
      return fail(tag_start, "mismatched tag: expected </" +
                                 std::string(open.qname, open.qname_length) + ">, found </" +
                                 std::string(qname) + ">");
    close_element();
    return true;
  }

  void close_element() {
    const std::size_t mark = ws_.stack.back().namespace_mark;
    if (ws_.ns_bindings.size() != mark) ws_.ns_bindings.resize(mark);
    ws_.stack.pop_back();
    handler_.end_element();
  }

  // The root element and everything inside it.
  bool content() {
    bool empty = false;
    if (!start_tag(empty)) return false;
    if (empty) {
      close_element();
      return true;
    }
    while (!ws_.stack.empty()) {
      if (!character_data()) return false;
      if (p_ >= end_)
        return fail(end_, "unexpected end of document: <" +
                              std::string(ws_.stack.back().qname, ws_.stack.back().qname_length) +
                              "> is not closed");
      // *p_ == '<'
      if (remaining() < 2) return fail_truncated();
      const char next = p_[1];
      if (next == '/') {
        if (!end_tag()) return false;
      } else if (next == '!') {
        if (starts_with("<!--")) {
          if (!comment()) return false;
        } else if (starts_with("<![CDATA[")) {
          if (!cdata()) return false;
        } else if (remaining() < 9) {
          return fail_truncated();
        } else {
          return fail(p_, "unexpected markup declaration inside an element");
        }
      } else if (next == '?') {
        if (!processing_instruction()) return false;
      } else {
        if (simple_start_tag()) continue;
        if (!start_tag(empty)) return false;
        if (empty) close_element();
      }
    }
    return true;
  }

  // The common start tag, <name> with a short name of [A-Za-z0-9_.-] and no namespace in
  // scope, decided with one 16-byte compare. Returns false, having consumed nothing, for
  // anything else (start_tag() then reads it with every rule).
  bool simple_start_tag() {
#if defined(__SSE2__)
    const char* const tag_start = p_;
    if (!ws_.ns_bindings.empty() || ws_.stack.size() >= kMaxDepth) return false;
    const std::string_view qname = plain_start_tag_name(tag_start, end_);
    if (qname.empty()) return false;
    p_ = tag_start + 2 + qname.size();
    ws_.stack.push_back({qname.data(), qname.size(), 0});
    handler_.start_element(qname, offset(tag_start));
    return true;
#else
    return false;
#endif
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  Handler& handler_;
  ParseStatus& status_;
  LexOptions options_;
  bool name_has_colon_ = false;  // set by name(): the name just read contains ':'
  LexerWorkspace own_workspace_;
  LexerWorkspace& ws_;
};

}  // namespace conveyor::voc
