#include "conveyor/ops/box_geometry.h"

#include <algorithm>

#include "conveyor/ops/detection_geometry.h"

namespace conveyor {

void move_boxes(const GeometryStep& step, int& width, int& height, float* boxes, size_t count) {
  switch (step.kind) {
    case GeometryStep::kCrop:
      for (size_t i = 0; i < count; ++i) {
        float* box = &boxes[4 * i];
        if (step.zero_boxes_outside &&
            !centre_within(box, step.x, step.y, step.width, step.height)) {
          std::fill(box, box + 4, 0.0f);
          continue;
        }
        box[0] = std::clamp(box[0] - step.x, 0.0f, static_cast<float>(step.width));
        box[2] = std::clamp(box[2] - step.x, 0.0f, static_cast<float>(step.width));
        box[1] = std::clamp(box[1] - step.y, 0.0f, static_cast<float>(step.height));
        box[3] = std::clamp(box[3] - step.y, 0.0f, static_cast<float>(step.height));
      }
      width = step.width;
      height = step.height;
      break;
    case GeometryStep::kPad:
      for (size_t i = 0; i < count; ++i) {
        float* box = &boxes[4 * i];
        box[0] += step.padding[0];
        box[2] += step.padding[0];
        box[1] += step.padding[1];
        box[3] += step.padding[1];
      }
      width += step.padding[0] + step.padding[2];
      height += step.padding[1] + step.padding[3];
      break;
    case GeometryStep::kResize: {
      const float sx = static_cast<float>(static_cast<double>(step.width) / width);
      const float sy = static_cast<float>(static_cast<double>(step.height) / height);
      for (size_t i = 0; i < count; ++i) {
        float* box = &boxes[4 * i];
        box[0] *= sx;
        box[2] *= sx;
        box[1] *= sy;
        box[3] *= sy;
      }
      width = step.width;
      height = step.height;
      break;
    }
    case GeometryStep::kFlip:
      for (size_t i = 0; i < count; ++i) {
        float* box = &boxes[4 * i];
        const float x1 = box[0];
        box[0] = width - box[2];
        box[2] = width - x1;
      }
      break;
    case GeometryStep::kVerticalFlip:
      for (size_t i = 0; i < count; ++i) {
        float* box = &boxes[4 * i];
        const float y1 = box[1];
        box[1] = height - box[3];
        box[3] = height - y1;
      }
      break;
  }
}

size_t apply_geometry_to_boxes(const GeometryPlan& plan, int width, int height,
                               std::vector<float>& boxes, std::vector<int64_t>& labels) {
  const size_t count = boxes.size() / 4;
  for (const GeometryStep& step : plan.steps) move_boxes(step, width, height, boxes.data(), count);
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    const float* box = &boxes[4 * i];
    if (!(box[2] > box[0] && box[3] > box[1])) continue;
    std::copy(box, box + 4, &boxes[4 * kept]);
    if (!labels.empty()) labels[kept] = labels[i];
    ++kept;
  }
  boxes.resize(4 * kept);
  if (!labels.empty()) labels.resize(kept);
  return kept;
}

}  // namespace conveyor
