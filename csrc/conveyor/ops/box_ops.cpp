#include "conveyor/ops/box_ops.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "conveyor/core/error.h"

namespace conveyor {
namespace {

// torchvision converts through XYWH or XYXY with these float32 steps
// (transforms/v2/functional/_meta.py).
void xywh_to_xyxy(float* b) {
  b[2] += b[0];
  b[3] += b[1];
}
void xyxy_to_xywh(float* b) {
  b[2] -= b[0];
  b[3] -= b[1];
}
void cxcywh_to_xyxy(float* b) {
  const float half_w = b[2] / 2, half_h = b[3] / 2;
  b[0] -= half_w;
  b[1] -= half_h;
  b[2] += b[0];  // x1 + w
  b[3] += b[1];
}
void xyxy_to_cxcywh(float* b) {
  b[2] -= b[0];
  b[3] -= b[1];
  b[0] = (b[0] * 2 + b[2]) / 2;
  b[1] = (b[1] * 2 + b[3]) / 2;
}
void xywh_to_cxcywh(float* b) {
  b[0] += b[2] / 2;
  b[1] += b[3] / 2;
}
void cxcywh_to_xywh(float* b) {
  b[0] -= b[2] / 2;
  b[1] -= b[3] / 2;
}

void convert_one(float* b, BoxFormat from, BoxFormat to) {
  if (from == to) return;
  if (from == BoxFormat::kXYWH && to == BoxFormat::kCXCYWH) return xywh_to_cxcywh(b);
  if (from == BoxFormat::kCXCYWH && to == BoxFormat::kXYWH) return cxcywh_to_xywh(b);
  if (from == BoxFormat::kXYWH) xywh_to_xyxy(b);
  if (from == BoxFormat::kCXCYWH) cxcywh_to_xyxy(b);
  if (to == BoxFormat::kXYWH) xyxy_to_xywh(b);
  if (to == BoxFormat::kCXCYWH) xyxy_to_cxcywh(b);
}

}  // namespace

const char* box_format_name(BoxFormat format) {
  switch (format) {
    case BoxFormat::kXYXY:
      return "XYXY";
    case BoxFormat::kXYWH:
      return "XYWH";
    case BoxFormat::kCXCYWH:
      return "CXCYWH";
  }
  return "?";
}

BoxFormat parse_box_format(const std::string& name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "XYXY") return BoxFormat::kXYXY;
  if (upper == "XYWH") return BoxFormat::kXYWH;
  if (upper == "CXCYWH") return BoxFormat::kCXCYWH;
  throw Error(ErrorKind::kInvalidArgument,
              "unsupported bounding box format '" + name + "' (XYXY, XYWH or CXCYWH)");
}

void convert_box_format(float* boxes, size_t count, BoxFormat from, BoxFormat to) {
  for (size_t i = 0; i < count; ++i) convert_one(boxes + 4 * i, from, to);
}

void clamp_boxes(float* boxes, size_t count, BoxFormat format, int height, int width) {
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  for (size_t i = 0; i < count; ++i) {
    float* b = boxes + 4 * i;
    convert_one(b, format, BoxFormat::kXYXY);
    b[0] = std::min(std::max(b[0], 0.0f), w);
    b[2] = std::min(std::max(b[2], 0.0f), w);
    b[1] = std::min(std::max(b[1], 0.0f), h);
    b[3] = std::min(std::max(b[3], 0.0f), h);
    convert_one(b, BoxFormat::kXYXY, format);
  }
}

std::vector<uint8_t> sanitize_mask(const float* boxes, size_t count, BoxFormat format, int height,
                                   int width, float min_size, float min_area) {
  // SanitizeBoundingBoxes rejects these settings.
  if (!(min_size >= 1))
    throw Error(ErrorKind::kInvalidArgument,
                "SanitizeBoundingBoxes min_size must be >= 1, got " + std::to_string(min_size));
  if (!(min_area >= 1))
    throw Error(ErrorKind::kInvalidArgument,
                "SanitizeBoundingBoxes min_area must be >= 1, got " + std::to_string(min_area));
  std::vector<uint8_t> keep(count);
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  for (size_t i = 0; i < count; ++i) {
    float b[4] = {boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]};
    convert_one(b, format, BoxFormat::kXYXY);
    const float bw = b[2] - b[0], bh = b[3] - b[1];
    keep[i] = bw >= min_size && bh >= min_size && b[0] >= 0 && b[1] >= 0 && b[2] >= 0 &&
              b[3] >= 0 && bw * bh >= min_area && b[0] <= w && b[2] <= w && b[1] <= h && b[3] <= h;
  }
  return keep;
}

}  // namespace conveyor
