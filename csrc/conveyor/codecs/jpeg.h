// JPEG decoding with libjpeg-turbo: whole images through the TurboJPEG API (2.1 and 3.x),
// crops through its libjpeg API (jpeg_region.h: only the region is reconstructed). Both run at
// the same speed on whole images (measured: libjpeg path 0.99x tjDecompress2), so TurboJPEG
// keeps the whole-image path it already had. One JpegDecoder per thread: it owns the handles
// (RAII) and a scratch buffer, and is not thread-safe itself.
//
// Pixels equal Pillow's / torchvision's for the same file (same accurate integer DCT and
// fancy upsampling). Every failure throws conveyor::Error(ErrorKind::kDecode, message); a
// destination that does not match output_shape() throws kInvalidArgument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "conveyor/core/image.h"

namespace conveyor::codecs {
namespace libjpeg {
class RegionDecoder;
}

enum class JpegColorspace { kRgb, kYCbCr, kGray, kCmyk, kYcck };

// Chroma subsampling as TurboJPEG reports it.
enum class JpegSubsampling { k444, k422, k420, kGray, k440, k411, k441, kUnknown };

struct JpegHeader {
  int width = 0;
  int height = 0;
  int components = 0;  // 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK/YCCK)
  JpegColorspace colorspace = JpegColorspace::kYCbCr;
  JpegSubsampling subsampling = JpegSubsampling::kUnknown;
};

// A DCT scaling factor num/denom (libjpeg-turbo supports n/8, n = 1..16). Scaled sizes round
// up: ceil(size * num / denom).
struct ScalingFactor {
  int num = 1;
  int denom = 1;
  int scale(int size) const { return int((std::int64_t(size) * num + denom - 1) / denom); }
  bool is_identity() const { return num == denom; }
};

// A region of the (scaled) image, in output pixels. width == 0 means "no crop".
struct CropRegion {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
  bool empty() const { return width == 0 && height == 0; }
};

struct JpegDecodeOptions {
  // kUnchanged: 1 channel for gray JPEGs, 3 (RGB) for YCbCr/RGB, 4 for CMYK/YCCK (CMYK values
  // as Pillow's mode "CMYK" holds them). kRgb converts CMYK/YCCK like Pillow's
  // convert("RGB"). kGray is the luma channel (as torchvision's ImageReadMode.GRAY and Pillow's
  // draft("L")). Alpha modes are not supported for JPEG (kInvalidArgument).
  ColorMode mode = ColorMode::kRgb;
  ScalingFactor scale;  // must be one of jpeg_scaling_factors()
  // Applied after scaling. Decoded through the libjpeg API (jpeg_region.h): only the iMCU
  // columns and rows around the region go through IDCT, upsampling and colour conversion,
  // and the rows below it are only entropy-decoded (to check the file to its end). Pixels
  // equal the same rectangle of the full decode, and a file fails (or warns) exactly as its
  // full decode does, whatever the crop.
  CropRegion crop;
  // A libjpeg-turbo warning (e.g. "premature end of data segment" on a truncated file) is an
  // error by default; true accepts the image as libjpeg-turbo completed it (gray filled).
  bool accept_warnings = false;
  // Of the stored image and of the scaled output (what is allocated); 0 disables the check.
  std::uint64_t max_pixels = kDefaultMaxPixels;
  // Fast integer IDCT and nearest-neighbour chroma upsampling (TJFLAG_FASTDCT/FASTUPSAMPLE):
  // ~10-15% faster, but pixels then differ slightly from Pillow's/torchvision's. A crop still
  // equals the same rectangle of the (fast) full decode, at every scale.
  bool fast = false;
};

// The scaling factors this libjpeg-turbo supports, largest first.
std::vector<ScalingFactor> jpeg_scaling_factors();

// The smallest supported factor whose scaled size is still >= min_height x min_width
// (1/1 when even the full image is smaller).
ScalingFactor smallest_scale_at_least(int height, int width, int min_height, int min_width);

class JpegDecoder {
 public:
  JpegDecoder();
  ~JpegDecoder();
  JpegDecoder(JpegDecoder&& other) noexcept;
  JpegDecoder& operator=(JpegDecoder&& other) noexcept;
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  // Reads the header only (cheap: no entropy decoding).
  JpegHeader read_header(const std::uint8_t* data, std::size_t size);

  // Shape decode() writes for these options (validates mode, scale, crop and the pixel limit).
  ImageShape output_shape(const JpegHeader& header, const JpegDecodeOptions& options) const;

  // Decodes into caller memory; `out.shape` must equal output_shape(). On error `out` holds
  // unspecified pixels and an exception is thrown.
  void decode(const std::uint8_t* data, std::size_t size, const JpegDecodeOptions& options,
              const ImageView& out);

 private:
  void decode_region(const std::uint8_t* data, std::size_t size, const JpegDecodeOptions& options,
                     bool cmyk, bool gray, const ImageShape& shape, const ImageView& out);
  // CMYK decodes land here first (4 stored channels), then convert into `out`; sets `pitch`.
  std::uint8_t* cmyk_scratch(const ImageShape& shape, std::size_t& pitch);

  void* handle_ = nullptr;                          // tjhandle: full decodes
  std::unique_ptr<libjpeg::RegionDecoder> region_;  // cropped decodes (created on first use)
  std::vector<std::uint8_t> scratch_;               // CMYK conversion
};

// The EXIF orientation tag (1..8) of a JPEG's APP1 segment, or 1 when absent/unreadable.
// Decoders never apply it (as Pillow's Image.open and torchvision's decode_jpeg by default).
int jpeg_exif_orientation(const std::uint8_t* data, std::size_t size);

}  // namespace conveyor::codecs
