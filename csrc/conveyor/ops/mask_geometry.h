// Masks follow the image geometry with nearest-neighbour sampling (torch's "nearest", or
// "nearest-exact" when the resize asks for it, as torchvision v2's resize_mask); padding uses the
// pad fill's first value. The plan's steps compose into one index map per axis, applied in a single
// pass (repeated rows copied).
#pragma once

#include <cstdint>
#include <vector>

#include "conveyor/ops/geometry_plan.h"

namespace conveyor {

// `mask` holds width*height bytes; it is replaced by the transformed mask (plan.width x
// plan.height). `scratch` is reused between calls.
void apply_geometry_to_mask(const GeometryPlan& plan, int width, int height,
                            std::vector<uint8_t>& mask, std::vector<uint8_t>& scratch);

}  // namespace conveyor
