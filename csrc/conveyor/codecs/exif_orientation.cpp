// Reads the EXIF orientation tag (0x0112) from a JPEG's APP1 segment, bounds-checked at every
// step; anything unreadable means "no orientation" (1).
#include <cstring>

#include "conveyor/codecs/jpeg.h"

namespace conveyor::codecs {
namespace {

struct TiffReader {
  const std::uint8_t* data;
  std::size_t size;
  bool little_endian;

  bool u16(std::size_t at, unsigned* value) const {
    if (at + 2 > size) return false;
    *value = little_endian ? data[at] | data[at + 1] << 8 : data[at] << 8 | data[at + 1];
    return true;
  }
  bool u32(std::size_t at, std::uint32_t* value) const {
    unsigned high = 0, low = 0;
    if (!u16(at, little_endian ? &low : &high) || !u16(at + 2, little_endian ? &high : &low))
      return false;
    *value = std::uint32_t(high) << 16 | low;
    return true;
  }
};

int orientation_in_tiff(const std::uint8_t* tiff, std::size_t size) {
  if (size < 8) return 1;
  TiffReader reader{tiff, size, tiff[0] == 'I'};
  if (std::memcmp(tiff, "II*\0", 4) != 0 && std::memcmp(tiff, "MM\0*", 4) != 0) return 1;
  std::uint32_t ifd = 0;
  unsigned entries = 0;
  if (!reader.u32(4, &ifd) || !reader.u16(ifd, &entries)) return 1;
  for (unsigned i = 0; i < entries; ++i) {
    const std::size_t entry = std::size_t(ifd) + 2 + std::size_t(i) * 12;
    unsigned tag = 0, type = 0, value = 0;
    if (!reader.u16(entry, &tag)) return 1;
    if (tag != 0x0112) continue;
    if (!reader.u16(entry + 2, &type) || type != 3 || !reader.u16(entry + 8, &value)) return 1;
    return value >= 1 && value <= 8 ? int(value) : 1;
  }
  return 1;
}

}  // namespace

int jpeg_exif_orientation(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return 1;
  std::size_t at = 2;
  while (at + 4 <= size && data[at] == 0xFF) {
    const std::uint8_t marker = data[at + 1];
    if (marker == 0xDA || marker == 0xD9) break;  // start of scan / end of image
    const std::size_t length = std::size_t(data[at + 2]) << 8 | data[at + 3];
    if (length < 2 || at + 2 + length > size) break;
    const std::uint8_t* payload = data + at + 4;
    const std::size_t payload_size = length - 2;
    if (marker == 0xE1 && payload_size > 6 && std::memcmp(payload, "Exif\0\0", 6) == 0)
      return orientation_in_tiff(payload + 6, payload_size - 6);
    at += 2 + length;
  }
  return 1;
}

}  // namespace conveyor::codecs
