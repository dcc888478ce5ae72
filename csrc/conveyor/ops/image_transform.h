// Executes a GeometryPlan on decoded pixels and writes the result into a CHW batch slot in
// its final dtype. Crops and flips only move a view; a resize reads the view's region
// directly (crop folded into the filter windows, a later flip folded into the weights); a
// crop right after a resize only selects the window of outputs the resize computes; when
// the last resize (with its crop) is the last geometric step its vertical pass feeds the
// output writer row by row (no full-size intermediate). One ImageTransformer per worker
// thread: it keeps its scratch memory between samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "conveyor/ops/fused_resize.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/planar_image.h"
#include "conveyor/ops/resize_weights.h"

namespace conveyor {

// Decoded interleaved RGB pixels (rows readable one byte past in_width * 3). The image may
// have been decoded DCT-scaled (to scaled_width x scaled_height: logical pixel x covers
// physical pixels [x * sw / lw, (x + 1) * sw / lw)) and only partly (a region decode: the
// buffer holds the physical rectangle at origin_x, origin_y, which must contain every pixel
// the plan reads).
struct DecodedImage {
  const uint8_t* data = nullptr;
  size_t row_stride = 0;
  int width = 0, height = 0;                  // physical size of the buffer
  int logical_width = 0, logical_height = 0;  // full-resolution size the plan refers to
  int origin_x = 0, origin_y = 0;             // region decode: where the buffer starts
  int scaled_width = 0,
      scaled_height = 0;  // region decode: the whole decoded size (0: width, height)
};

class ImageTransformer {
 public:
  // `windowed_resize` false: a crop after a resize slices the whole resized image (the
  // reference path the windowed one is tested against).
  explicit ImageTransformer(bool windowed_resize = true) : windowed_resize_(windowed_resize) {}

  // `out` points to plan.width * plan.height * 3 values of format.dtype, CHW.
  void run(const GeometryPlan& plan, const DecodedImage& image, const OutputFormat& format,
           void* out);

 private:
  struct View;
  // Computes outputs [x, x + width) x [y, y + height) of `step` (in the orientation of the
  // view's pixels; `reverse` mirrors the computed row), into the output when `format` is
  // given, else into a planar buffer that becomes the view.
  struct Window {
    int x = 0, y = 0, width = 0, height = 0;
  };
  void resize(View& view, const GeometryStep& step, const Window& window, bool reverse,
              const OutputFormat* format, void* out);
  void resize_whole(View& view, const GeometryStep& step, bool reverse, const OutputFormat* format,
                    void* out);
  void crop(View& view, int x, int y, int width, int height);
  void pad(View& view, const GeometryStep& step);
  void vertical_flip(View& view);
  void write(const View& view, const OutputFormat& format, void* out);
  PlanarImage& next_buffer(const View& view);

  PlanarImage buffers_[2];
  PlanarImage horizontal_;
  std::vector<uint8_t> channel_rows_;
  FusedResizeScratch fused_;
  AxisWeights wx_, wy_, full_x_, full_y_;
  bool windowed_resize_;
};

// The rectangle of the decoded image (DCT-scaled to scaled_width x scaled_height, 1 when not
// scaled) that ImageTransformer reads for a plan starting with a windowed resize (flips aside,
// no pad anywhere): the union of the windowed filter taps widened by `margin` pixels, clamped
// to the image. nullopt for any other plan. `weights_x`, `weights_y`: the caller's scratch,
// kept between calls (the same image size costs no recomputation).
std::optional<SourceRegion> windowed_resize_source(const GeometryPlan& plan, int scaled_width,
                                                   int scaled_height, int margin,
                                                   AxisWeights& weights_x, AxisWeights& weights_y);

}  // namespace conveyor
