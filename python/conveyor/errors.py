"""conveyor's exceptions. Native errors are translated into these in one place
(``csrc/bindings/errors.cpp``)."""


class ConveyorError(Exception):
    """Base class of every error conveyor raises itself."""


class DecodeError(ConveyorError, ValueError):
    """An image could not be decoded: empty, truncated, corrupt, unsupported or too large."""


class AnnotationError(ConveyorError, ValueError):
    """An annotation file is malformed or does not fit the requested classes."""


__all__ = ["ConveyorError", "DecodeError", "AnnotationError"]
