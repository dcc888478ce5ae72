// One bind_* function per subsystem; module.cpp calls them in order.
#pragma once

#include <pybind11/pybind11.h>

namespace conveyor::bindings {

void bind_errors(pybind11::module_& m);
void bind_codecs(pybind11::module_& m);
void bind_voc(pybind11::module_& m);
void bind_engine(pybind11::module_& m);
void bind_kernels(pybind11::module_& m);

}  // namespace conveyor::bindings
