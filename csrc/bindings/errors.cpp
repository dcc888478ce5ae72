// The one place where conveyor::Error becomes a Python exception.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "conveyor/core/error.h"

namespace py = pybind11;

namespace conveyor::bindings {

void bind_errors(py::module_& m) {
  (void)m;
  py::register_exception_translator([](std::exception_ptr pointer) {
    if (!pointer) return;
    try {
      std::rethrow_exception(pointer);
    } catch (const Error& error) {
      PyObject* type = nullptr;
      py::object holder;
      switch (error.kind()) {
        case ErrorKind::kInvalidArgument:
          type = PyExc_ValueError;
          break;
        case ErrorKind::kNotFound:
          type = PyExc_FileNotFoundError;
          break;
        case ErrorKind::kIo:
          type = PyExc_OSError;
          break;
        case ErrorKind::kDecode:
        case ErrorKind::kAnnotation:
        case ErrorKind::kRuntime: {
          const char* name = error.kind() == ErrorKind::kDecode       ? "DecodeError"
                             : error.kind() == ErrorKind::kAnnotation ? "AnnotationError"
                                                                      : "ConveyorError";
          holder = py::module_::import("conveyor.errors").attr(name);
          type = holder.ptr();
          break;
        }
      }
      PyErr_SetString(type, error.what());
    }
  });
}

}  // namespace conveyor::bindings
