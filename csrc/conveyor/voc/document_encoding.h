// Turns the raw bytes of an XML document into the UTF-8 text the lexer reads, following the
// byte order mark and the encoding declared in the XML declaration (as expat/ElementTree do).
#pragma once

#include <string>
#include <string_view>

#include "conveyor/voc/parse_status.h"
#include "conveyor/voc/xml_lexer.h"

namespace conveyor::voc {

struct PreparedDocument {
  std::string_view text;  // UTF-8; points into the input or into the caller's storage
  LexOptions options;
};

// `is_unicode`: the input came from a Python str (already UTF-8; a declared encoding is ignored,
// as ElementTree ignores it for str input). Supported declared encodings: UTF-8, US-ASCII,
// ISO-8859-1 (latin-1) and windows-1252; others fail with a clear message.
bool prepare_document(std::string_view raw, bool is_unicode, std::string& storage,
                      PreparedDocument& out, ParseStatus& status);

}  // namespace conveyor::voc
