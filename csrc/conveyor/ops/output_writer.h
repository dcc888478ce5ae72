// The fused ToDtype + Normalize + CHW write: one uint8 row of one channel becomes a row of the
// batch slot in its final dtype (out = pixel * multiplier[c] + offset[c]). Loops are written
// so that the compiler vectorises them at the x86-64 baseline (checked with -fopt-info-vec).
#pragma once

#include <cstddef>
#include <cstdint>

#include "conveyor/ops/op_spec.h"

namespace conveyor {

struct OutputFormat {
  DType dtype = DType::kUint8;
  bool affine = false;
  float multiplier[3] = {1, 1, 1};
  float offset[3] = {0, 0, 0};
  // The destination's rows are `row_values` values apart and its planes `plane_values` (0: a
  // contiguous CHW image of the size written; a padded batch slot has Wp and Hp * Wp).
  size_t row_values = 0, plane_values = 0;

  static OutputFormat from(const Pipeline& pipeline);
  // Byte offset of row y of channel c in the destination of a width x height image.
  size_t row_offset(int c, int y, int width, int height) const {
    const size_t row = row_values ? row_values : static_cast<size_t>(width);
    const size_t plane = plane_values ? plane_values : row * static_cast<size_t>(height);
    return (plane * static_cast<size_t>(c) + row * static_cast<size_t>(y)) * dtype_size(dtype);
  }
};

// Writes `width` values for channel `channel`; `reversed` reads the row right to left.
void write_output_row(const OutputFormat& format, int channel, const uint8_t* row, int width,
                      bool reversed, void* out);

// IEEE half from float, round to nearest even (no F16C at the x86-64 baseline).
uint16_t float_to_half(float value);

}  // namespace conveyor
