#include "conveyor/ops/resize_weights.h"

#include <algorithm>
#include <cmath>

namespace conveyor {

void AxisWeights::reverse() {
  for (int a = 0, b = out_size - 1; a < b; ++a, --b) {
    std::swap(first[a], first[b]);
    std::swap_ranges(&weights[size_t(a) * taps], &weights[size_t(a) * taps] + taps,
                     &weights[size_t(b) * taps]);
  }
}

void compute_axis_weights(AxisWeights& result, int in_size, double region_start,
                          double region_length, int out_size, bool antialias) {
  const double scale = region_length / out_size;
  const double filter_scale = antialias ? std::max(scale, 1.0) : 1.0;
  const double support = 1.0 * filter_scale;  // bilinear filter support is 1
  int taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps += taps & 1;                // pairs of taps feed one madd
  taps = std::min(taps, in_size + (in_size & 1));
  std::vector<double> kernel(static_cast<size_t>(taps) + 2);
  std::vector<int> starts(out_size);
  std::vector<double> normalized(static_cast<size_t>(out_size) * taps, 0.0);
  double max_weight = 0.0;
  for (int x = 0; x < out_size; ++x) {
    const double center = region_start + (x + 0.5) * scale;
    const double inv = 1.0 / filter_scale;
    int xmin = std::max(static_cast<int>(center - support + 0.5), 0);  // truncation as in PIL
    int count = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    count = std::max(std::min(count, taps), 1);
    double total = 0.0;
    for (int k = 0; k < count; ++k) {
      const double t = std::abs((k + xmin - center + 0.5) * inv);
      kernel[k] = t < 1.0 ? 1.0 - t : 0.0;
      total += kernel[k];
    }
    // Shift the window inwards so that `taps` inputs are always readable.
    int shift = 0;
    if (xmin + taps > in_size) shift = std::min(xmin + taps - in_size, xmin);
    starts[x] = xmin - shift;
    for (int k = 0; k < count; ++k) {
      const double w = total != 0.0 ? kernel[k] / total : (k == 0 ? 1.0 : 0.0);
      normalized[size_t(x) * taps + k + shift] = w;
      max_weight = std::max(max_weight, w);
    }
  }
  // torch's choice of precision: the largest that keeps every weight within int16.
  int precision = 0;
  for (precision = 0; precision < 22; ++precision)
    if (static_cast<int>(0.5 + max_weight * (1 << (precision + 1))) >= (1 << 15)) break;
  result.out_size = out_size;
  result.taps = taps;
  result.precision = precision;
  result.first.assign(starts.begin(), starts.end());
  result.weights.resize(normalized.size());
  for (size_t i = 0; i < normalized.size(); ++i) {
    const double w = normalized[i] * (1 << precision);
    result.weights[i] = static_cast<int16_t>(w < 0 ? -0.5 + w : 0.5 + w);
  }
}

}  // namespace conveyor
