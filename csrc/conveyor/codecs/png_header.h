// What a PNG's IHDR (and the presence of tRNS) says about the image, and the PNG signature.
#pragma once

#include <cstdint>

namespace conveyor::codecs {

inline constexpr std::uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

enum class PngColorType { kGray = 0, kRgb = 2, kPalette = 3, kGrayAlpha = 4, kRgbAlpha = 6 };

struct PngHeader {
  int width = 0;
  int height = 0;
  int bit_depth = 8;  // 1, 2, 4, 8 or 16
  PngColorType color_type = PngColorType::kRgb;
  bool interlaced = false;
  bool has_transparency = false;  // a tRNS chunk is present
};

// Samples per pixel as stored (a palette index is one); 0 for a colour type PNG does not define.
inline int stored_channels(PngColorType type) {
  switch (type) {
    case PngColorType::kGray:
    case PngColorType::kPalette:
      return 1;
    case PngColorType::kGrayAlpha:
      return 2;
    case PngColorType::kRgb:
      return 3;
    case PngColorType::kRgbAlpha:
      return 4;
  }
  return 0;
}

}  // namespace conveyor::codecs
