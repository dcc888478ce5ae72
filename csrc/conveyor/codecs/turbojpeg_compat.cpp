#include "conveyor/codecs/turbojpeg_compat.h"

#include <turbojpeg.h>

#include <cstring>

namespace conveyor::codecs::tj {

#ifdef TJ_NUMINIT  // ---------------------------------------------------------- TurboJPEG 3.x

void* create() { return tj3Init(TJINIT_DECOMPRESS); }
void destroy(void* handle) { tj3Destroy(handle); }

Status read_header(void* handle, const std::uint8_t* data, std::size_t size, Header* header) {
  if (tj3DecompressHeader(handle, data, size) != 0) return Status::kError;
  header->width = tj3Get(handle, TJPARAM_JPEGWIDTH);
  header->height = tj3Get(handle, TJPARAM_JPEGHEIGHT);
  header->subsampling = tj3Get(handle, TJPARAM_SUBSAMP);
  header->colorspace = tj3Get(handle, TJPARAM_COLORSPACE);
  return Status::kOk;
}

Status decode(void* handle, const std::uint8_t* data, std::size_t size, const Header& header,
              int num, int denom, std::uint8_t* dst, std::size_t pitch, int pixel_format,
              bool stop_on_warning, bool fast) {
  (void)header;
  tj3Set(handle, TJPARAM_FASTDCT, fast ? 1 : 0);
  tj3Set(handle, TJPARAM_FASTUPSAMPLE, fast ? 1 : 0);
  if (tj3DecompressHeader(handle, data, size) != 0) return Status::kError;
  tj3Set(handle, TJPARAM_STOPONWARNING, stop_on_warning ? 1 : 0);
  tj3Set(handle, TJPARAM_SCANLIMIT, 500);  // progressive-scan bomb guard
  if (tj3SetScalingFactor(handle, tjscalingfactor{num, denom}) != 0) return Status::kError;
  // Whole images only: crops go through the libjpeg API (jpeg_region.h), which is exact at
  // the crop's edges.
  if (tj3SetCroppingRegion(handle, TJUNCROPPED) != 0) return Status::kError;
  const int result = tj3Decompress8(handle, data, size, dst, int(pitch), pixel_format);
  if (result == 0) return Status::kOk;
  return tj3GetErrorCode(handle) == TJERR_WARNING ? Status::kWarning : Status::kError;
}

const char* error_message(void* handle) { return tj3GetErrorStr(handle); }

bool scales_exactly(const Header&, int, int) { return true; }

#else  // ------------------------------------------------------------------------ TurboJPEG 2.1

void* create() { return tjInitDecompress(); }
void destroy(void* handle) { tjDestroy(handle); }

namespace {

// TurboJPEG 2.1's header reader rejects sampling factors it has no TJSAMP_* for (Pillow's CMYK
// JPEGs sample C at 2x2 and M, Y, K at 1x1) although tjDecompress2 decodes them. For those,
// read the frame header (SOFn) and the Adobe APP14 transform ourselves.
bool read_frame_header(const std::uint8_t* data, std::size_t size, Header* header) {
  int adobe_transform = -1;
  std::size_t at = 2;
  while (at + 4 <= size && data[at] == 0xFF) {
    const std::uint8_t marker = data[at + 1];
    if (marker == 0xFF) {
      ++at;
      continue;
    }  // fill byte
    const std::size_t length = std::size_t(data[at + 2]) << 8 | data[at + 3];
    if (length < 2 || at + 2 + length > size || marker == 0xDA) return false;
    const std::uint8_t* payload = data + at + 4;
    if (marker == 0xEE && length >= 14 && std::memcmp(payload, "Adobe", 5) == 0)
      adobe_transform = payload[11];
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof && length >= 8) {
      header->height = payload[1] << 8 | payload[2];
      header->width = payload[3] << 8 | payload[4];
      const int components = payload[5];
      header->subsampling = -1;
      if (components == 4)
        header->colorspace = adobe_transform == 2 ? TJCS_YCCK : TJCS_CMYK;
      else if (components == 3)
        header->colorspace = adobe_transform == 0 ? TJCS_RGB : TJCS_YCbCr;
      else if (components == 1)
        header->colorspace = TJCS_GRAY;
      else
        return false;
      // Scan on for a later APP14 is unnecessary: Adobe writes APP14 before the frame.
      return header->width > 0 && header->height > 0;
    }
    at += 2 + length;
  }
  return false;
}

}  // namespace

Status read_header(void* handle, const std::uint8_t* data, std::size_t size, Header* header) {
  const int result =
      tjDecompressHeader3(handle, data, static_cast<unsigned long>(size), &header->width,
                          &header->height, &header->subsampling, &header->colorspace);
  if (result == 0) return Status::kOk;
  if (std::strstr(tjGetErrorStr2(handle), "Could not determine subsampling") &&
      read_frame_header(data, size, header))
    return Status::kOk;
  return Status::kError;
}

Status decode(void* handle, const std::uint8_t* data, std::size_t size, const Header& header,
              int num, int denom, std::uint8_t* dst, std::size_t pitch, int pixel_format,
              bool stop_on_warning, bool fast) {
  // tjDecompress2 picks the scaling factor from the requested output size.
  const int width = TJSCALED(header.width, (tjscalingfactor{num, denom}));
  const int height = TJSCALED(header.height, (tjscalingfactor{num, denom}));
  int flags =
      TJFLAG_LIMITSCANS | (fast ? TJFLAG_FASTDCT | TJFLAG_FASTUPSAMPLE : TJFLAG_ACCURATEDCT);
  if (stop_on_warning) flags |= TJFLAG_STOPONWARNING;
  const int result = tjDecompress2(handle, data, static_cast<unsigned long>(size), dst, width,
                                   int(pitch), height, pixel_format, flags);
  if (result == 0) return Status::kOk;
  return tjGetErrorCode(handle) == TJERR_WARNING ? Status::kWarning : Status::kError;
}

const char* error_message(void* handle) { return tjGetErrorStr2(handle); }

bool scales_exactly(const Header& header, int num, int denom) {
  const tjscalingfactor wanted{num, denom};
  const int width = TJSCALED(header.width, wanted), height = TJSCALED(header.height, wanted);
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  for (int i = 0; factors && i < count; ++i) {  // tjDecompress2's own search
    if (TJSCALED(header.width, factors[i]) <= width &&
        TJSCALED(header.height, factors[i]) <= height)
      return std::int64_t(factors[i].num) * denom == std::int64_t(num) * factors[i].denom;
  }
  return false;
}

#endif

}  // namespace conveyor::codecs::tj
