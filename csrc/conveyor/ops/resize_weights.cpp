#include "conveyor/ops/resize_weights.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "conveyor/core/error.h"

namespace conveyor {

void AxisWeights::reverse() {
  reversed = !reversed;
  for (int a = 0, b = out_size - 1; a < b; ++a, --b) {
    std::swap(first[a], first[b]);
    std::swap_ranges(&weights[size_t(a) * taps], &weights[size_t(a) * taps] + taps,
                     &weights[size_t(b) * taps]);
  }
}

namespace {

// torch's cubic_convolution1/2 (Keys' cubic), evaluated as torch does.
double cubic(double x, double a) {
  x = std::abs(x);
  if (x < 1.0) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

bool is_nearest(Interpolation interpolation) {
  return interpolation == Interpolation::kNearest || interpolation == Interpolation::kNearestExact;
}

}  // namespace

int nearest_source_index(int i, int in_size, int out_size, bool exact) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  if (exact) {  // (i + 0.5) is a double in torch, the product rounded to float by floorf
    const double position = (i + 0.5) * static_cast<double>(scale);
    return std::min(static_cast<int>(std::floor(static_cast<float>(position))), in_size - 1);
  }
  if (out_size == in_size) return i;
  if (out_size == 2 * in_size) return i >> 1;
  return std::min(static_cast<int>(std::floor(static_cast<float>(i) * scale)), in_size - 1);
}

void compute_axis_weights(AxisWeights& result, int in_size, double region_start,
                          double region_length, int out_size, bool antialias,
                          Interpolation interpolation) {
  const bool nearest = is_nearest(interpolation);
  if (nearest) antialias = false;  // torchvision: antialias only applies to bilinear/bicubic
  const AxisWeights::Key key{in_size,       out_size,  region_start,
                             region_length, antialias, interpolation};
  if (result.key == key) {
    if (result.reversed) result.reverse();
    return;
  }
  result.key = AxisWeights::Key{};  // invalid until complete (an exception leaves it so)
  result.reversed = false;
  const double scale = region_length / out_size;
  // Windows stay inside the region, as when torch resizes the cropped tensor. Coordinates
  // are relative to the region's first whole pixel (fractional starts come from DCT scaling).
  const int offset = static_cast<int>(std::floor(region_start));
  const int limit =
      std::min(static_cast<int>(std::ceil(region_start + region_length - 1e-9)), in_size) - offset;
  std::vector<int> starts(out_size), counts(out_size);
  std::vector<double> normalized;
  int window = 1;
  double max_weight = 1.0;
  int taps = 1;
  if (nearest) {
    if (region_start != offset || limit != region_length)
      throw Error(ErrorKind::kRuntime, "internal: a nearest resize of a fractional region");
    normalized.assign(static_cast<size_t>(out_size), 1.0);
    for (int x = 0; x < out_size; ++x) {
      starts[x] = offset + nearest_source_index(x, limit, out_size,
                                                interpolation == Interpolation::kNearestExact);
      counts[x] = 1;
    }
  } else {
    // torch's _compute_index_ranges_weights (PIL's ImagingResample): the filter's support is
    // interp_size / 2 (1 for the triangle, 2 for the cubic), widened by the downscale factor
    // when antialiasing; the window holds ceil(support) * 2 + 1 taps then, interp_size without
    // antialias; windows cut by the borders are renormalised.
    const bool bicubic = interpolation == Interpolation::kBicubic;
    const double half = bicubic ? 2.0 : 1.0;
    const double a = antialias ? -0.5 : -0.75;  // PIL's cubic with antialias, OpenCV's without
    const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
    const double support = half * filter_scale;
    window = antialias ? static_cast<int>(std::ceil(support)) * 2 + 1 : static_cast<int>(2 * half);
    // First pass: each output's normalised window, trimmed of zero weights at both ends (an
    // upscale then needs 2 taps, not 3).
    normalized.assign(static_cast<size_t>(out_size) * window, 0.0);
    std::vector<double> kernel(static_cast<size_t>(window));
    max_weight = 0.0;
    const double phase = region_start - offset;
    const double inv = 1.0 / filter_scale;
    for (int x = 0; x < out_size; ++x) {
      if (!antialias) {
        // torch's _compute_indices_min_size_weights (its uint8 path without antialias gives
        // the float path's result): interp_size taps around the align_corners=False source
        // position, borders replicated (taps outside the region add their weight to its
        // first or last pixel), not renormalised. Its precision comes from the largest
        // weight seen while accumulating, partial sums included.
        double real = scale * (x + 0.5) - 0.5;  // relative to the region
        if (!bicubic && real < 0) real = 0;     // area_pixel_compute_source_index
        const int index = std::min(static_cast<int>(std::floor(static_cast<float>(real))),
                                   limit - 1);  // guard_index_and_lambda (floorf)
        const double lambda = std::min(std::max(real - index, 0.0), 1.0);
        const int half_taps = static_cast<int>(half);
        const int unbound_min = index - half_taps + 1;
        const int lo = std::max(unbound_min, 0);
        const int count =
            std::min(std::max(std::min(index + half_taps + 1, limit) - lo, 0), window);
        double* w = &normalized[size_t(x) * window];
        int at = 0;
        for (int j = 0; j < window; ++j) {
          const double t = static_cast<double>(j + 1 - half_taps) - lambda;
          if (unbound_min + j <= 0)
            at = 0;
          else if (unbound_min + j >= limit - 1)
            at = count - 1;
          w[at] += bicubic ? cubic(t, a) : triangle(t);
          max_weight = std::max(max_weight, w[at]);
          ++at;
        }
        starts[x] = offset + lo;  // (no DCT scaling without antialias: phase is 0)
        counts[x] = count;
        taps = std::max(taps, count);
        continue;
      }
      const double center = phase + (x + 0.5) * scale;
      const int xmin =
          std::max(static_cast<int>(center - support + 0.5), 0);  // truncation as in PIL
      const int count = std::max(
          std::min(std::min(static_cast<int>(center + support + 0.5), limit) - xmin, window), 1);
      double total = 0.0;
      for (int k = 0; k < count; ++k) {
        const double t = (k + xmin - center + 0.5) * inv;
        kernel[k] = bicubic ? cubic(t, a) : triangle(t);
        total += kernel[k];
      }
      int lo = 0, hi = count;
      if (total == 0.0) {
        kernel[0] = 1.0;
        total = 1.0;
        hi = 1;
      }
      while (lo < hi - 1 && kernel[lo] == 0.0) ++lo;
      while (hi - 1 > lo && kernel[hi - 1] == 0.0) --hi;
      starts[x] = offset + xmin + lo;
      counts[x] = hi - lo;
      taps = std::max(taps, hi - lo);
      for (int k = lo; k < hi; ++k) {
        const double w = kernel[k] / total;
        normalized[size_t(x) * window + (k - lo)] = w;
        max_weight = std::max(max_weight, w);
      }
    }
  }
  taps += taps & 1;  // pairs of taps feed one madd
  // torch's choice of precision: the largest that keeps every weight within int16.
  int precision = 0;
  for (precision = 0; precision < 22; ++precision)
    if (static_cast<int>(0.5 + max_weight * (1 << (precision + 1))) >= (1 << 15)) break;
  result.out_size = out_size;
  result.taps = taps;
  result.precision = precision;
  result.negative = false;
  result.first.resize(out_size);
  result.weights.assign(static_cast<size_t>(out_size) * taps, 0);
  for (int x = 0; x < out_size; ++x) {
    // Shift the window inwards so that `taps` inputs are always readable.
    const int shift = std::max(0, std::min(starts[x] + taps - in_size, starts[x]));
    result.first[x] = starts[x] - shift;
    for (int k = 0; k < counts[x]; ++k) {
      const double w = normalized[size_t(x) * window + k] * (1 << precision);
      const int16_t q = static_cast<int16_t>(w < 0 ? -0.5 + w : 0.5 + w);
      result.weights[size_t(x) * taps + k + shift] = q;
      result.negative = result.negative || q < 0;
    }
  }
  result.key = key;
}

void window_axis_weights(AxisWeights& result, const AxisWeights& full, int begin, int count,
                         bool reverse, int origin, int in_size) {
  const int taps = full.taps;
  result.key = AxisWeights::Key{};  // not compute_axis_weights' own result: never reused as one
  result.reversed = false;
  result.out_size = count;
  result.taps = taps;
  result.precision = full.precision;
  result.negative = full.negative;
  result.first.resize(static_cast<size_t>(count));
  result.weights.assign(static_cast<size_t>(count) * taps, 0);
  const int last_first = std::max(0, in_size - taps);
  for (int x = 0; x < count; ++x) {
    const int source = begin + (reverse ? count - 1 - x : x);
    const int first = full.first[static_cast<size_t>(source)] - origin;
    const int placed = std::min(std::max(first, 0), last_first);
    const int16_t* weights = &full.weights[static_cast<size_t>(source) * taps];
    for (int k = 0; k < taps; ++k) {
      if (weights[k] == 0) continue;
      const int at = first + k - placed;
      if (first + k < 0 || first + k >= in_size || at < 0 || at >= taps)
        throw Error(ErrorKind::kRuntime, "internal: a windowed resize reads input " +
                                             std::to_string(first + k + origin) +
                                             ", outside the decoded [" + std::to_string(origin) +
                                             ", " + std::to_string(origin + in_size) + ")");
      result.weights[static_cast<size_t>(x) * taps + at] = weights[k];
    }
    result.first[static_cast<size_t>(x)] = placed;
  }
}

}  // namespace conveyor
