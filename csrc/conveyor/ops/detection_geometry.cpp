#include "conveyor/ops/detection_geometry.h"

#include <algorithm>
#include <string>

#include "conveyor/core/error.h"

namespace conveyor {

std::pair<int, int> random_resize_size(const OpSpec& op, int width, int height,
                                       SampleRandom& random) {
  // torch.randint(min_size, max_size), then F.resize(size=[s]): the shorter side becomes s.
  const int size = static_cast<int>(random.uniform_int(op.min_size, op.max_size));
  const bool portrait = width <= height;
  const int short_side = portrait ? width : height, long_side = portrait ? height : width;
  const int new_long = static_cast<int>(static_cast<double>(size) * long_side / short_side);
  return portrait ? std::pair<int, int>{size, new_long} : std::pair<int, int>{new_long, size};
}

std::pair<int, int> random_shortest_size(const OpSpec& op, int width, int height,
                                         SampleRandom& random) {
  const int min_size =
      op.sizes[static_cast<size_t>(random.uniform_int(0, static_cast<int64_t>(op.sizes.size())))];
  double r = static_cast<double>(min_size) / std::min(height, width);  // Python floats
  if (op.max_size != 0) r = std::min(r, static_cast<double>(op.max_size) / std::max(height, width));
  return {static_cast<int>(width * r), static_cast<int>(height * r)};
}

std::pair<int, int> scale_jitter_size(const OpSpec& op, int width, int height,
                                      SampleRandom& random) {
  // float32 tensor arithmetic: scale = lo + rand(1) * (hi - lo); r = min(...) * scale
  const float scale =
      static_cast<float>(op.scale_range[0]) +
      uniform_float(random) * static_cast<float>(op.scale_range[1] - op.scale_range[0]);
  const double fit =
      std::min(static_cast<double>(op.width) / height, static_cast<double>(op.height) / width);
  const float r = static_cast<float>(fit) * scale;
  return {static_cast<int>(static_cast<float>(width) * r),
          static_cast<int>(static_cast<float>(height) * r)};
}

std::optional<std::array<int, 4>> zoom_out_padding(const OpSpec& op, int width, int height,
                                                   SampleRandom& random) {
  if (!(uniform_float(random) < static_cast<float>(op.p))) return std::nullopt;  // rand >= p
  const float r = static_cast<float>(op.side_range[0]) +
                  uniform_float(random) * static_cast<float>(op.side_range[1] - op.side_range[0]);
  const int canvas_width = static_cast<int>(static_cast<float>(width) * r);
  const int canvas_height = static_cast<int>(static_cast<float>(height) * r);
  const float rx = uniform_float(random), ry = uniform_float(random);
  const int left = static_cast<int>(static_cast<float>(canvas_width - width) * rx);
  const int top = static_cast<int>(static_cast<float>(canvas_height - height) * ry);
  return std::array<int, 4>{left, top, canvas_width - (left + width),
                            canvas_height - (top + height)};
}

bool centre_within(const float* box, int x, int y, int width, int height) {
  const float cx = 0.5f * (box[0] + box[2]), cy = 0.5f * (box[1] + box[3]);
  return x < cx && cx < x + width && y < cy && cy < y + height;
}

std::optional<IoUCrop> iou_crop(const OpSpec& op, int width, int height,
                                const std::vector<float>& boxes, SampleRandom& random) {
  const size_t count = boxes.size() / 4;
  const int64_t options = static_cast<int64_t>(op.sampler_options.size());
  const bool can_keep = std::any_of(op.sampler_options.begin(), op.sampler_options.end(),
                                    [](double option) { return option >= 1.0; });
  // torchvision's RandomIoUCrop loops until a round succeeds, forever if none can (a data
  // loader that hangs). The engine stops after kMaxRounds rounds (each of `trials` tries) and
  // reports the sample instead. With an option >= 1 (torchvision's default options have 1.0,
  // 1 in 7) some round keeps the sample long before: (6/7)^1000 < 1e-66, so the cap never
  // changes a draw; without one it only ends samples where a satisfying crop is missing or
  // rarer than about 1 in kMaxRounds * trials tries. A sample without boxes can never be
  // cropped: without an option >= 1 it fails at once.
  constexpr int kMaxRounds = 1000;
  if (count == 0 && !can_keep)
    throw Error(ErrorKind::kInvalidArgument,
                "random_iou_crop: the sample has no boxes and no sampler option >= 1, so no crop "
                "can ever be chosen (torchvision would loop forever)");
  for (int round = 0; round < kMaxRounds; ++round) {
    const double min_iou = op.sampler_options[static_cast<size_t>(random.uniform_int(0, options))];
    if (min_iou >= 1.0) return std::nullopt;
    for (int trial = 0; trial < op.trials; ++trial) {
      const float span = static_cast<float>(op.crop_scale[1] - op.crop_scale[0]);
      const float lo = static_cast<float>(op.crop_scale[0]);
      const float r0 = lo + span * uniform_float(random), r1 = lo + span * uniform_float(random);
      const int new_w = static_cast<int>(static_cast<float>(width) * r0);
      const int new_h = static_cast<int>(static_cast<float>(height) * r1);
      if (new_h == 0) continue;  // torchvision divides by zero here; no crop can come of it
      const double aspect = static_cast<double>(new_w) / new_h;
      if (!(op.crop_aspect[0] <= aspect && aspect <= op.crop_aspect[1])) continue;
      const float q0 = uniform_float(random), q1 = uniform_float(random);
      const int left = static_cast<int>(static_cast<float>(width - new_w) * q0);
      const int top = static_cast<int>(static_cast<float>(height - new_h) * q1);
      if (new_w == 0) continue;  // left == right
      const float crop_area = static_cast<float>(new_w) * static_cast<float>(new_h);
      bool any_within = false;
      float best = 0;
      for (size_t i = 0; i < count; ++i) {
        const float* box = &boxes[4 * i];
        if (!centre_within(box, left, top, new_w, new_h)) continue;
        any_within = true;
        // torchvision.ops.box_iou in float32
        const float area = (box[2] - box[0]) * (box[3] - box[1]);
        const float iw =
            std::max(0.0f, std::min(box[2], float(left + new_w)) - std::max(box[0], float(left)));
        const float ih =
            std::max(0.0f, std::min(box[3], float(top + new_h)) - std::max(box[1], float(top)));
        const float inter = iw * ih;
        best = std::max(best, inter / (area + crop_area - inter));
      }
      if (!any_within || best < static_cast<float>(min_iou)) continue;  // float32 compare
      return IoUCrop{left, top, new_w, new_h};
    }
  }
  throw Error(ErrorKind::kInvalidArgument,
              "random_iou_crop found no crop in " + std::to_string(kMaxRounds) + " rounds of " +
                  std::to_string(op.trials) + " trials for " + std::to_string(count) +
                  " boxes (no crop reaches the drawn minimum IoU; torchvision would loop "
                  "forever): add 1.0 to sampler_options to keep such samples unchanged");
}

}  // namespace conveyor
