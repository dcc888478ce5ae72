// Checks shared by the decoders: the decompression-bomb pixel limit and the destination view.
#pragma once

#include <cstdint>
#include <string>

#include "conveyor/core/error.h"
#include "conveyor/core/image.h"

namespace conveyor::codecs {

inline void check_pixel_limit(const char* format, int width, int height, std::uint64_t limit) {
  const std::uint64_t pixels = std::uint64_t(width) * std::uint64_t(height);
  if (limit != 0 && pixels > limit) {
    throw Error(ErrorKind::kDecode,
                std::string(format) + ": image of " + std::to_string(width) + "x" +
                    std::to_string(height) + " = " + std::to_string(pixels) +
                    " pixels exceeds the limit of " + std::to_string(limit) +
                    " pixels (decompression bomb guard; raise max_pixels to allow it)");
  }
}

inline void check_destination(const char* format, const ImageShape& expected,
                              const ImageView& out) {
  auto describe = [](const ImageShape& s) {
    return std::to_string(s.height) + "x" + std::to_string(s.width) + "x" +
           std::to_string(s.channels) + " (" + std::to_string(s.sample_bytes * 8) + "-bit)";
  };
  if (out.shape != expected) {
    throw Error(ErrorKind::kInvalidArgument, std::string(format) + ": destination is " +
                                                 describe(out.shape) +
                                                 " but the image decodes to " + describe(expected));
  }
  if (out.data == nullptr || out.row_stride < expected.row_bytes()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string(format) + ": destination has no memory or a row stride below " +
                    std::to_string(expected.row_bytes()) + " bytes");
  }
}

}  // namespace conveyor::codecs
