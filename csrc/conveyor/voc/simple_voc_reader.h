// A fast path for the typed reader: most VOC files are "simple" XML (no declaration, comments,
// references, attributes, namespaces, CR or non-ASCII bytes; short plain tag names; every
// field well-formed). Such a document is read in one tight pass straight into the batch. For
// anything else the reader gives up, leaving the batch as it was, and the caller reads the
// document with the full lexer, which applies every rule and produces every error message.
#pragma once

#include <string_view>

#include "conveyor/voc/voc_annotation.h"

namespace conveyor::voc {

// Appends `document` (UTF-8) to `batch` and returns true when it is simple and valid; returns
// false, the batch unchanged, otherwise. A document it accepts is one the full reader accepts
// with the same result.
bool read_simple_voc(std::string_view document, const ClassTable& classes, AnnotationBatch& batch);

}  // namespace conveyor::voc
