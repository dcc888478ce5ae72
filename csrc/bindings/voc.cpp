#include "bindings.h"

namespace conveyor::bindings {

void bind_voc(pybind11::module_& m) { (void)m; }

}  // namespace conveyor::bindings
