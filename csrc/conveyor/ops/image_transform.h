// Executes a GeometryPlan on decoded pixels and writes the result into a CHW batch slot in
// its final dtype. Crops and flips only move a view; a resize reads the view's region
// directly (crop folded into the filter windows, a later flip folded into the weights);
// when the last resize is the last geometric step its vertical pass feeds the output writer
// row by row (no full-size intermediate). One ImageTransformer per worker thread: it keeps
// its scratch memory between samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/ops/fused_resize.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/planar_image.h"
#include "conveyor/ops/resize_weights.h"

namespace conveyor {

// Decoded interleaved RGB pixels (rows readable one byte past in_width * 3). `scale` is the
// DCT scale it was decoded at: logical pixel x covers physical pixels [x/scale, (x+1)/scale).
struct DecodedImage {
  const uint8_t* data = nullptr;
  size_t row_stride = 0;
  int width = 0, height = 0;                 // physical (decoded) size
  int logical_width = 0, logical_height = 0; // full-resolution size the plan refers to
};

class ImageTransformer {
 public:
  // `out` points to plan.width * plan.height * 3 values of format.dtype, CHW.
  void run(const GeometryPlan& plan, const DecodedImage& image, const OutputFormat& format,
           void* out);

 private:
  struct View;
  void resize(View& view, const GeometryStep& step, bool fused, bool flip_output,
              const OutputFormat* format, void* out);
  void pad(View& view, const GeometryStep& step);
  void write(const View& view, const OutputFormat& format, void* out);
  PlanarImage& next_buffer(const View& view);

  PlanarImage buffers_[2];
  PlanarImage horizontal_;
  std::vector<uint8_t> channel_rows_;
  FusedResizeScratch fused_;
  AxisWeights wx_, wy_;
};

}  // namespace conveyor
