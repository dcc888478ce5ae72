#include "bindings.h"

#include "conveyor/core/version.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "conveyor's native core: codecs, VOC parser and the loader engine";
  m.def("library_versions", &conveyor::library_versions);
  conveyor::bindings::bind_errors(m);
  conveyor::bindings::bind_codecs(m);
  conveyor::bindings::bind_voc(m);
  conveyor::bindings::bind_engine(m);
  conveyor::bindings::bind_kernels(m);
}
