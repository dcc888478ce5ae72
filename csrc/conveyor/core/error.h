// The one error type of conveyor_core. Bindings turn its kind into a Python exception
// (csrc/bindings/errors.cpp); C libraries' error codes become it at their wrapper, never
// by throwing through C frames.
#pragma once

#include <stdexcept>
#include <string>

namespace conveyor {

enum class ErrorKind {
  kInvalidArgument,  // ValueError
  kNotFound,         // FileNotFoundError
  kIo,               // OSError
  kDecode,           // conveyor.errors.DecodeError
  kAnnotation,       // conveyor.errors.AnnotationError
  kRuntime,          // conveyor.errors.ConveyorError
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace conveyor
