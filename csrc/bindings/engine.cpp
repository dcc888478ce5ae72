#include "bindings.h"

namespace conveyor::bindings {

void bind_engine(pybind11::module_& m) { (void)m; }

}  // namespace conveyor::bindings
