#include "conveyor/ops/image_transform.h"

#include <algorithm>
#include <cstring>

#include "conveyor/ops/fused_resize.h"
#include "conveyor/ops/resample.h"

namespace conveyor {

struct ImageTransformer::View {
  const uint8_t* interleaved = nullptr;  // when not planar
  const PlanarImage* planar = nullptr;
  size_t stride = 0;  // interleaved row stride
  int physical_width = 0, physical_height = 0;
  // The whole image the buffer is part of (a region decode) and where the buffer starts in it.
  int frame_width = 0, frame_height = 0, frame_x = 0, frame_y = 0;
  double rx = 0, ry = 0, rw = 0, rh = 0;  // region of the physical image
  int width = 0, height = 0;              // logical size
  bool flipped = false;

  bool scaled() const { return rw != width || rh != height; }
  // A planar buffer of its own (the result of a resize or pad) as the new view.
  void become(const PlanarImage& buffer, int new_width, int new_height) {
    *this = View{};
    planar = &buffer;
    physical_width = frame_width = width = new_width;
    physical_height = frame_height = height = new_height;
    rw = new_width;
    rh = new_height;
  }
};

void ImageTransformer::crop(View& view, int x, int y, int width, int height) {
  const double sx = view.rw / view.width, sy = view.rh / view.height;
  view.rx += (view.flipped ? view.width - x - width : x) * sx;
  view.ry += y * sy;
  view.rw = width * sx;
  view.rh = height * sy;
  view.width = width;
  view.height = height;
}

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
  view.frame_width = image.scaled_width > 0 ? image.scaled_width : image.width;
  view.frame_height = image.scaled_height > 0 ? image.scaled_height : image.height;
  view.frame_x = image.origin_x;
  view.frame_y = image.origin_y;
  view.rx = -image.origin_x;
  view.ry = -image.origin_y;
  view.rw = view.frame_width;
  view.rh = view.frame_height;
  view.width = image.logical_width;
  view.height = image.logical_height;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const GeometryStep& step = plan.steps[i];
    switch (step.kind) {
      case GeometryStep::kCrop:
        crop(view, step.x, step.y, step.width, step.height);
        break;
      case GeometryStep::kFlip:
        view.flipped = !view.flipped;
        break;
      case GeometryStep::kPad:
        // A crop right after a pad (RandomZoomOut then RandomIoUCrop, RandomCrop with
        // padding) keeps only part of the canvas: crop the image to the part inside the crop
        // and pad just the rest, instead of materialising the whole canvas. Same pixels.
        if (i + 1 < plan.steps.size() && plan.steps[i + 1].kind == GeometryStep::kCrop &&
            step.padding_mode == PaddingMode::kConstant) {
          const GeometryStep& next = plan.steps[i + 1];
          const int left = step.padding[0], top = step.padding[1];
          const int x0 = std::max(next.x, left),
                    x1 = std::min(next.x + next.width, left + view.width);
          const int y0 = std::max(next.y, top),
                    y1 = std::min(next.y + next.height, top + view.height);
          if (x0 < x1 && y0 < y1) {
            crop(view, x0 - left, y0 - top, x1 - x0, y1 - y0);
            GeometryStep rest = step;
            rest.padding = {x0 - next.x, y0 - next.y, next.x + next.width - x1,
                            next.y + next.height - y1};
            pad(view, rest);
            ++i;
            break;
          }
        }
        pad(view, step);
        break;
      case GeometryStep::kVerticalFlip:
        vertical_flip(view);
        break;
      case GeometryStep::kResize: {
        ResizeWindow window;
        if (windowed_resize_) window = find_resize_window(plan, i, view.flipped);
        const size_t last = window.windowed ? window.crop_step : i;  // the last step it consumes
        // Only flips may follow for it to write the output directly.
        bool fused = true, flips_after = false;
        for (size_t j = i + 1; j < plan.steps.size(); ++j) {
          if (plan.steps[j].kind == GeometryStep::kFlip)
            flips_after = !flips_after;
          else if (j > last)
            fused = false;
        }
        const bool reverse = fused ? view.flipped != flips_after : view.flipped;
        if (!window.windowed) {
          resize_whole(view, step, reverse, fused ? &format : nullptr, out);
          if (fused) return;
          break;
        }
        resize(view, step, Window{window.x, window.y, window.width, window.height}, reverse,
               fused ? &format : nullptr, out);
        if (fused) return;
        view.flipped =
            window.flipped_after;  // the window is stored as the crop of the resize's output
        i = last;
        break;
      }
    }
  }
  write(view, format, out);
}

void ImageTransformer::resize_whole(View& view, const GeometryStep& step, bool reverse,
                                    const OutputFormat* format, void* out) {
  resize(view, step, Window{0, 0, step.width, step.height}, reverse, format, out);
}

void ImageTransformer::resize(View& view, const GeometryStep& step, const Window& window,
                              bool reverse, const OutputFormat* format, void* out) {
  if (window.width == step.width && window.height == step.height) {
    compute_axis_weights(wx_, view.physical_width, view.rx, view.rw, step.width, step.antialias,
                         step.interpolation);
    compute_axis_weights(wy_, view.physical_height, view.ry, view.rh, step.height, step.antialias,
                         step.interpolation);
    if (reverse) wx_.reverse();
  } else {
    // The whole resize's weights over the whole image (the windows clamp at its edges, not at
    // the decoded region's), then the window's outputs moved into the buffer.
    compute_axis_weights(full_x_, view.frame_width, view.rx + view.frame_x, view.rw, step.width,
                         step.antialias, step.interpolation);
    compute_axis_weights(full_y_, view.frame_height, view.ry + view.frame_y, view.rh, step.height,
                         step.antialias, step.interpolation);
    window_axis_weights(wx_, full_x_, window.x, window.width, reverse, view.frame_x,
                        view.physical_width);
    window_axis_weights(wy_, full_y_, window.y, window.height, false, view.frame_y,
                        view.physical_height);
  }
  const int out_width = window.width, out_height = window.height;
  if (format) {
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
  horizontal_.reset(out_width, rows);
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
  target.reset(out_width, out_height);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < out_height; ++y)
      resample_vertical_row(planes[c], horizontal_.row_stride, row_begin, rows, out_width, wy_, y,
                            target.row(c, y));
  view.become(target, out_width, out_height);  // unflipped: a flip is folded into the weights
}

void ImageTransformer::pad(View& view, const GeometryStep& step) {
  if (view.scaled()) {  // a DCT-scaled view must first be brought to its logical size
    GeometryStep to_logical{GeometryStep::kResize};
    to_logical.width = view.width;
    to_logical.height = view.height;
    resize_whole(view, to_logical, view.flipped, nullptr, nullptr);
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
        if (view.flipped)
          for (int x = 0; x < view.width; ++x) dst[x] = src[view.width - 1 - x];
        else
          std::memcpy(dst, src, static_cast<size_t>(view.width));
      } else {
        const uint8_t* src =
            view.interleaved + view.stride * (y0 + y) + static_cast<size_t>(x0) * 3 + c;
        if (view.flipped)
          for (int x = 0; x < view.width; ++x) dst[x] = src[(view.width - 1 - x) * 3];
        else
          for (int x = 0; x < view.width; ++x) dst[x] = src[x * 3];
      }
    }
  }
  if (step.padding_mode != PaddingMode::kConstant) {
    // Separable, like torch's: each border column of an interior row, then each border row,
    // reads the image position the mode maps it to.
    for (int c = 0; c < 3; ++c) {
      for (int y = top; y < top + view.height; ++y) {
        uint8_t* row = target.row(c, y);
        for (int x = 0; x < left; ++x)
          row[x] = row[left + padded_source(x - left, view.width, step.padding_mode)];
        for (int x = left + view.width; x < new_width; ++x)
          row[x] = row[left + padded_source(x - left, view.width, step.padding_mode)];
      }
      for (int y = 0; y < new_height; ++y) {
        if (y >= top && y < top + view.height) continue;
        const int source = top + padded_source(y - top, view.height, step.padding_mode);
        std::memcpy(target.row(c, y), target.row(c, source), static_cast<size_t>(new_width));
      }
    }
  }
  view.become(target, new_width, new_height);
}

void ImageTransformer::vertical_flip(View& view) {
  GeometryStep materialise{GeometryStep::kPad};  // no padding: the view as a planar buffer
  pad(view, materialise);
  PlanarImage& buffer = view.planar == &buffers_[0] ? buffers_[0] : buffers_[1];
  for (int c = 0; c < 3; ++c)
    for (int top = 0, bottom = view.height - 1; top < bottom; ++top, --bottom)
      std::swap_ranges(buffer.row(c, top), buffer.row(c, top) + view.width, buffer.row(c, bottom));
}

void ImageTransformer::write(const View& input, const OutputFormat& format, void* out) {
  View view = input;
  if (view.scaled()) {
    GeometryStep to_logical{GeometryStep::kResize};
    to_logical.width = view.width;
    to_logical.height = view.height;
    resize_whole(view, to_logical, view.flipped, &format, out);
    return;
  }
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
      rows[0] = r;
      rows[1] = g;
      rows[2] = b;
    }
    for (int c = 0; c < 3; ++c)
      write_output_row(
          format, c, rows[c], view.width, view.flipped,
          static_cast<uint8_t*>(out) + format.row_offset(c, y, view.width, view.height));
  }
}

std::optional<SourceRegion> windowed_resize_source(const GeometryPlan& plan, int scaled_width,
                                                   int scaled_height, int margin,
                                                   AxisWeights& weights_x, AxisWeights& weights_y) {
  size_t first = 0;
  bool flipped = false;
  for (; first < plan.steps.size() && plan.steps[first].kind == GeometryStep::kFlip; ++first)
    flipped = !flipped;
  if (first == plan.steps.size() || plan.steps[first].kind != GeometryStep::kResize)
    return std::nullopt;
  for (const GeometryStep& step : plan.steps)
    if (step.kind == GeometryStep::kPad || step.kind == GeometryStep::kVerticalFlip)
      return std::nullopt;
  const ResizeWindow window = find_resize_window(plan, first, flipped);
  if (!window.windowed) return std::nullopt;
  // The weights ImageTransformer::resize computes over the whole image (where the region
  // decode's frame is): the window's taps are those of its outputs there.
  const GeometryStep& resize = plan.steps[first];
  const auto span = [&](AxisWeights& weights, int size, int out_size, int begin, int count,
                        int& low, int& high) {
    compute_axis_weights(weights, size, 0.0, size, out_size, resize.antialias,
                         resize.interpolation);
    low = size;
    high = 0;
    for (int x = begin; x < begin + count; ++x) {
      low = std::min(low, weights.first[static_cast<size_t>(x)]);
      high = std::max(high, weights.first[static_cast<size_t>(x)] + weights.taps);
    }
    low = std::max(0, low - margin);
    high = std::min(size, high + margin);
  };
  int x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  span(weights_x, scaled_width, resize.width, window.x, window.width, x0, x1);
  span(weights_y, scaled_height, resize.height, window.y, window.height, y0, y1);
  return SourceRegion{x0, y0, x1 - x0, y1 - y0};
}

}  // namespace conveyor
