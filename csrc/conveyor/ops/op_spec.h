// The typed op of a native pipeline (built only by make_op, from the table in op_schema.h)
// and the validation of an op list into a Pipeline: geometric ops in order, then one fused
// output conversion.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "conveyor/ops/box_ops.h"
#include "conveyor/ops/photometric_spec.h"

namespace conveyor {

enum class OpKind {
  kResize,
  kRandomResizedCrop,
  kRandomCrop,
  kCenterCrop,
  kPad,
  kPadIfSmaller,  // torchvision references' pad_if_smaller: right/bottom up to a size
  kHorizontalFlip,
  kVerticalFlip,
  kRandomResize,
  kRandomShortestSize,
  kScaleJitter,
  kRandomZoomOut,
  kRandomIoUCrop,
  kToDtype,
  kNormalize,
  // photometric (uint8 image values; ops/photometric*.h)
  kColorJitter,
  kPhotometricDistort,
  kGrayscale,
  kRandomGrayscale,
  kGaussianBlur,
  kRandomAutocontrast,
  kRandomEqualize,
  kRandomChannelPermutation,
  kRandomErasing,  // on the final (normalised) values
  // boxes only (ops/box_ops.h)
  kSanitizeBoundingBoxes,
  kClampBoundingBoxes,
  kConvertBoundingBoxFormat,
};

enum class DType { kUint8, kFloat32, kFloat16 };
// Image resampling (masks are always resized nearest, as torchvision's resize_mask).
enum class Interpolation { kBilinear, kNearest, kNearestExact, kBicubic };
enum class PaddingMode { kConstant, kEdge, kReflect, kSymmetric };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

struct OpSpec {
  OpKind kind = OpKind::kResize;
  // resize / crops: {height, width}; `shorter_side` when resize got a single int.
  int height = 0, width = 0;
  bool shorter_side = false;
  int max_size = 0;        // resize with shorter_side, random_shortest_size: 0 = none
  int min_size = 0;        // random_resize: sizes drawn from [min_size, max_size)
  std::vector<int> sizes;  // random_shortest_size: the shorter side is one of them
  bool antialias = true;   // bilinear/bicubic only: torchvision ignores it for nearest
  Interpolation interpolation = Interpolation::kBilinear;
  // masks: torch's nearest (v2 on tv_tensors.Mask) or PIL's NEAREST (a PIL mask, as the
  // torchvision references resize it); resize and random_resize only
  bool mask_pil_nearest = false;
  std::array<double, 2> scale{0.08, 1.0};
  std::array<double, 2> ratio{3.0 / 4.0, 4.0 / 3.0};
  std::array<int, 4> padding{0, 0, 0, 0};  // left, top, right, bottom
  bool has_padding = false;
  bool pad_if_needed = false;
  PaddingMode padding_mode = PaddingMode::kConstant;
  std::array<uint8_t, 3> fill{0, 0, 0};
  uint8_t mask_fill = 0;  // masks have their own fill (torchvision's fill dict)
  std::array<double, 2> scale_range{0.1, 2.0};  // scale_jitter
  std::array<double, 2> side_range{1.0, 4.0};   // random_zoom_out
  // random_iou_crop: scale and aspect bounds of the crop, the minimum-IoU choices (values
  // >= 1 mean "keep the sample unchanged"), and the trials per choice.
  std::array<double, 2> crop_scale{0.3, 1.0}, crop_aspect{0.5, 2.0};
  std::vector<double> sampler_options{0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0};
  int trials = 40;
  double p = 0.5;
  DType dtype = DType::kFloat32;
  bool scale_values = false;
  std::array<float, 3> mean{0, 0, 0}, std{1, 1, 1};
  PhotometricSpec photometric;               // the photometric kinds
  ErasingSpec erasing;                       // random_erasing
  float box_min_size = 1, box_min_area = 1;  // sanitize_bounding_boxes
  BoxFormat box_format = BoxFormat::kXYXY;   // convert_bounding_box_format
};

// A validated pipeline: `geometric` are the ops acting on uint8 pixels, boxes and masks; the
// rest is one affine per-channel conversion fused into the final CHW write:
// out[c] = pixel * multiplier[c] + offset[c], stored as `dtype`.
struct Pipeline {
  std::vector<OpSpec> geometric;
  DType dtype = DType::kUint8;
  std::array<float, 3> multiplier{1, 1, 1}, offset{0, 0, 0};
  bool affine = false;  // false: plain copy (uint8, or float without scale/normalize)
  // The output (height, width) when every image gets the same size, whatever its input size.
  std::optional<std::pair<int, int>> fixed_size;
  // Photometric ops on the decoded image before any geometric op (the whole image is then
  // decoded at full resolution), and those after the last geometric op, on its uint8 output.
  std::vector<PhotometricSpec> photometric_before, photometric_after;
  std::vector<ErasingSpec> erasing;  // on the final values, after the fused write
  std::vector<OpSpec> box_ops;       // on the output boxes (XYXY at first), after the geometric ops
};

// Throws Error(kInvalidArgument) naming the op index for an invalid or misplaced op.
Pipeline compile_pipeline(const std::vector<OpSpec>& ops);

}  // namespace conveyor
