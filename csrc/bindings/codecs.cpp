#include "bindings.h"

namespace conveyor::bindings {

void bind_codecs(pybind11::module_& m) { (void)m; }

}  // namespace conveyor::bindings
