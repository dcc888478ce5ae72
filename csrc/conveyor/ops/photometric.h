// torchvision v2's colour kernels (transforms/v2/functional/_color.py, _misc.py, _augment.py)
// on planar uint8 RGB, in place, given their parameters. Each follows the reference's float32
// arithmetic step by step (same operation order, same scalar casts, truncating or rounding
// casts where it truncates or rounds) so that outputs equal torchvision's, at most one level
// apart where torch's own reductions (mean, conv2d) sum in a different order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/planar_image.h"

namespace conveyor {

// Factors are doubles, as the Python floats torchvision gets: a blend's second weight is
// 1 - factor computed in double before its cast to float32.
// F.adjust_brightness: pixel * factor, clamped, truncated. factor >= 0.
void adjust_brightness(PlanarImage& image, double factor);
// F.adjust_contrast: blend with the mean of the floored grayscale image. factor >= 0.
void adjust_contrast(PlanarImage& image, double factor);
// F.adjust_saturation: blend with the floored grayscale image. factor >= 0.
void adjust_saturation(PlanarImage& image, double factor);
// F.adjust_hue: RGB -> HSV (float32 in [0, 1]), hue shifted modulo 1, back to uint8 as
// to_dtype(scale=True) does (x * 255.999, truncated). hue in [-0.5, 0.5].
void adjust_hue(PlanarImage& image, double hue);
// F.rgb_to_grayscale(num_output_channels=3): the truncated luma in all three channels.
void rgb_to_grayscale(PlanarImage& image);
// F.autocontrast: each channel stretched from [min, max] to [0, 255].
void autocontrast(PlanarImage& image);
// F.equalize: each channel through PIL's histogram-equalisation lookup table.
void equalize(PlanarImage& image);
// F.permute_channels: output channel c is input channel permutation[c].
void permute_channels(PlanarImage& image, const std::array<int, 3>& permutation);

// F.gaussian_blur: odd kernel sizes (x, y), sigmas (x, y) > 0, reflect padding (each half
// kernel must be smaller than the image side, as torch's reflect pad requires), float32
// convolution, rounded half to even. `scratch` is the caller's, kept between calls.
struct BlurScratch {
  std::vector<float> rows, padded;
};
void gaussian_blur(PlanarImage& image, std::array<int, 2> kernel_size, std::array<float, 2> sigma,
                   BlurScratch& scratch);
// The 1-D kernel torchvision builds (linspace in float32, softmax of -(x / sigma)^2).
std::vector<float> gaussian_kernel1d(int size, float sigma);

// F.erase on a CHW output of `dtype` (after ToDtype/Normalize): the rectangle rows [top, top +
// height), columns [left, left + width) of each of the 3 channels gets `values`: 3 values (one
// per channel) or, with `per_pixel`, 3 * height * width values (channel-major), converted to
// `dtype` as a tensor assignment does (truncation for uint8, round to nearest for float16).
void erase(void* chw, DType dtype, int image_height, int image_width, int top, int left, int height,
           int width, const float* values, bool per_pixel);

}  // namespace conveyor
