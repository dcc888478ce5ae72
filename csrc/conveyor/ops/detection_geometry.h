// The random geometry of torchvision's detection and segmentation recipes (v2 RandomResize,
// RandomShortestSize, ScaleJitter, RandomZoomOut, RandomIoUCrop): each draws its parameters
// from the same distribution as the transform's make_params, with the same float32 / float64
// arithmetic, from the sample's generator. They only decide sizes and rectangles; pixels, boxes
// and masks then follow the steps plan_geometry records.
#pragma once

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "conveyor/ops/op_spec.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {

// torch.rand's float32 draw: a multiple of 2^-24 in [0, 1).
inline float uniform_float(SampleRandom& random) {
  return static_cast<float>(random.next_u64() >> 40) * 0x1.0p-24f;
}

// {width, height} after RandomResize (a shorter side drawn from [min_size, max_size)).
std::pair<int, int> random_resize_size(const OpSpec& op, int width, int height,
                                       SampleRandom& random);
// {width, height} after RandomShortestSize.
std::pair<int, int> random_shortest_size(const OpSpec& op, int width, int height,
                                         SampleRandom& random);
// {width, height} after ScaleJitter.
std::pair<int, int> scale_jitter_size(const OpSpec& op, int width, int height,
                                      SampleRandom& random);
// RandomZoomOut's padding (left, top, right, bottom), or nullopt when it does not apply.
std::optional<std::array<int, 4>> zoom_out_padding(const OpSpec& op, int width, int height,
                                                   SampleRandom& random);

struct IoUCrop {
  int x = 0, y = 0, width = 0, height = 0;
};
// RandomIoUCrop's crop of an image of width x height whose boxes (XYXY, 4 floats each) are
// `boxes`, or nullopt for "leave the sample as it is". Throws Error(kInvalidArgument) where
// torchvision would loop forever: at once for a sample without boxes and no sampler option
// >= 1, and after 1000 rounds without a crop (see the definition for why that cap never
// changes a draw when an option >= 1 exists, as in torchvision's defaults).
std::optional<IoUCrop> iou_crop(const OpSpec& op, int width, int height,
                                const std::vector<float>& boxes, SampleRandom& random);

// Whether a box's centre lies strictly inside the crop (torchvision's is_within_crop_area).
bool centre_within(const float* box, int x, int y, int width, int height);

}  // namespace conveyor
