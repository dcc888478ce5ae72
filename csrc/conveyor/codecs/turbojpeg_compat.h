// The one place that knows whether libjpeg-turbo speaks the TurboJPEG 2.1 API or the 3.x API
// (3.x defines TJ_NUMINIT). Everything returns a status; nothing throws through C frames.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor::codecs::tj {

struct Header {
  int width, height, subsampling, colorspace;  // TurboJPEG's TJSAMP_* / TJCS_* values
};

enum class Status { kOk, kWarning, kError };

void* create();
void destroy(void* handle);
Status read_header(void* handle, const std::uint8_t* data, std::size_t size, Header* header);
// Decodes the whole image (scaled by num/denom) into dst with `pitch` bytes per row.
// pixel_format is a TJPF_* value. kWarning: with stop_on_warning the decode stopped there
// (incomplete image); without it the image was completed despite the warning.
// `header` is the image's header from read_header (spares 2.1 a second parse).
Status decode(void* handle, const std::uint8_t* data, std::size_t size, const Header& header,
              int num, int denom, std::uint8_t* dst, std::size_t pitch, int pixel_format,
              bool stop_on_warning, bool fast);
const char* error_message(void* handle);
// False when decode() would not use num/denom itself: TurboJPEG 2.1 takes the first factor of
// its list whose output fits the scaled size, which for tiny images can be another factor with
// the same output size (2x2 at 5/4 decodes at 3/2, 1x1 at 1/2 at 1/1) and other pixels. 3.x
// always uses the factor it is given.
bool scales_exactly(const Header& header, int num, int denom);

}  // namespace conveyor::codecs::tj
