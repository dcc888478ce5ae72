#include "conveyor/ops/op_spec.h"

#include <algorithm>

#include "conveyor/core/error.h"

namespace conveyor {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kUint8:
      return "uint8";
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  return dtype == DType::kUint8 ? 1 : dtype == DType::kFloat16 ? 2 : 4;
}

namespace {

[[noreturn]] void invalid(size_t index, const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, "pipeline op " + std::to_string(index) + ": " + message);
}

// Photometric, erasing and box ops go to their stage of the pipeline; returns false for the
// others. `converted`: a to_dtype/normalize came before.
bool compile_photometric_or_box_op(const OpSpec& op, size_t i, bool converted, Pipeline& pipeline,
                                   bool& photometric_after) {
  switch (op.kind) {
    case OpKind::kColorJitter:
    case OpKind::kPhotometricDistort:
    case OpKind::kGrayscale:
    case OpKind::kRandomGrayscale:
    case OpKind::kGaussianBlur:
    case OpKind::kRandomAutocontrast:
    case OpKind::kRandomEqualize:
    case OpKind::kRandomChannelPermutation:
      if (converted)
        invalid(i,
                "photometric ops run natively on uint8 images: put them before "
                "to_dtype/normalize");
      try {
        op.photometric.validate();
      } catch (const Error& error) {
        invalid(i, error.what());
      }
      if (pipeline.geometric.empty()) {
        pipeline.photometric_before.push_back(op.photometric);
      } else {
        pipeline.photometric_after.push_back(op.photometric);
        photometric_after = true;
      }
      return true;
    case OpKind::kRandomErasing:
      try {
        op.erasing.validate();
      } catch (const Error& error) {
        invalid(i, error.what());
      }
      pipeline.erasing.push_back(op.erasing);
      return true;
    case OpKind::kSanitizeBoundingBoxes:
    case OpKind::kClampBoundingBoxes:
    case OpKind::kConvertBoundingBoxFormat:
      if (!(op.box_min_size >= 1 && op.box_min_area >= 1))
        invalid(i, "sanitize_bounding_boxes min_size and min_area must be >= 1");
      pipeline.box_ops.push_back(op);
      return true;
    default:
      return false;
  }
}

}  // namespace

Pipeline compile_pipeline(const std::vector<OpSpec>& ops) {
  Pipeline pipeline;
  bool converted = false;  // a to_dtype/normalize was seen: no geometric op may follow
  bool is_float = false;
  std::optional<std::pair<int, int>> size;  // (h, w) known statically
  bool photometric_after = false;           // a photometric op follows a geometric one
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpSpec& op = ops[i];
    if (compile_photometric_or_box_op(op, i, converted, pipeline, photometric_after)) continue;
    if (!pipeline.erasing.empty())
      invalid(i, "random_erasing must be the last image op in a native pipeline");
    const bool geometric = op.kind != OpKind::kToDtype && op.kind != OpKind::kNormalize;
    if (geometric && photometric_after)
      invalid(i,
              "a geometric op after a photometric op that follows geometric ops does not "
              "run natively (photometric ops run before or after the geometric ones)");
    if (geometric && !pipeline.box_ops.empty())
      invalid(i, "box ops (sanitize/clamp) must come after the geometric ops");
    if (geometric && converted)
      invalid(i, "geometric ops must come before to_dtype/normalize in a native pipeline");
    if (op.padding_mode != PaddingMode::kConstant && op.kind != OpKind::kPad &&
        op.kind != OpKind::kRandomCrop)
      invalid(i, "padding_mode applies to pad and random_crop only");
    switch (op.kind) {
      case OpKind::kResize:
        if (op.height <= 0 || op.width <= 0) invalid(i, "resize size must be positive");
        if (op.max_size != 0 && (!op.shorter_side || op.max_size <= op.height))
          invalid(i, "max_size must be greater than an int size for the shorter side");
        if (op.shorter_side)
          size.reset();
        else
          size = {op.height, op.width};
        break;
      case OpKind::kRandomResizedCrop:
        if (op.height <= 0 || op.width <= 0)
          invalid(i, "random_resized_crop size must be positive");
        if (op.scale[0] > op.scale[1] || op.ratio[0] > op.ratio[1] || op.scale[0] < 0 ||
            op.ratio[0] <= 0)
          invalid(i, "scale and ratio must be (min, max) with 0 <= min <= max (ratio > 0)");
        size = {op.height, op.width};
        break;
      case OpKind::kRandomCrop:
      case OpKind::kCenterCrop:
        if (op.height <= 0 || op.width <= 0) invalid(i, "crop size must be positive");
        for (int pad : op.padding)
          if (pad < 0) invalid(i, "padding must be >= 0");
        size = {op.height, op.width};
        break;
      case OpKind::kPad:
        for (int pad : op.padding)
          if (pad < 0) invalid(i, "padding must be >= 0");
        if (size)
          size = {size->first + op.padding[1] + op.padding[3],
                  size->second + op.padding[0] + op.padding[2]};
        break;
      case OpKind::kPadIfSmaller:
        if (op.height <= 0) invalid(i, "pad_if_smaller size must be positive");
        if (size) size = {std::max(size->first, op.height), std::max(size->second, op.width)};
        break;
      case OpKind::kHorizontalFlip:
      case OpKind::kVerticalFlip:
        if (op.p < 0 || op.p > 1) invalid(i, "flip p must be in [0, 1]");
        break;
      case OpKind::kRandomResize:
        if (op.min_size <= 0 || op.max_size <= op.min_size)
          invalid(i, "random_resize needs 0 < min_size < max_size");
        size.reset();
        break;
      case OpKind::kRandomShortestSize:
        if (op.sizes.empty()) invalid(i, "random_shortest_size needs min_size");
        for (int s : op.sizes)
          if (s <= 0) invalid(i, "random_shortest_size min_size must be positive");
        size.reset();
        break;
      case OpKind::kScaleJitter:
        if (op.scale_range[0] <= 0) invalid(i, "scale_jitter scale_range must be positive");
        size.reset();
        break;
      case OpKind::kRandomZoomOut:
        if (op.side_range[0] < 1.0) invalid(i, "random_zoom_out side_range must start at >= 1");
        size.reset();
        break;
      case OpKind::kRandomIoUCrop:
        if (op.sampler_options.empty()) invalid(i, "random_iou_crop needs sampler_options");
        if (op.trials < 1) invalid(i, "random_iou_crop trials must be >= 1");
        if (op.crop_scale[0] > op.crop_scale[1] || op.crop_scale[0] < 0 ||
            op.crop_aspect[0] > op.crop_aspect[1])
          invalid(i, "random_iou_crop needs min_scale <= max_scale, min <= max aspect ratio");
        size.reset();
        break;
      case OpKind::kToDtype:
        if (converted && !is_float) invalid(i, "only one to_dtype is supported natively");
        if (is_float && op.dtype == DType::kUint8)
          invalid(i, "to_dtype uint8 after a float conversion is not supported natively");
        if (op.dtype != DType::kUint8) {
          if (op.scale_values)
            for (int c = 0; c < 3; ++c) {
              pipeline.multiplier[c] /= 255.0f;
              pipeline.offset[c] /= 255.0f;
            }
          pipeline.affine = pipeline.affine || op.scale_values;
          is_float = true;
        }
        pipeline.dtype = op.dtype;
        converted = true;
        break;
      default:
        break;
      case OpKind::kNormalize:
        if (!is_float) invalid(i, "normalize needs a float image: put to_dtype(float) before it");
        for (int c = 0; c < 3; ++c) {
          if (!(op.std[c] != 0)) invalid(i, "normalize std must be non-zero");
          pipeline.multiplier[c] /= op.std[c];
          pipeline.offset[c] = (pipeline.offset[c] - op.mean[c]) / op.std[c];
        }
        pipeline.affine = true;
        break;
    }
    if (geometric) pipeline.geometric.push_back(op);
  }
  pipeline.fixed_size = size;
  return pipeline;
}

}  // namespace conveyor
