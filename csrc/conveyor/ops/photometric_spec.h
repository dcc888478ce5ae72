// The settings of the photometric transform classes (ColorJitter, RandomPhotometricDistort,
// RandomGrayscale, GaussianBlur, RandomAutocontrast, RandomEqualize, RandomChannelPermutation,
// RandomErasing) as an OpSpec carries them; photometric_plan.h draws and runs them.
#pragma once

#include <array>
#include <optional>
#include <vector>

namespace conveyor {

struct PhotometricSpec {
  enum Kind {
    kColorJitter,
    kPhotometricDistort,
    kGrayscale,        // Grayscale(num_output_channels=3)
    kRandomGrayscale,  // with probability p
    kGaussianBlur,
    kRandomAutocontrast,
    kRandomEqualize,
    kRandomChannelPermutation
  } kind = kColorJitter;
  // ColorJitter / RandomPhotometricDistort factor ranges (min, max); nullopt: not applied.
  std::optional<std::array<float, 2>> brightness, contrast, saturation, hue;
  double p = 0.5;  // RandomPhotometricDistort: per distortion; Random*: of applying
  std::array<int, 2> kernel_size{3, 3};
  std::array<float, 2> sigma{0.1f, 2.0f};  // GaussianBlur's (min, max), one draw for both axes

  // Throws Error(kInvalidArgument) naming the setting torchvision would reject.
  void validate() const;
};

// RandomErasing(p, scale, ratio, value): value is `values` (1 or 3 numbers) or, with
// `random_values`, standard normal noise per pixel.
struct ErasingSpec {
  double p = 0.5;
  std::array<double, 2> scale{0.02, 0.33};
  std::array<double, 2> ratio{0.3, 3.3};
  bool random_values = false;
  std::vector<float> values{0.0f};
  void validate() const;
};

}  // namespace conveyor
