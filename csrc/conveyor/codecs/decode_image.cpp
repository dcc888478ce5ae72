#include "conveyor/codecs/decode_image.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "conveyor/core/error.h"

namespace conveyor::codecs {
namespace {

[[noreturn]] void unknown_format(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size == 0) throw Error(ErrorKind::kDecode, "empty data (0 bytes)");
  std::string start;
  for (std::size_t i = 0; i < size && i < 4; ++i) {
    char hex[4];
    std::snprintf(hex, sizeof(hex), "%02X ", data[i]);
    start += hex;
  }
  start.pop_back();
  throw Error(ErrorKind::kDecode,
              "unsupported image format (not JPEG or PNG; data starts with " + start + ")");
}

JpegDecodeOptions jpeg_options(const DecodeOptions& options) {
  JpegDecodeOptions result;
  result.mode = options.mode;
  result.scale = options.scale;
  result.crop = options.crop;
  result.accept_warnings = options.accept_warnings;
  result.max_pixels = options.max_pixels;
  result.fast = options.fast;
  return result;
}

PngDecodeOptions png_options(const DecodeOptions& options) {
  if (!options.scale.is_identity() || !options.crop.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "PNG: scale and crop apply to JPEG images only");
  }
  return PngDecodeOptions{options.mode, options.max_pixels};
}

}  // namespace

ImageFormat detect_image_format(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr) return ImageFormat::kUnknown;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (size >= 8 && std::equal(kPngSignature, kPngSignature + 8, data)) return ImageFormat::kPng;
  return ImageFormat::kUnknown;
}

ImageShape ImageDecoder::output_shape(const std::uint8_t* data, std::size_t size,
                                      const DecodeOptions& options) {
  switch (detect_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return jpeg_.output_shape(jpeg_.read_header(data, size), jpeg_options(options));
    case ImageFormat::kPng:
      return png_.output_shape(png_.read_header(data, size), png_options(options));
    case ImageFormat::kUnknown:
      break;
  }
  unknown_format(data, size);
}

void ImageDecoder::decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                          const ImageView& out) {
  switch (detect_image_format(data, size)) {
    case ImageFormat::kJpeg:
      return jpeg_.decode(data, size, jpeg_options(options), out);
    case ImageFormat::kPng:
      return png_.decode(data, size, png_options(options), out);
    case ImageFormat::kUnknown:
      break;
  }
  unknown_format(data, size);
}

Image ImageDecoder::decode(const std::uint8_t* data, std::size_t size,
                           const DecodeOptions& options) {
  Image image = Image::allocate(output_shape(data, size, options));
  decode(data, size, options, image.view());
  return image;
}

}  // namespace conveyor::codecs
