// The one place that knows whether libjpeg-turbo speaks the TurboJPEG 2.1 API or the 3.x API
// (3.x defines TJ_NUMINIT). Everything returns a status; nothing throws through C frames.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor::codecs::tj {

struct Header {
  int width, height, subsampling, colorspace;  // TurboJPEG's TJSAMP_* / TJCS_* values
};

struct Region {  // in scaled pixels; width == 0 means the whole image
  int x, y, width, height;
};

enum class Status { kOk, kWarning, kError };

void* create();
void destroy(void* handle);
Status read_header(void* handle, const std::uint8_t* data, std::size_t size, Header* header);
// Decodes (scaled by num/denom, optionally cropped) into dst with `pitch` bytes per row.
// pixel_format is a TJPF_* value. kWarning: with stop_on_warning the decode stopped there
// (incomplete image); without it the image was completed despite the warning.
// `header` is the image's header from read_header (spares 2.1 a second parse).
Status decode(void* handle, const std::uint8_t* data, std::size_t size, const Header& header,
              int num, int denom, const Region& region, std::uint8_t* dst, std::size_t pitch, int pixel_format,
              bool stop_on_warning, bool fast);
const char* error_message(void* handle);
// True when this TurboJPEG can decode a cropped region without decoding the whole image.
bool supports_cropped_decode();
// The scaled iMCU width of a subsampling (crop x must be a multiple of it for a cropped decode).
int scaled_mcu_width(int subsampling, int num, int denom);

}  // namespace conveyor::codecs::tj
