// The two passes of the separable resize. Horizontal: interleaved RGB (or planar) rows in,
// planar rows out. Vertical: one output row of one plane at a time, from the `taps` input rows
// of its window given as pointers (so the caller may keep them in a small ring of rows), and
// optionally converted on the fly to float32 (the fused ToDtype + Normalize + CHW write).
// SSE2 (x86-64 baseline) with pmaddwd over pairs of taps, SSSE3/AVX2 runtime-dispatched; a
// portable scalar path otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/ops/resize_weights.h"

namespace conveyor {

// The horizontal weights rearranged once per resize for the SIMD kernels (so that resampling
// row by row costs no setup per row).
struct HorizontalPlan {
  const AxisWeights* weights = nullptr;
  int in_width = 0;
  bool in_bounds = false;             // every window lies inside the row: the SIMD kernels may run
  std::vector<int32_t> pair_weights;  // (w[2k], w[2k+1]) of each output as one int32
  std::vector<int32_t> lane_weights;  // AVX2: pair weights of outputs (2j, 2j+1) per lane
  // AVX2 planar kernel, when every 8 consecutive outputs read within 16 input bytes (upscales
  // and mild downscales): per group of 8 outputs, its first input, one pshufb mask per tap
  // pair gathering the pairs' bytes from one 16-byte load, and the 8 outputs' pair weights.
  std::vector<int32_t> group_first;
  std::vector<uint8_t> group_masks;    // groups * pairs * 16
  std::vector<int32_t> group_weights;  // groups * pairs * 8
  std::vector<uint8_t> planar_row;     // scratch: one interleaved row split into planes
  AxisWeights::Key key;                // prepare() for the same weights returns at once
  bool reversed = false;

  void prepare(const AxisWeights& wx, int in_width);
  bool planar_kernel() const { return !group_first.empty(); }
};

// src: interleaved RGB, row r at src + r * src_stride, readable for in_width*3 + 16 bytes
// (kRowSlack). Writes rows [0, row_count) of three planes: dst[c] + r * dst_stride.
void resample_horizontal_rgb(const uint8_t* src, size_t src_stride, int row_count,
                             HorizontalPlan& plan, uint8_t* const dst[3], size_t dst_stride);
void resample_horizontal_rgb(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                             const AxisWeights& wx, uint8_t* const dst[3], size_t dst_stride);

// One plane: src row r at src + r * src_stride (in_width readable bytes; the plan's form
// reads up to 16 bytes past a row's last window: the next row, or kRowSlack after the last).
void resample_horizontal_plane(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                               const AxisWeights& wx, uint8_t* dst, size_t dst_stride);
void resample_horizontal_plane(const uint8_t* src, size_t src_stride, int row_count,
                               const HorizontalPlan& plan, uint8_t* dst, size_t dst_stride);

// Output row `y` of a plane from rows[k] = input row wy.first[y] + k, k < count (count <
// wy.taps only where the window is cut by the end of the input); `width` bytes per row.
void resample_vertical_row(const uint8_t* const* rows, int count, int width, const AxisWeights& wy,
                           int y, uint8_t* dst);

// The same row converted to float32: dst[x] = value * multiplier + offset. `streaming` uses
// non-temporal stores (for outputs nobody reads soon, e.g. a 100 MB batch): the caller must
// issue store_fence() before handing the memory to another thread.
void resample_vertical_row_affine(const uint8_t* const* rows, int count, int width,
                                  const AxisWeights& wy, int y, float multiplier, float offset,
                                  bool streaming, float* dst);

// Stride-addressed forms: input row row_offset + r at src + r * src_stride, in_rows rows.
void resample_vertical_row(const uint8_t* src, size_t src_stride, int row_offset, int in_rows,
                           int width, const AxisWeights& wy, int y, uint8_t* dst);
void resample_vertical_row_affine(const uint8_t* src, size_t src_stride, int row_offset,
                                  int in_rows, int width, const AxisWeights& wy, int y,
                                  float multiplier, float offset, float* dst);

// Orders earlier non-temporal stores before later stores (sfence; no-op elsewhere).
void store_fence();

}  // namespace conveyor
