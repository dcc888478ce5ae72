// The two passes of the separable resize. Horizontal: interleaved RGB (or planar) rows in,
// planar rows out. Vertical: one output row of one plane at a time, so the caller converts it
// to the final dtype while it is still in L1 (the fused Normalize + CHW write).
// SSE2 (x86-64 baseline) with pmaddwd over pairs of taps; a portable scalar path otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

#include "conveyor/ops/resize_weights.h"

namespace conveyor {

// src: interleaved RGB, row r at src + r * src_stride, readable for in_width*3 + 1 bytes
// (one byte of slack). Writes rows [0, row_count) of three planes: dst[c] + r * dst_stride.
void resample_horizontal_rgb(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                             const AxisWeights& wx, uint8_t* const dst[3], size_t dst_stride);

// One plane: src row r at src + r * src_stride (in_width readable bytes).
void resample_horizontal_plane(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                               const AxisWeights& wx, uint8_t* dst, size_t dst_stride);

// Output row `y` of a plane: src row r (r relative to `row_offset`, i.e. input row
// row_offset + r) at src + r * src_stride; `width` bytes per row. in_rows bounds the rows read.
void resample_vertical_row(const uint8_t* src, size_t src_stride, int row_offset, int in_rows,
                           int width, const AxisWeights& wy, int y, uint8_t* dst);

// The same row converted on the fly to float32: dst[x] = value * multiplier + offset (the
// fused ToDtype + Normalize). Plain stores: streaming (non-temporal) stores measured slower
// here, and the consumer reads the batch soon after.
void resample_vertical_row_affine(const uint8_t* src, size_t src_stride, int row_offset, int in_rows,
                                  int width, const AxisWeights& wy, int y, float multiplier,
                                  float offset, float* dst);

}  // namespace conveyor
