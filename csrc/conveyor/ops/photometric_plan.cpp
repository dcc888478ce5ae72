#include "conveyor/ops/photometric_plan.h"

#include <cmath>
#include <string>

#include "conveyor/core/error.h"

namespace conveyor {
namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, message);
}

void check_range(const std::optional<std::array<float, 2>>& range, const char* name, float low,
                 float high) {
  if (!range) return;
  const auto [a, b] = *range;
  if (!(low <= a && a <= b && b <= high))
    invalid(std::string(name) + " range must satisfy " + std::to_string(low) +
            " <= min <= max <= " + std::to_string(high) + ", got (" + std::to_string(a) + ", " +
            std::to_string(b) + ")");
}

// ColorJitter._generate_value: torch.empty(1).uniform_(a, b), a float32 value.
float uniform_factor(const std::array<float, 2>& range, SampleRandom& random) {
  return static_cast<float>(random.uniform(range[0], range[1]));
}

PhotometricStep factor_step(PhotometricStep::Kind kind, double factor) {
  PhotometricStep step;
  step.kind = kind;
  step.factor = factor;
  return step;
}

PhotometricStep permute_step(SampleRandom& random) {
  const std::vector<int> order = random_permutation(3, random);
  PhotometricStep step;
  step.kind = PhotometricStep::kPermute;
  step.permutation = {order[0], order[1], order[2]};
  return step;
}

// Standard normal (Box-Muller on two 53-bit uniforms; 1 - u keeps the logarithm finite).
float standard_normal(SampleRandom& random) {
  const double u1 = 1.0 - random.uniform(), u2 = random.uniform();
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
}

}  // namespace

void PhotometricSpec::validate() const {
  check_range(brightness, "brightness", 0.0f, INFINITY);
  check_range(contrast, "contrast", 0.0f, INFINITY);
  check_range(saturation, "saturation", 0.0f, INFINITY);
  check_range(hue, "hue", -0.5f, 0.5f);
  if (!(p >= 0 && p <= 1)) invalid("p must be in [0, 1], got " + std::to_string(p));
  if (kind == kGaussianBlur) {
    for (int k : kernel_size)
      if (k <= 0 || k % 2 == 0)
        invalid("GaussianBlur kernel_size must be odd and positive, got " + std::to_string(k));
    if (!(0 < sigma[0] && sigma[0] <= sigma[1]))
      invalid("GaussianBlur sigma must satisfy 0 < min <= max, got (" + std::to_string(sigma[0]) +
              ", " + std::to_string(sigma[1]) + ")");
  }
}

std::vector<int> random_permutation(int n, SampleRandom& random) {
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int i = n - 1; i > 0; --i)  // Fisher-Yates
    std::swap(order[static_cast<size_t>(i)],
              order[static_cast<size_t>(random.uniform_int(0, i + 1))]);
  return order;
}

void plan_photometric(const PhotometricSpec& spec, SampleRandom& random,
                      std::vector<PhotometricStep>& steps) {
  using Step = PhotometricStep;
  switch (spec.kind) {
    case PhotometricSpec::kColorJitter: {
      // make_params: fn_idx = randperm(4), then the four factors in this order.
      const std::vector<int> order = random_permutation(4, random);
      std::array<std::optional<float>, 4> factors;
      const std::optional<std::array<float, 2>>* ranges[4] = {&spec.brightness, &spec.contrast,
                                                              &spec.saturation, &spec.hue};
      for (size_t i = 0; i < 4; ++i)
        if (*ranges[i]) factors[i] = uniform_factor(**ranges[i], random);
      const Step::Kind kinds[4] = {Step::kBrightness, Step::kContrast, Step::kSaturation,
                                   Step::kHue};
      for (int fn : order)
        if (factors[static_cast<size_t>(fn)])
          steps.push_back(factor_step(kinds[fn], *factors[static_cast<size_t>(fn)]));
      return;
    }
    case PhotometricSpec::kPhotometricDistort: {
      // make_params: each factor drawn with probability p, then contrast_before (p = 0.5), then
      // the channel permutation with probability p.
      std::array<std::optional<float>, 4> factors;
      const std::optional<std::array<float, 2>>* ranges[4] = {&spec.brightness, &spec.contrast,
                                                              &spec.saturation, &spec.hue};
      for (size_t i = 0; i < 4; ++i)
        if (random.bernoulli(spec.p) && *ranges[i])
          factors[i] = uniform_factor(**ranges[i], random);
      const bool contrast_before = random.bernoulli(0.5);
      const bool permute = random.bernoulli(spec.p);
      if (factors[0]) steps.push_back(factor_step(Step::kBrightness, *factors[0]));
      if (factors[1] && contrast_before) steps.push_back(factor_step(Step::kContrast, *factors[1]));
      if (factors[2]) steps.push_back(factor_step(Step::kSaturation, *factors[2]));
      if (factors[3]) steps.push_back(factor_step(Step::kHue, *factors[3]));
      if (factors[1] && !contrast_before)
        steps.push_back(factor_step(Step::kContrast, *factors[1]));
      if (permute) steps.push_back(permute_step(random));
      return;
    }
    case PhotometricSpec::kGrayscale:
      steps.push_back(factor_step(Step::kGrayscale, 0));
      return;
    case PhotometricSpec::kRandomGrayscale:
      if (random.bernoulli(spec.p)) steps.push_back(factor_step(Step::kGrayscale, 0));
      return;
    case PhotometricSpec::kGaussianBlur: {
      const float sigma = static_cast<float>(random.uniform(spec.sigma[0], spec.sigma[1]));
      Step step;
      step.kind = Step::kBlur;
      step.kernel_size = spec.kernel_size;
      step.sigma = {sigma, sigma};
      steps.push_back(step);
      return;
    }
    case PhotometricSpec::kRandomAutocontrast:
      if (random.bernoulli(spec.p)) steps.push_back(factor_step(Step::kAutocontrast, 0));
      return;
    case PhotometricSpec::kRandomEqualize:
      if (random.bernoulli(spec.p)) steps.push_back(factor_step(Step::kEqualize, 0));
      return;
    case PhotometricSpec::kRandomChannelPermutation:
      steps.push_back(permute_step(random));
      return;
  }
}

void run_photometric(const std::vector<PhotometricStep>& steps, PlanarImage& image,
                     BlurScratch& scratch) {
  for (const PhotometricStep& step : steps) {
    switch (step.kind) {
      case PhotometricStep::kBrightness:
        adjust_brightness(image, step.factor);
        break;
      case PhotometricStep::kContrast:
        adjust_contrast(image, step.factor);
        break;
      case PhotometricStep::kSaturation:
        adjust_saturation(image, step.factor);
        break;
      case PhotometricStep::kHue:
        adjust_hue(image, step.factor);
        break;
      case PhotometricStep::kGrayscale:
        rgb_to_grayscale(image);
        break;
      case PhotometricStep::kBlur:
        gaussian_blur(image, step.kernel_size, step.sigma, scratch);
        break;
      case PhotometricStep::kAutocontrast:
        autocontrast(image);
        break;
      case PhotometricStep::kEqualize:
        equalize(image);
        break;
      case PhotometricStep::kPermute:
        permute_channels(image, step.permutation);
        break;
    }
  }
}

void ErasingSpec::validate() const {
  if (!(p >= 0 && p <= 1)) invalid("RandomErasing p must be in [0, 1], got " + std::to_string(p));
  if (!(scale[0] >= 0 && scale[1] <= 1 && scale[0] <= scale[1]))
    invalid("RandomErasing scale must satisfy 0 <= min <= max <= 1");
  if (!(ratio[0] > 0 && ratio[0] <= ratio[1]))
    invalid("RandomErasing ratio must satisfy 0 < min <= max");
  if (!random_values && values.size() != 1 && values.size() != 3)
    invalid("RandomErasing value must be one number or one per channel (3), got " +
            std::to_string(values.size()));
}

ErasingParams plan_erasing(const ErasingSpec& spec, int image_height, int image_width,
                           SampleRandom& random) {
  ErasingParams params;
  if (!random.bernoulli(spec.p)) return params;  // _RandomApplyTransform: rand >= p skips
  const double area = static_cast<double>(image_height) * image_width;
  const double log_ratio[2] = {std::log(spec.ratio[0]), std::log(spec.ratio[1])};
  for (int trial = 0; trial < 10; ++trial) {
    const double erase_area =
        area * static_cast<float>(random.uniform(spec.scale[0], spec.scale[1]));
    const double aspect = std::exp(static_cast<float>(random.uniform(log_ratio[0], log_ratio[1])));
    // Python's round(): half to even.
    const int h = static_cast<int>(std::nearbyint(std::sqrt(erase_area * aspect)));
    const int w = static_cast<int>(std::nearbyint(std::sqrt(erase_area / aspect)));
    if (!(h < image_height && w < image_width)) continue;
    params.apply = true;
    params.height = h;
    params.width = w;
    if (spec.random_values) {
      params.per_pixel = true;
      params.values.resize(3 * static_cast<size_t>(h) * static_cast<size_t>(w));
      for (float& v : params.values) v = standard_normal(random);
    } else {
      params.values.assign(3, spec.values[0]);
      if (spec.values.size() == 3) params.values = spec.values;
    }
    params.top = static_cast<int>(random.uniform_int(0, image_height - h + 1));
    params.left = static_cast<int>(random.uniform_int(0, image_width - w + 1));
    return params;
  }
  return params;
}

}  // namespace conveyor
