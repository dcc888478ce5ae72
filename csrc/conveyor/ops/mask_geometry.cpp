#include "conveyor/ops/mask_geometry.h"

#include "conveyor/ops/resize_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace conveyor {
namespace {

// torchvision's resize_mask: "nearest-exact" when the transform asks for it, else "nearest"
// (whatever the image's mode).
std::vector<int> nearest_indices(int in_size, int out_size, Interpolation interpolation) {
  const bool exact = interpolation == Interpolation::kNearestExact;
  std::vector<int> index(out_size);
  for (int i = 0; i < out_size; ++i) index[i] = nearest_source_index(i, in_size, out_size, exact);
  return index;
}

// PIL's NEAREST resize (ImagingScaleAffine): the source coordinate starts at half a step and
// grows by the double scale in/out each output pixel, truncated: what torch calls
// "nearest-exact", in PIL's own arithmetic (it decides the ties at exact integers).
std::vector<int> pil_nearest_indices(int in_size, int out_size) {
  std::vector<int> index(out_size);
  const double scale = static_cast<double>(in_size) / out_size;
  double position = scale * 0.5;
  for (int i = 0; i < out_size; ++i, position += scale)
    index[i] = std::min(static_cast<int>(position), in_size - 1);
  return index;
}

// Nearest-neighbour crop, pad, resize and flip all act on each axis separately, so the whole
// plan composes into one map per axis: output coordinate -> source coordinate (>= 0), or a
// padding code (< 0) holding the pad step's number and fill. Where both axes of a pixel fall
// in padding, the later pad step (the outer border) gives the value.
int pad_code(size_t step, uint8_t fill) { return -1 - static_cast<int>(step * 256 + fill); }
size_t pad_step(int code) { return static_cast<size_t>(-1 - code) >> 8; }
uint8_t pad_fill(int code) { return static_cast<uint8_t>((-1 - code) & 255); }

struct AxisMaps {
  std::vector<int> xs, ys;
};

AxisMaps compose(const GeometryPlan& plan, int width, int height) {
  AxisMaps maps;
  maps.xs.resize(width);
  maps.ys.resize(height);
  for (int i = 0; i < width; ++i) maps.xs[i] = i;
  for (int i = 0; i < height; ++i) maps.ys[i] = i;
  std::vector<int> next;
  auto crop = [&next](std::vector<int>& map, int start, int size) {
    next.assign(map.begin() + start, map.begin() + start + size);
    map.swap(next);
  };
  auto pad = [&next](std::vector<int>& map, int before, int after, int code) {
    next.assign(map.size() + before + after, code);
    std::copy(map.begin(), map.end(), next.begin() + before);
    map.swap(next);
  };
  auto mode_pad = [&next](std::vector<int>& map, int before, int after, PaddingMode mode) {
    const int size = static_cast<int>(map.size());
    next.resize(static_cast<size_t>(size + before + after));
    for (int i = 0; i < size + before + after; ++i)
      next[i] = map[padded_source(i - before, size, mode)];
    map.swap(next);
  };
  auto resize = [&next](std::vector<int>& map, int size, Interpolation interpolation, bool pil) {
    const int in_size = static_cast<int>(map.size());
    const std::vector<int> index =
        pil ? pil_nearest_indices(in_size, size) : nearest_indices(in_size, size, interpolation);
    next.resize(size);
    for (int i = 0; i < size; ++i) next[i] = map[index[i]];
    map.swap(next);
  };
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const GeometryStep& step = plan.steps[s];
    switch (step.kind) {
      case GeometryStep::kCrop:
        crop(maps.xs, step.x, step.width);
        crop(maps.ys, step.y, step.height);
        break;
      case GeometryStep::kPad: {
        if (step.padding_mode != PaddingMode::kConstant) {  // padding repeats source indices
          mode_pad(maps.xs, step.padding[0], step.padding[2], step.padding_mode);
          mode_pad(maps.ys, step.padding[1], step.padding[3], step.padding_mode);
          break;
        }
        const int code = pad_code(s, step.mask_fill);
        pad(maps.xs, step.padding[0], step.padding[2], code);
        pad(maps.ys, step.padding[1], step.padding[3], code);
        break;
      }
      case GeometryStep::kResize:
        resize(maps.xs, step.width, step.interpolation, step.mask_pil_nearest);
        resize(maps.ys, step.height, step.interpolation, step.mask_pil_nearest);
        break;
      case GeometryStep::kFlip:
        std::reverse(maps.xs.begin(), maps.xs.end());
        break;
      case GeometryStep::kVerticalFlip:
        std::reverse(maps.ys.begin(), maps.ys.end());
        break;
    }
  }
  return maps;
}

}  // namespace

void apply_geometry_to_mask(const GeometryPlan& plan, int width, int height,
                            std::vector<uint8_t>& mask, std::vector<uint8_t>& scratch) {
  const AxisMaps maps = compose(plan, width, height);
  const int out_width = static_cast<int>(maps.xs.size());
  const int out_height = static_cast<int>(maps.ys.size());
  const std::vector<int>& xs = maps.xs;
  const bool x_padded = std::any_of(xs.begin(), xs.end(), [](int x) { return x < 0; });
  bool x_contiguous = !x_padded;  // a plain window of the source row: one memcpy
  for (int x = 1; x_contiguous && x < out_width; ++x) x_contiguous = xs[x] == xs[0] + x;
  scratch.resize(static_cast<size_t>(out_width) * out_height);
  for (int y = 0; y < out_height; ++y) {
    uint8_t* out = &scratch[static_cast<size_t>(y) * out_width];
    const int sy = maps.ys[y];
    if (sy < 0) {  // a padding row; a later pad step on x wins where both axes are padding
      for (int x = 0; x < out_width; ++x)
        out[x] = xs[x] < 0 && pad_step(xs[x]) > pad_step(sy) ? pad_fill(xs[x]) : pad_fill(sy);
      continue;
    }
    if (y > 0 && maps.ys[y - 1] == sy) {  // upscaled rows repeat
      std::memcpy(out, out - out_width, out_width);
      continue;
    }
    const uint8_t* source = &mask[static_cast<size_t>(sy) * width];
    if (x_contiguous) {
      std::memcpy(out, source + xs[0], out_width);
    } else if (!x_padded) {
      for (int x = 0; x < out_width; ++x) out[x] = source[xs[x]];
    } else {
      for (int x = 0; x < out_width; ++x) out[x] = xs[x] >= 0 ? source[xs[x]] : pad_fill(xs[x]);
    }
  }
  mask.swap(scratch);
}

}  // namespace conveyor
