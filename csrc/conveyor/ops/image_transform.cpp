#include "conveyor/ops/image_transform.h"

#include <algorithm>
#include <cstring>

#include "conveyor/ops/fused_resize.h"
#include "conveyor/ops/resample.h"

namespace conveyor {

struct ImageTransformer::View {
  const uint8_t* interleaved = nullptr;  // when not planar
  const PlanarImage* planar = nullptr;
  size_t stride = 0;                      // interleaved row stride
  int physical_width = 0, physical_height = 0;
  double rx = 0, ry = 0, rw = 0, rh = 0;  // region of the physical image
  int width = 0, height = 0;              // logical size
  bool flipped = false;

  bool scaled() const { return rw != width || rh != height; }
};

PlanarImage& ImageTransformer::next_buffer(const View& view) {
  return view.planar == &buffers_[0] ? buffers_[1] : buffers_[0];
}

void ImageTransformer::run(const GeometryPlan& plan, const DecodedImage& image,
                           const OutputFormat& format, void* out) {
  View view;
  view.interleaved = image.data;
  view.stride = image.row_stride;
  view.physical_width = image.width;
  view.physical_height = image.height;
  view.rx = -image.origin_x;
  view.ry = -image.origin_y;
  view.rw = image.scaled_width > 0 ? image.scaled_width : image.width;
  view.rh = image.scaled_height > 0 ? image.scaled_height : image.height;
  view.width = image.logical_width;
  view.height = image.logical_height;
  // Only flips may follow the last resize for it to write the output directly.
  int last_resize = -1;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const GeometryStep::Kind kind = plan.steps[i].kind;
    if (kind == GeometryStep::kResize) last_resize = static_cast<int>(i);
    else if (kind != GeometryStep::kFlip) last_resize = -1;
  }
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const GeometryStep& step = plan.steps[i];
    switch (step.kind) {
      case GeometryStep::kCrop: {
        const double sx = view.rw / view.width, sy = view.rh / view.height;
        view.rx += (view.flipped ? view.width - step.x - step.width : step.x) * sx;
        view.ry += step.y * sy;
        view.rw = step.width * sx;
        view.rh = step.height * sy;
        view.width = step.width;
        view.height = step.height;
        break;
      }
      case GeometryStep::kFlip:
        view.flipped = !view.flipped;
        break;
      case GeometryStep::kPad:
        pad(view, step);
        break;
      case GeometryStep::kResize:
        if (static_cast<int>(i) == last_resize) {
          bool flip = view.flipped;
          for (size_t j = i + 1; j < plan.steps.size(); ++j) flip = !flip;
          resize(view, step, true, flip, &format, out);
          return;
        }
        resize(view, step, false, view.flipped, nullptr, nullptr);
        break;
    }
  }
  write(view, format, out);
}

void ImageTransformer::resize(View& view, const GeometryStep& step, bool fused, bool flip_output,
                              const OutputFormat* format, void* out) {
  compute_axis_weights(wx_, view.physical_width, view.rx, view.rw, step.width, step.antialias);
  compute_axis_weights(wy_, view.physical_height, view.ry, view.rh, step.height, step.antialias);
  if (flip_output) wx_.reverse();
  if (fused) {
    ResizeSource source;
    source.width = view.physical_width;
    source.height = view.physical_height;
    if (view.planar) {
      for (int c = 0; c < 3; ++c) source.planes[c] = view.planar->plane(c);
      source.stride = view.planar->row_stride;
    } else {
      source.interleaved = view.interleaved;
      source.stride = view.stride;
    }
    resize_to_output(source, wx_, wy_, *format, out, fused_);
    return;
  }
  // Horizontal pass over the input rows the vertical windows touch.
  const int row_begin = wy_.first.front() < wy_.first.back() ? wy_.first.front() : wy_.first.back();
  int row_end = 0;
  for (int y = 0; y < wy_.out_size; ++y) row_end = std::max(row_end, wy_.first[y] + wy_.taps);
  row_end = std::min(row_end, view.physical_height);
  const int rows = row_end - row_begin;
  horizontal_.reset(step.width, rows);
  uint8_t* planes[3] = {horizontal_.plane(0), horizontal_.plane(1), horizontal_.plane(2)};
  if (view.planar) {
    for (int c = 0; c < 3; ++c)
      resample_horizontal_plane(view.planar->plane(c) + view.planar->row_stride * row_begin,
                                view.planar->row_stride, view.physical_width, rows, wx_, planes[c],
                                horizontal_.row_stride);
  } else {
    resample_horizontal_rgb(view.interleaved + view.stride * row_begin, view.stride,
                            view.physical_width, rows, wx_, planes, horizontal_.row_stride);
  }
  PlanarImage& target = next_buffer(view);
  target.reset(step.width, step.height);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < step.height; ++y)
      resample_vertical_row(planes[c], horizontal_.row_stride, row_begin, rows, step.width, wy_,
                            y, target.row(c, y));
  view = View{};
  view.planar = &target;
  view.physical_width = view.width = step.width;
  view.physical_height = view.height = step.height;
  view.rw = step.width;
  view.rh = step.height;
  view.flipped = false;  // folded into the weights
}

void ImageTransformer::pad(View& view, const GeometryStep& step) {
  if (view.scaled()) {  // a DCT-scaled view must first be brought to its logical size
    GeometryStep to_logical{GeometryStep::kResize};
    to_logical.width = view.width;
    to_logical.height = view.height;
    resize(view, to_logical, false, view.flipped, nullptr, nullptr);
  }
  const int left = step.padding[0], top = step.padding[1];
  const int new_width = view.width + left + step.padding[2];
  const int new_height = view.height + top + step.padding[3];
  PlanarImage& target = next_buffer(view);
  target.reset(new_width, new_height);
  const int x0 = static_cast<int>(view.rx), y0 = static_cast<int>(view.ry);
  for (int c = 0; c < 3; ++c) {
    std::memset(target.plane(c), step.fill[c], target.plane_stride);
    for (int y = 0; y < view.height; ++y) {
      uint8_t* dst = target.row(c, y + top) + left;
      if (view.planar) {
        const uint8_t* src = view.planar->plane(c) + view.planar->row_stride * (y0 + y) + x0;
        if (view.flipped) for (int x = 0; x < view.width; ++x) dst[x] = src[view.width - 1 - x];
        else std::memcpy(dst, src, static_cast<size_t>(view.width));
      } else {
        const uint8_t* src = view.interleaved + view.stride * (y0 + y) + static_cast<size_t>(x0) * 3 + c;
        if (view.flipped) for (int x = 0; x < view.width; ++x) dst[x] = src[(view.width - 1 - x) * 3];
        else for (int x = 0; x < view.width; ++x) dst[x] = src[x * 3];
      }
    }
  }
  view = View{};
  view.planar = &target;
  view.physical_width = view.width = new_width;
  view.physical_height = view.height = new_height;
  view.rw = new_width;
  view.rh = new_height;
}

void ImageTransformer::write(const View& input, const OutputFormat& format, void* out) {
  View view = input;
  if (view.scaled()) {
    GeometryStep to_logical{GeometryStep::kResize};
    to_logical.width = view.width;
    to_logical.height = view.height;
    resize(view, to_logical, true, view.flipped, &format, out);
    return;
  }
  const size_t value_size = dtype_size(format.dtype);
  const size_t plane_bytes = static_cast<size_t>(view.width) * view.height * value_size;
  const int x0 = static_cast<int>(view.rx), y0 = static_cast<int>(view.ry);
  channel_rows_.resize(static_cast<size_t>(view.width) * 3 + kRowSlack);
  for (int y = 0; y < view.height; ++y) {
    const uint8_t* rows[3];
    if (view.planar) {
      for (int c = 0; c < 3; ++c)
        rows[c] = view.planar->plane(c) + view.planar->row_stride * (y0 + y) + x0;
    } else {
      const uint8_t* src = view.interleaved + view.stride * (y0 + y) + static_cast<size_t>(x0) * 3;
      uint8_t* r = channel_rows_.data();
      uint8_t* g = r + view.width;
      uint8_t* b = g + view.width;
      for (int x = 0; x < view.width; ++x) {
        r[x] = src[3 * x];
        g[x] = src[3 * x + 1];
        b[x] = src[3 * x + 2];
      }
      rows[0] = r; rows[1] = g; rows[2] = b;
    }
    for (int c = 0; c < 3; ++c)
      write_output_row(format, c, rows[c], view.width, view.flipped,
                       static_cast<uint8_t*>(out) + plane_bytes * c +
                           static_cast<size_t>(y) * view.width * value_size);
  }
}

}  // namespace conveyor
