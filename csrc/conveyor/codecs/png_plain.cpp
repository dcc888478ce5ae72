#include "conveyor/codecs/png_plain.h"

#include <libdeflate.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace conveyor::codecs {
namespace {

constexpr std::size_t kChunkOverhead = 12;  // length, type, CRC
constexpr std::uint32_t kMaxChunkLength = 0x7FFFFFFF;

std::uint32_t big_endian32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

bool is_type(const std::uint8_t* type, const char* name) { return std::memcmp(type, name, 4) == 0; }

// The chunk's CRC covers its type and data.
bool crc_matches(const std::uint8_t* chunk, std::uint32_t length) {
  const std::uint32_t stored = big_endian32(chunk + 8 + length);
  return std::uint32_t(libdeflate_crc32(0, chunk + 4, 4 + std::size_t(length))) == stored;
}

std::uint8_t paeth(int left, int up, int up_left) {
  const int p = left + up - up_left;
  const int pa = std::abs(p - left), pb = std::abs(p - up), pc = std::abs(p - up_left);
  if (pa <= pb && pa <= pc) return std::uint8_t(left);
  return std::uint8_t(pb <= pc ? up : up_left);
}

// Undoes one row's filter (PNG spec, section 9). `prior` is the previous unfiltered row, or
// nullptr for the first row (all zeros). False for an unknown filter type.
bool unfilter_row(int filter, const std::uint8_t* in, const std::uint8_t* prior, std::uint8_t* out,
                  std::size_t bytes, std::size_t bpp) {
  switch (filter) {
    case 0:
      std::memcpy(out, in, bytes);
      return true;
    case 1:
      for (std::size_t i = 0; i < bytes; ++i)
        out[i] = std::uint8_t(in[i] + (i >= bpp ? out[i - bpp] : 0));
      return true;
    case 2:
      if (!prior)
        std::memcpy(out, in, bytes);
      else
        for (std::size_t i = 0; i < bytes; ++i) out[i] = std::uint8_t(in[i] + prior[i]);
      return true;
    case 3:
      for (std::size_t i = 0; i < bytes; ++i) {
        const int left = i >= bpp ? out[i - bpp] : 0;
        const int up = prior ? prior[i] : 0;
        out[i] = std::uint8_t(in[i] + ((left + up) >> 1));
      }
      return true;
    case 4:
      for (std::size_t i = 0; i < bytes; ++i) {
        const int left = i >= bpp ? out[i - bpp] : 0;
        const int up = prior ? prior[i] : 0;
        const int up_left = prior && i >= bpp ? prior[i - bpp] : 0;
        out[i] = std::uint8_t(in[i] + paeth(left, up, up_left));
      }
      return true;
    default:
      return false;
  }
}

}  // namespace

void PlainPngDecoder::FreeDecompressor::operator()(libdeflate_decompressor* d) const {
  libdeflate_free_decompressor(d);
}

PlainPngDecoder::PlainPngDecoder() = default;
PlainPngDecoder::~PlainPngDecoder() = default;
PlainPngDecoder::PlainPngDecoder(PlainPngDecoder&&) noexcept = default;
PlainPngDecoder& PlainPngDecoder::operator=(PlainPngDecoder&&) noexcept = default;

bool PlainPngDecoder::parse(const std::uint8_t* data, std::size_t size, PlainPng& png) {
  if (data == nullptr || size < sizeof(kPngSignature) + kChunkOverhead + 13 ||
      std::memcmp(data, kPngSignature, sizeof(kPngSignature)) != 0)
    return false;
  const std::uint8_t* ihdr = data + sizeof(kPngSignature);
  if (big_endian32(ihdr) != 13 || !is_type(ihdr + 4, "IHDR") || !crc_matches(ihdr, 13))
    return false;
  const std::uint32_t width = big_endian32(ihdr + 8), height = big_endian32(ihdr + 12);
  const int bit_depth = ihdr[16], color_type = ihdr[17];
  if (width == 0 || height == 0 || width > kMaxChunkLength || height > kMaxChunkLength ||
      bit_depth != 8 || stored_channels(static_cast<PngColorType>(color_type)) == 0 ||
      ihdr[18] != 0 || ihdr[19] != 0 || ihdr[20] != 0)
    return false;
  png.header =
      PngHeader{int(width), int(height), 8, static_cast<PngColorType>(color_type), false, false};

  bool has_palette = false, idat_ended = false;
  std::size_t idat_chunks = 0, idat_bytes = 0;
  const std::uint8_t* first_idat = nullptr;
  joined_idat_.clear();
  std::size_t at = sizeof(kPngSignature) + kChunkOverhead + 13;
  while (at < size) {
    if (size - at < kChunkOverhead) return false;
    const std::uint8_t* chunk = data + at;
    const std::uint32_t length = big_endian32(chunk);
    if (length > kMaxChunkLength || size - at - kChunkOverhead < length) return false;
    const std::uint8_t* type = chunk + 4;
    at += kChunkOverhead + length;
    if (is_type(type, "IEND")) break;
    if (is_type(type, "IDAT")) {
      if (idat_ended || (color_type == 3 && !has_palette) || !crc_matches(chunk, length))
        return false;
      if (idat_chunks == 0) {
        first_idat = chunk + 8;
      } else {
        if (idat_chunks == 1) joined_idat_.assign(first_idat, first_idat + idat_bytes);
        joined_idat_.insert(joined_idat_.end(), chunk + 8, chunk + 8 + length);
      }
      ++idat_chunks;
      idat_bytes += length;
      continue;
    }
    if (idat_chunks > 0) idat_ended = true;
    if (is_type(type, "PLTE")) {
      // Only where the spec allows it; libspng rejects a bad palette.
      if (has_palette || idat_chunks > 0 ||
          (color_type != 2 && color_type != 3 && color_type != 6) || length == 0 ||
          length > 3 * 256 || length % 3 != 0 || !crc_matches(chunk, length))
        return false;
      has_palette = true;
    } else if ((type[0] & 0x20) == 0) {
      return false;  // another critical chunk (IHDR again, or unknown)
    } else if (is_type(type, "tRNS") && (idat_chunks > 0 || (color_type == 3 && !has_palette))) {
      return false;  // misplaced transparency: let libspng judge it
    }
    // Other ancillary chunks do not change the stored samples.
  }
  if (idat_chunks == 0) return false;
  png.zlib_stream = idat_chunks == 1 ? first_idat : joined_idat_.data();
  png.zlib_size = idat_bytes;
  return true;
}

bool PlainPngDecoder::decode(const PlainPng& png, const ImageView& out) {
  const std::size_t bpp = std::size_t(stored_channels(png.header.color_type));
  const std::size_t row_bytes = std::size_t(png.header.width) * bpp;
  if (row_bytes + 1 > SIZE_MAX / std::size_t(png.header.height)) return false;
  const std::size_t filtered_bytes = (row_bytes + 1) * std::size_t(png.header.height);
  if (!inflater_) {
    inflater_.reset(libdeflate_alloc_decompressor());
    if (!inflater_) return false;
  }
  filtered_.resize(filtered_bytes);
  std::size_t used = 0, produced = 0;
  // Exactly the image: a stream that is short, corrupt or longer goes to libspng.
  if (libdeflate_zlib_decompress_ex(inflater_.get(), png.zlib_stream, png.zlib_size,
                                    filtered_.data(), filtered_bytes, &used,
                                    &produced) != LIBDEFLATE_SUCCESS ||
      produced != filtered_bytes)
    return false;
  const std::uint8_t* prior = nullptr;
  for (int y = 0; y < png.header.height; ++y) {
    const std::uint8_t* row = filtered_.data() + std::size_t(y) * (row_bytes + 1);
    if (!unfilter_row(row[0], row + 1, prior, out.row(y), row_bytes, bpp)) return false;
    prior = out.row(y);
  }
  return true;
}

}  // namespace conveyor::codecs
