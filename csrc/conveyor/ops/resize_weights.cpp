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

void compute_axis_weights(AxisWeights& result, int in_size, double region_start,
                          double region_length, int out_size, bool antialias) {
  const AxisWeights::Key key{in_size, out_size, region_start, region_length, antialias};
  if (result.key == key) {
    if (result.reversed) result.reverse();
    return;
  }
  result.key = AxisWeights::Key{};  // invalid until complete (an exception leaves it so)
  result.reversed = false;
  const double scale = region_length / out_size;
  const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
  const double support = 1.0 * filter_scale;  // bilinear filter support is 1
  const int window = static_cast<int>(std::ceil(support)) * 2 + 1;
  // First pass: each output's normalised window, trimmed of zero weights at both ends (an
  // upscale then needs 2 taps, not 3).
  std::vector<int> starts(out_size), counts(out_size);
  std::vector<double> normalized(static_cast<size_t>(out_size) * window, 0.0);
  std::vector<double> kernel(static_cast<size_t>(window));
  double max_weight = 0.0;
  int taps = 1;
  // Windows stay inside the region, as when torch resizes the cropped tensor. Coordinates
  // are relative to the region's first whole pixel (fractional starts come from DCT scaling).
  const int offset = static_cast<int>(std::floor(region_start));
  const int limit =
      std::min(static_cast<int>(std::ceil(region_start + region_length - 1e-9)), in_size) - offset;
  const double phase = region_start - offset;
  for (int x = 0; x < out_size; ++x) {
    const double center = phase + (x + 0.5) * scale;
    const double inv = 1.0 / filter_scale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);  // truncation as in PIL
    const int count = std::max(
        std::min(std::min(static_cast<int>(center + support + 0.5), limit) - xmin, window), 1);
    double total = 0.0;
    for (int k = 0; k < count; ++k) {
      const double t = std::abs((k + xmin - center + 0.5) * inv);
      kernel[k] = t < 1.0 ? 1.0 - t : 0.0;
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
  taps += taps & 1;  // pairs of taps feed one madd
  // torch's choice of precision: the largest that keeps every weight within int16.
  int precision = 0;
  for (precision = 0; precision < 22; ++precision)
    if (static_cast<int>(0.5 + max_weight * (1 << (precision + 1))) >= (1 << 15)) break;
  result.out_size = out_size;
  result.taps = taps;
  result.precision = precision;
  result.first.resize(out_size);
  result.weights.assign(static_cast<size_t>(out_size) * taps, 0);
  for (int x = 0; x < out_size; ++x) {
    // Shift the window inwards so that `taps` inputs are always readable.
    const int shift = std::max(0, std::min(starts[x] + taps - in_size, starts[x]));
    result.first[x] = starts[x] - shift;
    for (int k = 0; k < counts[x]; ++k) {
      const double w = normalized[size_t(x) * window + k] * (1 << precision);
      result.weights[size_t(x) * taps + k + shift] =
          static_cast<int16_t>(w < 0 ? -0.5 + w : 0.5 + w);
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
