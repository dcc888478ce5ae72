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
#include "conveyor/ops/photometric_spec.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {

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
