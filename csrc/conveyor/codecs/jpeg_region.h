// Region-of-interest JPEG decoding through libjpeg-turbo's libjpeg API, which TurboJPEG 2.1
// does not expose: jpeg_crop_scanline decodes only the iMCU columns around the region and
// jpeg_skip_scanlines skips the rows above and below it (entropy decoding only: no IDCT,
// upsampling or colour conversion), so the whole file is checked. Used by JpegDecoder for
// every cropped decode. Nothing throws through libjpeg's C frames: errors come back as a
// status and a message, exactly as TurboJPEG words them.
//
// Pixels equal the same rectangle of a full decode (tjDecompress2 with the same scale and
// flags): the decoder keeps a margin left and right of the region (where it is not an image
// edge), so that fancy upsampling at the edges of the decoded window never reaches the region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace conveyor::codecs::libjpeg {

enum class PixelFormat { kRgb, kGray, kCmyk };  // 3, 1 and 4 bytes per pixel

struct RegionRequest {
  int scale_num = 1, scale_denom = 1;       // DCT scaling, n/8
  int x = 0, y = 0, width = 0, height = 0;  // in scaled pixels, inside the scaled image
  PixelFormat format = PixelFormat::kRgb;
  bool stop_on_warning = true;  // as TJFLAG_STOPONWARNING
  bool fast = false;            // as TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE
};

enum class Status { kOk, kWarning, kError };

class RegionDecoder {
 public:
  RegionDecoder();
  ~RegionDecoder();
  RegionDecoder(const RegionDecoder&) = delete;
  RegionDecoder& operator=(const RegionDecoder&) = delete;

  // Writes the region's rows (width * bytes-per-pixel bytes each) to dst, `pitch` bytes
  // apart. kWarning: with stop_on_warning the decode stopped there (incomplete region);
  // without it the region was completed despite the warning. Errors and warnings anywhere in
  // the file are reported, as by a full decode, also where the region ends before them.
  Status decode(const std::uint8_t* data, std::size_t size, const RegionRequest& request,
                std::uint8_t* dst, std::size_t pitch);
  // The message of the last kWarning / kError.
  const std::string& message() const { return message_; }

 private:
  struct State;
  State* state_;        // libjpeg objects (C structs, not movable once created)
  bool fresh_ = false;  // no image has touched state_->cinfo since it was created
  std::string message_;
};

}  // namespace conveyor::codecs::libjpeg
