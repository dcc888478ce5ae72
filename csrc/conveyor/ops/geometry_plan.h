// Turns the geometric ops into concrete steps for one sample: random parameters are drawn
// here, once, from the sample's generator and the full-resolution size. Pixels, boxes and
// masks then all follow the same steps, and the decoder can pick a DCT scale from them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/ops/op_spec.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {

struct GeometryStep {
  enum Kind { kCrop, kPad, kResize, kFlip, kVerticalFlip } kind;
  int x = 0, y = 0, width = 0, height = 0;  // crop region (inside the image); resize: output size
  std::array<int, 4> padding{0, 0, 0, 0};   // pad: left, top, right, bottom
  std::array<uint8_t, 3> fill{0, 0, 0};     // pad: image fill
  uint8_t mask_fill = 0;                    // pad: mask fill
  PaddingMode padding_mode = PaddingMode::kConstant;  // pad: edge/reflect/symmetric ignore fills
  bool antialias = true;                              // resize: bilinear/bicubic
  Interpolation interpolation = Interpolation::kBilinear;  // resize: images (masks: nearest)
  bool mask_pil_nearest = false;  // resize: masks sampled as PIL's NEAREST (else torch's)
  // crop (RandomIoUCrop): boxes whose centre is not strictly inside the crop become all-zero
  // (then dropped as empty), as torchvision's is_within_crop_area.
  bool zero_boxes_outside = false;
};

struct GeometryPlan {
  std::vector<GeometryStep> steps;
  int width = 0, height = 0;  // output size
};

// Throws Error(kInvalidArgument) when a crop does not fit (RandomCrop without pad_if_needed).
// `boxes` (XYXY of the input image, 4 floats each): needed by ops whose draw depends on them
// (random_iou_crop); nullptr when the sample has none.
GeometryPlan plan_geometry(const std::vector<OpSpec>& ops, int width, int height,
                           SampleRandom& random, const std::vector<float>* boxes = nullptr);

// The rectangle of the source image (width x height) that the plan's pixels come from: the
// first crop when only flips precede it, else the whole image. Lets the decoder skip the rest.
struct SourceRegion {
  int x = 0, y = 0, width = 0, height = 0;
};
SourceRegion source_region(const GeometryPlan& plan, int width, int height);

// The source index that padded position `i` (in [-before, size + after)) reads under a
// non-constant padding mode (torch's edge / reflect / symmetric); size > 0. Throws
// Error(kInvalidArgument) when reflect/symmetric padding is larger than the image allows.
int padded_source(int i, int size, PaddingMode mode);

// A resize followed (flips aside) by a crop computes only the crop's window of its output:
// each output pixel's weights are independent of the others, so the window equals
// resize-then-slice exactly. x, y, width, height: the window in the resize's output taken in
// the orientation of the resize's input (a flip before the resize mirrors it back).
struct ResizeWindow {
  bool windowed = false;  // false: no crop follows, or it keeps the whole output
  size_t crop_step = 0;   // the crop the resize absorbs
  int x = 0, y = 0, width = 0, height = 0;
  bool flipped_after = false;  // parity of the flips between the resize and the crop
};
// `input_flipped`: whether the view the resize reads is mirrored (flips before it).
ResizeWindow find_resize_window(const GeometryPlan& plan, size_t resize_step, bool input_flipped);

// The largest DCT downscale (1, 2, 4 or 8) that keeps the region resized by the first resize
// step at least twice as large as that step's output (the antialias filter then still does
// a real downscale, keeping the result close to the full-decode path), or 1.
int choose_dct_scale(const GeometryPlan& plan, int width, int height);

}  // namespace conveyor
