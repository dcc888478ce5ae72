// Parses many VOC annotations in parallel native threads into one AnnotationBatch (input
// order). Used to index a whole VOCdevkit split at dataset construction.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "conveyor/voc/voc_annotation.h"

namespace conveyor::voc {

// 0 means "choose": the hardware concurrency, fewer for small inputs.
int resolve_thread_count(int requested, std::size_t items);

// Reads and parses `paths`. Throws conveyor::Error: kNotFound for a missing file, kIo for a
// file that cannot be read, kAnnotation (naming the file, line and column) for a bad document.
// When several files are bad, the first one in input order is reported.
AnnotationBatch load_annotation_files(const std::vector<std::string>& paths,
                                      const ClassTable& classes, int num_threads);

// The same for documents already in memory; errors name "document <index>". Where
// (*is_unicode)[i] is true, document i is UTF-8 text from a Python str (see prepare_document).
AnnotationBatch parse_annotation_documents(const std::vector<std::string_view>& documents,
                                           const ClassTable& classes, int num_threads,
                                           const std::vector<bool>* is_unicode = nullptr);

}  // namespace conveyor::voc
