// Format dispatch by magic bytes over the JPEG and PNG decoders. One ImageDecoder per thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "conveyor/codecs/jpeg.h"
#include "conveyor/codecs/png.h"
#include "conveyor/core/image.h"

namespace conveyor::codecs {

enum class ImageFormat { kUnknown, kJpeg, kPng };

// JPEG: FF D8 FF; PNG: the 8-byte signature. Anything else is kUnknown.
ImageFormat detect_image_format(const std::uint8_t* data, std::size_t size);

struct DecodeOptions {
  ColorMode mode = ColorMode::kUnchanged;
  ScalingFactor scale;           // JPEG only (PNG requires 1/1)
  CropRegion crop;               // JPEG only (PNG requires none)
  bool accept_warnings = false;  // JPEG only
  std::uint64_t max_pixels = kDefaultMaxPixels;
  bool fast = false;  // JPEG only: see JpegDecodeOptions::fast
};

class ImageDecoder {
 public:
  // Shape decode() will write. Throws kDecode for empty/unknown data (names the format it saw).
  ImageShape output_shape(const std::uint8_t* data, std::size_t size, const DecodeOptions& options);
  void decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
              const ImageView& out);
  // Convenience: allocates an owned Image of the right shape and decodes into it.
  Image decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options);

  JpegDecoder& jpeg() { return jpeg_; }
  PngDecoder& png() { return png_; }

 private:
  JpegDecoder jpeg_;
  PngDecoder png_;
};

}  // namespace conveyor::codecs
