// The common PNG decoded without libspng: 8-bit samples, not interlaced, output in the stored
// layout (VOC masks: palette indices). libdeflate inflates the whole IDAT stream in one call,
// 5-9x faster than zlib's streaming inflate on VOC masks, which was a third of a segmentation
// sample's CPU time.
//
// Accepts only a file it fully understands and that libspng would decode to the same pixels:
// the IHDR, PLTE and IDAT chunks' CRCs check, IDAT chunks are consecutive, the zlib stream
// (Adler-32 checked) inflates to exactly the image, every row filter is valid. Anything else
// (another layout, a corrupt or unusual file) returns false and PngDecoder takes the file to
// libspng, whose result or error is then the answer, as before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "conveyor/codecs/png_header.h"
#include "conveyor/core/image.h"

struct libdeflate_decompressor;

namespace conveyor::codecs {

// What the plain decoder reads of a file before decoding it.
struct PlainPng {
  PngHeader header;
  const std::uint8_t* zlib_stream = nullptr;  // the IDAT data, contiguous
  std::size_t zlib_size = 0;
};

class PlainPngDecoder {
 public:
  PlainPngDecoder();
  ~PlainPngDecoder();
  PlainPngDecoder(PlainPngDecoder&&) noexcept;
  PlainPngDecoder& operator=(PlainPngDecoder&&) noexcept;

  // Reads the chunks; false when the file is not one this decoder takes.
  bool parse(const std::uint8_t* data, std::size_t size, PlainPng& png);
  // Inflates and unfilters into `out` (shape already checked against the header); false when the
  // stream or a filter is bad. `out` may then hold partial rows.
  bool decode(const PlainPng& png, const ImageView& out);

 private:
  struct FreeDecompressor {
    void operator()(libdeflate_decompressor* d) const;
  };
  std::unique_ptr<libdeflate_decompressor, FreeDecompressor> inflater_;
  std::vector<std::uint8_t> joined_idat_;  // IDAT data when split over several chunks
  std::vector<std::uint8_t> filtered_;     // the inflated rows, each led by its filter byte
};

}  // namespace conveyor::codecs
