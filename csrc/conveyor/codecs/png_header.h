// What a PNG's IHDR (and the presence of tRNS) says about the image.
#pragma once

namespace conveyor::codecs {

enum class PngColorType { kGray = 0, kRgb = 2, kPalette = 3, kGrayAlpha = 4, kRgbAlpha = 6 };

struct PngHeader {
  int width = 0;
  int height = 0;
  int bit_depth = 8;  // 1, 2, 4, 8 or 16
  PngColorType color_type = PngColorType::kRgb;
  bool interlaced = false;
  bool has_transparency = false;  // a tRNS chunk is present
};

}  // namespace conveyor::codecs
