// Boxes follow the image: scaled by resize, translated and clipped by crop, translated by pad,
// mirrored by flip (torchvision v2 bounding-box kernels, XYXY). Boxes left with no area are
// dropped together with their labels.
#pragma once

#include <cstdint>
#include <vector>

#include "conveyor/ops/geometry_plan.h"

namespace conveyor {

// `boxes` holds 4 floats per box; `labels` one per box (may be empty when there are none).
// Both are rewritten in place; returns the number of boxes kept.
size_t apply_geometry_to_boxes(const GeometryPlan& plan, int width, int height,
                               std::vector<float>& boxes, std::vector<int64_t>& labels);

// One step on `count` boxes, keeping empty ones; width and height follow the step.
void move_boxes(const GeometryStep& step, int& width, int& height, float* boxes, size_t count);

}  // namespace conveyor
