// PNG decoding with libspng. One PngDecoder per thread: it owns scratch memory reused across
// images (libspng needs a fresh context per image; the decoder creates and frees it, RAII).
//
// kUnchanged gives what numpy.array(PIL.Image.open(f)) gives: palette images -> 1 channel of
// palette indices (VOC masks), gray/gray+alpha/RGB/RGBA as stored (tRNS ignored, as Pillow
// keeps it aside in info["transparency"]), gray below 8 bits scaled to 0..255, 16-bit images as
// uint16 (sample_bytes 2). Other modes convert like Pillow's convert(): tRNS becomes alpha for
// the alpha modes, gray = (19595 R + 38470 G + 7471 B + 32768) >> 16, and 16-bit samples keep
// their high byte. tRNS follows the PNG spec for 1/2/4-bit gray too (Pillow never matches it
// there, comparing the raw tRNS value with scaled samples). Errors throw conveyor::Error(kDecode,
// ...) (kInvalidArgument for a wrong destination).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/codecs/png_header.h"
#include "conveyor/codecs/png_plain.h"
#include "conveyor/core/image.h"

namespace conveyor::codecs {

struct PngDecodeOptions {
  ColorMode mode = ColorMode::kUnchanged;
  std::uint64_t max_pixels = kDefaultMaxPixels;  // 0 disables the check
};

class PngDecoder {
 public:
  PngDecoder() = default;

  PngHeader read_header(const std::uint8_t* data, std::size_t size);
  ImageShape output_shape(const PngHeader& header, const PngDecodeOptions& options) const;
  // Decodes into caller memory; `out.shape` must equal output_shape().
  void decode(const std::uint8_t* data, std::size_t size, const PngDecodeOptions& options,
              const ImageView& out);

 private:
  PlainPngDecoder plain_;  // 8-bit non-interlaced files in their stored layout
  std::vector<std::uint8_t> scratch_;
};

}  // namespace conveyor::codecs
