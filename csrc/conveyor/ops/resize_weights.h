// Per-axis weights of the separable resize, as torch's uint8 kernels compute them (the ones
// torchvision's v2 resize uses for uint8 images on CPU): bilinear and bicubic are the filters
// of PIL's ImagingResample and torch's separable uint8 kernel (triangle / Keys cubic with
// a = -0.5, widened by the downscale factor when antialiasing; without antialias the plain
// align_corners=False taps, the cubic with a = -0.75), quantised to int16 like torch's uint8
// path. Nearest and nearest-exact are one tap of weight 1 at torch's upsample_nearest index,
// so every mode runs through the same separable kernels.
#pragma once

#include <cstdint>
#include <vector>

#include "conveyor/ops/op_spec.h"

namespace conveyor {

struct AxisWeights {
  int out_size = 0;
  int taps = 0;                  // weights per output (even, zero padded), same for every output
  int precision = 0;             // fixed-point bits: value = (sum + 2^(precision-1)) >> precision
  bool negative = false;         // some weight is negative (bicubic): sums need clamping
  std::vector<int32_t> first;    // first input index of each output's window
  std::vector<int16_t> weights;  // out_size * taps

  // Mirror the output order (a horizontal flip after the resize, folded into it).
  void reverse();

  // What the weights were computed for: compute_axis_weights() returns at once when asked
  // for the same again (every image of a dataset of one size, e.g. VOC to 512x512).
  struct Key {
    int in_size = -1, out_size = -1;
    double region_start = 0, region_length = 0;
    bool antialias = false;
    Interpolation interpolation = Interpolation::kBilinear;
    bool operator==(const Key& other) const {
      return in_size == other.in_size && out_size == other.out_size &&
             region_start == other.region_start && region_length == other.region_length &&
             antialias == other.antialias && interpolation == other.interpolation;
    }
  } key;
  bool reversed = false;
};

// Weights for resampling [region_start, region_start + region_length) of an axis of `in_size`
// pixels onto `out_size` pixels. Windows never reach past in_size: they are shifted inwards.
// Nearest modes need a whole-pixel region (no DCT scaling) and ignore `antialias`, as torch.
void compute_axis_weights(AxisWeights& weights, int in_size, double region_start,
                          double region_length, int out_size, bool antialias,
                          Interpolation interpolation = Interpolation::kBilinear);

// torch's upsample_nearest source index of output `i` (float32 arithmetic, as its CPU kernel):
// `exact` false is mode "nearest" (floor(i * scale), with its special cases for equal and
// doubled sizes), true is "nearest-exact" (floor((i + 0.5) * scale)); clamped to in_size - 1.
int nearest_source_index(int i, int in_size, int out_size, bool exact);

// Outputs [begin, begin + count) of `full` (in reverse order when `reverse`) for a source
// buffer holding pixels [origin, origin + in_size) of full's input axis: windows are moved
// into the buffer (only zero weights may fall off). Same precision and weight values as
// `full`, so the window resamples exactly as full then slicing. Throws Error(kRuntime) when
// a nonzero weight reads outside the buffer.
void window_axis_weights(AxisWeights& result, const AxisWeights& full, int begin, int count,
                         bool reverse, int origin, int in_size);

}  // namespace conveyor
