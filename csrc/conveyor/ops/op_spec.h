// Op descriptors of a native pipeline (parsed from Python dicts by the binding) and their
// validation into a Pipeline: geometric ops in order, then one fused output conversion.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace conveyor {

enum class OpKind {
  kResize,
  kRandomResizedCrop,
  kRandomCrop,
  kCenterCrop,
  kPad,
  kHorizontalFlip,
  kToDtype,
  kNormalize
};

enum class DType { kUint8, kFloat32, kFloat16 };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

struct OpSpec {
  OpKind kind = OpKind::kResize;
  // resize / crops: {height, width}; `shorter_side` when resize got a single int.
  int height = 0, width = 0;
  bool shorter_side = false;
  int max_size = 0;  // resize with shorter_side: 0 = none
  bool antialias = true;
  std::array<double, 2> scale{0.08, 1.0};
  std::array<double, 2> ratio{3.0 / 4.0, 4.0 / 3.0};
  std::array<int, 4> padding{0, 0, 0, 0};  // left, top, right, bottom
  bool has_padding = false;
  bool pad_if_needed = false;
  std::array<uint8_t, 3> fill{0, 0, 0};
  double p = 0.5;
  DType dtype = DType::kFloat32;
  bool scale_values = false;
  std::array<float, 3> mean{0, 0, 0}, std{1, 1, 1};
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
};

// Throws Error(kInvalidArgument) naming the op index for an invalid or misplaced op.
Pipeline compile_pipeline(const std::vector<OpSpec>& ops);

}  // namespace conveyor
