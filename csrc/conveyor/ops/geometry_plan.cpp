#include "conveyor/ops/geometry_plan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "conveyor/core/error.h"
#include "conveyor/ops/box_geometry.h"
#include "conveyor/ops/detection_geometry.h"

namespace conveyor {
namespace {

// Python's round(): half to even (the default floating-point rounding mode).
int round_half_even(double value) { return static_cast<int>(std::nearbyint(value)); }

void add_crop(GeometryPlan& plan, int x, int y, int width, int height) {
  if (x == 0 && y == 0 && width == plan.width && height == plan.height) return;
  GeometryStep step{GeometryStep::kCrop};
  step.x = x;
  step.y = y;
  step.width = width;
  step.height = height;
  plan.steps.push_back(step);
  plan.width = width;
  plan.height = height;
}

void add_pad(GeometryPlan& plan, const std::array<int, 4>& padding,
             const std::array<uint8_t, 3>& fill, uint8_t mask_fill,
             PaddingMode mode = PaddingMode::kConstant) {
  if (padding[0] == 0 && padding[1] == 0 && padding[2] == 0 && padding[3] == 0) return;
  GeometryStep step{GeometryStep::kPad};
  step.padding = padding;
  step.fill = fill;
  step.mask_fill = mask_fill;
  step.padding_mode = mode;
  if (mode != PaddingMode::kConstant) {  // torch's limits, checked before any pixel moves
    const int limit_w = mode == PaddingMode::kReflect ? plan.width - 1 : plan.width;
    const int limit_h = mode == PaddingMode::kReflect ? plan.height - 1 : plan.height;
    if (mode != PaddingMode::kEdge &&
        (std::max(padding[0], padding[2]) > limit_w || std::max(padding[1], padding[3]) > limit_h))
      throw Error(ErrorKind::kInvalidArgument,
                  std::string(mode == PaddingMode::kReflect ? "reflect" : "symmetric") +
                      " padding " + std::to_string(std::max(padding[0], padding[2])) + "/" +
                      std::to_string(std::max(padding[1], padding[3])) +
                      " is too large for an image of " + std::to_string(plan.width) + "x" +
                      std::to_string(plan.height));
  }
  plan.steps.push_back(step);
  plan.width += padding[0] + padding[2];
  plan.height += padding[1] + padding[3];
}

void add_resize(GeometryPlan& plan, int width, int height, const OpSpec& op) {
  if (width == plan.width && height == plan.height) return;  // torchvision returns the input
  GeometryStep step{GeometryStep::kResize};
  step.width = width;
  step.height = height;
  step.antialias = op.antialias;
  step.interpolation = op.interpolation;
  step.mask_pil_nearest = op.mask_pil_nearest;
  plan.steps.push_back(step);
  plan.width = width;
  plan.height = height;
}

// torchvision's _compute_resized_output_size.
std::pair<int, int> resized_size(const OpSpec& op, int width, int height) {
  if (!op.shorter_side) return {op.width, op.height};
  const bool portrait = width <= height;
  const int short_side = portrait ? width : height, long_side = portrait ? height : width;
  int new_short = op.height;
  int new_long = static_cast<int>(static_cast<double>(new_short) * long_side / short_side);
  if (op.max_size != 0 && new_long > op.max_size) {
    new_short = static_cast<int>(static_cast<double>(op.max_size) * new_short / new_long);
    new_long = op.max_size;
  }
  return portrait ? std::pair<int, int>{new_short, new_long}
                  : std::pair<int, int>{new_long, new_short};
}

// torchvision RandomResizedCrop.get_params.
void random_resized_crop(GeometryPlan& plan, const OpSpec& op, SampleRandom& random) {
  const int width = plan.width, height = plan.height;
  const double area = static_cast<double>(width) * height;
  const double log_low = std::log(op.ratio[0]), log_high = std::log(op.ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * random.uniform(op.scale[0], op.scale[1]);
    const double aspect = std::exp(random.uniform(log_low, log_high));
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = static_cast<int>(random.uniform_int(0, height - h + 1));
      const int left = static_cast<int>(random.uniform_int(0, width - w + 1));
      add_crop(plan, left, top, w, h);
      add_resize(plan, op.width, op.height, op);
      return;
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < op.ratio[0]) {
    h = round_half_even(w / op.ratio[0]);
  } else if (in_ratio > op.ratio[1]) {
    w = round_half_even(h * op.ratio[1]);
  }
  add_crop(plan, (width - w) / 2, (height - h) / 2, w, h);
  add_resize(plan, op.width, op.height, op);
}

// torchvision v2 RandomCrop.make_params.
void random_crop(GeometryPlan& plan, const OpSpec& op, SampleRandom& random) {
  std::array<int, 4> padding = op.has_padding ? op.padding : std::array<int, 4>{0, 0, 0, 0};
  int padded_width = plan.width + padding[0] + padding[2];
  int padded_height = plan.height + padding[1] + padding[3];
  if (op.pad_if_needed) {
    if (padded_height < op.height) {
      const int diff = op.height - padded_height;
      padding[1] += diff;
      padding[3] += diff;
      padded_height += 2 * diff;
    }
    if (padded_width < op.width) {
      const int diff = op.width - padded_width;
      padding[0] += diff;
      padding[2] += diff;
      padded_width += 2 * diff;
    }
  }
  if (padded_height < op.height || padded_width < op.width)
    throw Error(ErrorKind::kInvalidArgument,
                "required crop size (" + std::to_string(op.height) + ", " +
                    std::to_string(op.width) + ") is larger than the " +
                    (op.has_padding ? "padded " : "") + "input image size (" +
                    std::to_string(padded_height) + ", " + std::to_string(padded_width) + ")");
  const int top = padded_height > op.height
                      ? static_cast<int>(random.uniform_int(0, padded_height - op.height + 1))
                      : 0;
  const int left = padded_width > op.width
                       ? static_cast<int>(random.uniform_int(0, padded_width - op.width + 1))
                       : 0;
  add_pad(plan, padding, op.fill, op.mask_fill, op.padding_mode);
  add_crop(plan, left, top, op.width, op.height);
}

// torchvision v2 center_crop: pads with 0 when the crop is larger than the image.
void center_crop(GeometryPlan& plan, const OpSpec& op) {
  if (op.height > plan.height || op.width > plan.width) {
    const int dw = op.width - plan.width, dh = op.height - plan.height;
    add_pad(plan,
            {dw > 0 ? dw / 2 : 0, dh > 0 ? dh / 2 : 0, dw > 0 ? (dw + 1) / 2 : 0,
             dh > 0 ? (dh + 1) / 2 : 0},
            {0, 0, 0}, 0);
  }
  const int top = round_half_even((plan.height - op.height) / 2.0);
  const int left = round_half_even((plan.width - op.width) / 2.0);
  add_crop(plan, left, top, op.width, op.height);
}

// RandomIoUCrop: its draw looks at the boxes as the steps so far left them.
void random_iou_crop(GeometryPlan& plan, const OpSpec& op, int width, int height,
                     const std::vector<float>* boxes, SampleRandom& random) {
  if (!boxes)
    throw Error(ErrorKind::kInvalidArgument,
                "random_iou_crop needs bounding boxes (torchvision's RandomIoUCrop requires them)");
  std::vector<float> moved = *boxes;
  for (const GeometryStep& step : plan.steps)
    move_boxes(step, width, height, moved.data(), moved.size() / 4);
  const std::optional<IoUCrop> crop = iou_crop(op, plan.width, plan.height, moved, random);
  if (!crop) return;
  GeometryStep step{GeometryStep::kCrop};
  step.x = crop->x;
  step.y = crop->y;
  step.width = crop->width;
  step.height = crop->height;
  step.zero_boxes_outside = true;
  plan.steps.push_back(step);
  plan.width = crop->width;
  plan.height = crop->height;
}

}  // namespace

GeometryPlan plan_geometry(const std::vector<OpSpec>& ops, int width, int height,
                           SampleRandom& random, const std::vector<float>* boxes) {
  GeometryPlan plan;
  plan.width = width;
  plan.height = height;
  for (const OpSpec& op : ops) {
    if (boxes && op.padding_mode != PaddingMode::kConstant)
      throw Error(ErrorKind::kInvalidArgument,
                  "a padding_mode other than constant is not supported with bounding boxes "
                  "(torchvision refuses it too)");
    switch (op.kind) {
      case OpKind::kResize: {
        const auto [w, h] = resized_size(op, plan.width, plan.height);
        add_resize(plan, w, h, op);
        break;
      }
      case OpKind::kRandomResizedCrop:
        random_resized_crop(plan, op, random);
        break;
      case OpKind::kRandomCrop:
        random_crop(plan, op, random);
        break;
      case OpKind::kCenterCrop:
        center_crop(plan, op);
        break;
      case OpKind::kPad:
        add_pad(plan, op.padding, op.fill, op.mask_fill, op.padding_mode);
        break;
      case OpKind::kPadIfSmaller:  // pad_if_smaller of torchvision's segmentation references
        add_pad(plan,
                {0, 0, std::max(op.width - plan.width, 0), std::max(op.height - plan.height, 0)},
                op.fill, op.mask_fill);
        break;
      case OpKind::kHorizontalFlip:
        if (random.uniform() < op.p) plan.steps.push_back(GeometryStep{GeometryStep::kFlip});
        break;
      case OpKind::kVerticalFlip:
        if (random.uniform() < op.p)
          plan.steps.push_back(GeometryStep{GeometryStep::kVerticalFlip});
        break;
      case OpKind::kRandomResize: {
        const auto [w, h] = random_resize_size(op, plan.width, plan.height, random);
        add_resize(plan, w, h, op);
        break;
      }
      case OpKind::kRandomShortestSize: {
        const auto [w, h] = random_shortest_size(op, plan.width, plan.height, random);
        add_resize(plan, w, h, op);
        break;
      }
      case OpKind::kScaleJitter: {
        const auto [w, h] = scale_jitter_size(op, plan.width, plan.height, random);
        add_resize(plan, w, h, op);
        break;
      }
      case OpKind::kRandomZoomOut:
        if (const auto padding = zoom_out_padding(op, plan.width, plan.height, random))
          add_pad(plan, *padding, op.fill, op.mask_fill);
        break;
      case OpKind::kRandomIoUCrop:
        random_iou_crop(plan, op, width, height, boxes, random);
        break;
      default:  // value, photometric and box ops: not geometric
        break;
    }
  }
  return plan;
}

int padded_source(int i, int size, PaddingMode mode) {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case PaddingMode::kEdge:
      return i < 0 ? 0 : size - 1;
    case PaddingMode::kReflect:
      return i < 0 ? -i : 2 * (size - 1) - i;
    case PaddingMode::kSymmetric:
      return i < 0 ? -i - 1 : 2 * size - 1 - i;
    case PaddingMode::kConstant:
      break;
  }
  throw Error(ErrorKind::kRuntime, "internal: padded_source for constant padding");
}

SourceRegion source_region(const GeometryPlan& plan, int width, int height) {
  bool flipped = false;
  for (const GeometryStep& step : plan.steps) {
    if (step.kind == GeometryStep::kFlip) {
      flipped = !flipped;
    } else if (step.kind == GeometryStep::kCrop) {
      return {flipped ? width - step.x - step.width : step.x, step.y, step.width, step.height};
    } else {
      break;
    }
  }
  return {0, 0, width, height};
}

ResizeWindow find_resize_window(const GeometryPlan& plan, size_t resize_step, bool input_flipped) {
  ResizeWindow window;
  const GeometryStep& resize = plan.steps[resize_step];
  size_t next = resize_step + 1;
  for (; next < plan.steps.size() && plan.steps[next].kind == GeometryStep::kFlip; ++next)
    window.flipped_after = !window.flipped_after;
  if (next == plan.steps.size() || plan.steps[next].kind != GeometryStep::kCrop) return window;
  const GeometryStep& crop = plan.steps[next];
  if (crop.width == resize.width && crop.height == resize.height) return window;  // x, y are 0
  // The crop's columns in the resize's output as laid out, then in its input's orientation.
  const int x = window.flipped_after ? resize.width - crop.x - crop.width : crop.x;
  window.windowed = true;
  window.crop_step = next;
  window.x = input_flipped ? resize.width - x - crop.width : x;
  window.y = crop.y;
  window.width = crop.width;
  window.height = crop.height;
  return window;
}

int choose_dct_scale(const GeometryPlan& plan, int width, int height) {
  int region_width = width, region_height = height;
  for (const GeometryStep& step : plan.steps) {
    if (step.kind == GeometryStep::kCrop) {
      region_width = step.width;
      region_height = step.height;
    } else if (step.kind == GeometryStep::kResize) {
      // Plain bilinear/bicubic and nearest sample full-resolution pixels.
      if (!step.antialias || step.interpolation == Interpolation::kNearest ||
          step.interpolation == Interpolation::kNearestExact)
        return 1;
      int scale = 8;
      while (scale > 1 &&
             (region_width < 2 * step.width * scale || region_height < 2 * step.height * scale))
        scale /= 2;
      return scale;
    } else if (step.kind == GeometryStep::kPad || step.kind == GeometryStep::kVerticalFlip) {
      return 1;  // both materialise the view at full resolution first
    }
  }
  return 1;
}

}  // namespace conveyor
