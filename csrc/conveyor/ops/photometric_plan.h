// The photometric transforms (torchvision v2 classes) and the concrete kernel calls they make
// for one sample: random parameters are drawn from the sample's generator with the
// distributions of each class's make_params (ColorJitter, RandomPhotometricDistort,
// RandomGrayscale, GaussianBlur, RandomAutocontrast, RandomEqualize, RandomChannelPermutation,
// RandomErasing), so a sample's augmentation depends only on (seed, epoch, index).
#pragma once

#include <array>
#include <optional>
#include <vector>

#include "conveyor/ops/photometric.h"
#include "conveyor/sampling/sample_random.h"

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

// One kernel call with its parameters.
struct PhotometricStep {
  enum Kind {
    kBrightness,
    kContrast,
    kSaturation,
    kHue,
    kGrayscale,
    kBlur,
    kAutocontrast,
    kEqualize,
    kPermute
  } kind = kBrightness;
  double factor = 1;  // a float32 draw, as torch's uniform_ gives
  std::array<int, 3> permutation{0, 1, 2};
  std::array<int, 2> kernel_size{3, 3};
  std::array<float, 2> sigma{1, 1};
};

// A uniformly random permutation of 0..n-1 (torch.randperm's distribution).
std::vector<int> random_permutation(int n, SampleRandom& random);

// Draws `spec`'s parameters for one sample and appends the kernel calls it makes, in order.
void plan_photometric(const PhotometricSpec& spec, SampleRandom& random,
                      std::vector<PhotometricStep>& steps);

void run_photometric(const std::vector<PhotometricStep>& steps, PlanarImage& image,
                     BlurScratch& scratch);

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

struct ErasingParams {
  bool apply = false;
  int top = 0, left = 0, height = 0, width = 0;
  bool per_pixel = false;
  std::vector<float> values;  // 3, or 3 * height * width with per_pixel
};

// make_params of RandomErasing for a 3-channel image of `image_height` x `image_width`: up to
// 10 trials of (area fraction, log-uniform aspect ratio); no erase when all fail.
ErasingParams plan_erasing(const ErasingSpec& spec, int image_height, int image_width,
                           SampleRandom& random);

}  // namespace conveyor
