// torchvision v2's bounding-box kernels on float boxes (4 per box): format conversion
// (ConvertBoundingBoxFormat), clamping to the canvas (ClampBoundingBoxes) and the validity
// mask of SanitizeBoundingBoxes, with the per-row filtering of the arrays that follow the
// boxes (labels, difficult flags).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace conveyor {

enum class BoxFormat { kXYXY, kXYWH, kCXCYWH };

const char* box_format_name(BoxFormat format);
// "XYXY", "XYWH" or "CXCYWH" (any case); throws Error(kInvalidArgument) otherwise.
BoxFormat parse_box_format(const std::string& name);

// In place, with torchvision's float32 operation order.
void convert_box_format(float* boxes, size_t count, BoxFormat from, BoxFormat to);

// Clamps x to [0, width] and y to [0, height] (through XYXY for the other formats).
void clamp_boxes(float* boxes, size_t count, BoxFormat format, int height, int width);

// SanitizeBoundingBoxes' rule: a box is kept when its XYXY width and height are >= min_size,
// its area >= min_area, all coordinates >= 0 and x <= width, y <= height. min_size and
// min_area must be >= 1 (as torchvision requires), else Error(kInvalidArgument).
std::vector<uint8_t> sanitize_mask(const float* boxes, size_t count, BoxFormat format, int height,
                                   int width, float min_size, float min_area);

// Keeps the rows of `values` (`row_size` entries per box) whose `keep` flag is set, in order;
// returns the number of rows kept. `values.size()` must be keep.size() * row_size.
template <typename T>
size_t keep_rows(std::vector<T>& values, const std::vector<uint8_t>& keep, size_t row_size) {
  size_t kept = 0;
  for (size_t i = 0; i < keep.size(); ++i) {
    if (!keep[i]) continue;
    for (size_t k = 0; k < row_size; ++k) values[kept * row_size + k] = values[i * row_size + k];
    ++kept;
  }
  values.resize(kept * row_size);
  return kept;
}

}  // namespace conveyor
