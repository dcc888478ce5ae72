// Test fixture: an op of a kind with its output size (what the bindings fill for crops and
// resizes), every other field at its default.
#pragma once

#include "conveyor/ops/op_spec.h"

namespace conveyor_test {

inline conveyor::OpSpec sized_op(conveyor::OpKind kind, int height, int width) {
  conveyor::OpSpec op;
  op.kind = kind;
  op.height = height;
  op.width = width;
  return op;
}

}  // namespace conveyor_test
