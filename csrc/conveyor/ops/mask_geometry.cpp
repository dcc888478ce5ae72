#include "conveyor/ops/mask_geometry.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace conveyor {
namespace {

// torch's nearest_idx: float32 scale, floor, clamped.
std::vector<int> nearest_indices(int in_size, int out_size) {
  std::vector<int> index(out_size);
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int i = 0; i < out_size; ++i) {
    if (out_size == in_size) index[i] = i;
    else if (out_size == 2 * in_size) index[i] = i >> 1;
    else index[i] = std::min(static_cast<int>(std::floor(static_cast<float>(i) * scale)), in_size - 1);
  }
  return index;
}

}  // namespace

void apply_geometry_to_mask(const GeometryPlan& plan, int width, int height,
                            std::vector<uint8_t>& mask, std::vector<uint8_t>& scratch) {
  for (const GeometryStep& step : plan.steps) {
    switch (step.kind) {
      case GeometryStep::kCrop:
        scratch.resize(static_cast<size_t>(step.width) * step.height);
        for (int y = 0; y < step.height; ++y)
          std::memcpy(&scratch[static_cast<size_t>(y) * step.width],
                      &mask[static_cast<size_t>(y + step.y) * width + step.x], step.width);
        width = step.width;
        height = step.height;
        break;
      case GeometryStep::kPad: {
        const int new_width = width + step.padding[0] + step.padding[2];
        const int new_height = height + step.padding[1] + step.padding[3];
        scratch.assign(static_cast<size_t>(new_width) * new_height, step.fill[0]);
        for (int y = 0; y < height; ++y)
          std::memcpy(&scratch[static_cast<size_t>(y + step.padding[1]) * new_width + step.padding[0]],
                      &mask[static_cast<size_t>(y) * width], width);
        width = new_width;
        height = new_height;
        break;
      }
      case GeometryStep::kResize: {
        const std::vector<int> xs = nearest_indices(width, step.width);
        const std::vector<int> ys = nearest_indices(height, step.height);
        scratch.resize(static_cast<size_t>(step.width) * step.height);
        for (int y = 0; y < step.height; ++y) {
          const uint8_t* source = &mask[static_cast<size_t>(ys[y]) * width];
          uint8_t* target = &scratch[static_cast<size_t>(y) * step.width];
          for (int x = 0; x < step.width; ++x) target[x] = source[xs[x]];
        }
        width = step.width;
        height = step.height;
        break;
      }
      case GeometryStep::kFlip:
        for (int y = 0; y < height; ++y) {
          uint8_t* row = &mask[static_cast<size_t>(y) * width];
          std::reverse(row, row + width);
        }
        continue;  // in place
    }
    mask.swap(scratch);
  }
}

}  // namespace conveyor
