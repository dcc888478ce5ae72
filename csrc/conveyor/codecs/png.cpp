#include "conveyor/codecs/png.h"

#include <spng.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "conveyor/codecs/pixel_limit.h"
#include "conveyor/codecs/png_plain.h"
#include "conveyor/core/error.h"

namespace conveyor::codecs {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorKind::kDecode, "PNG: " + message);
}

struct ContextDeleter {
  void operator()(spng_ctx* ctx) const { spng_ctx_free(ctx); }
};
using Context = std::unique_ptr<spng_ctx, ContextDeleter>;

// A libspng context reading `data` (libspng needs one per image), with sane chunk limits.
Context open(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size == 0) fail("empty data (0 bytes)");
  if (size < sizeof(kPngSignature) || std::memcmp(data, kPngSignature, sizeof(kPngSignature)) != 0)
    fail("not a PNG file (no PNG signature)");
  Context ctx(spng_ctx_new(0));
  if (!ctx) throw Error(ErrorKind::kRuntime, "PNG: could not create a libspng context");
  spng_set_chunk_limits(ctx.get(), std::size_t(1) << 26, std::size_t(1) << 26);
  if (int ret = spng_set_png_buffer(ctx.get(), data, size)) fail(spng_strerror(ret));
  return ctx;
}

PngHeader header_of(spng_ctx* ctx) {
  spng_ihdr ihdr{};
  if (int ret = spng_get_ihdr(ctx, &ihdr))
    fail(std::string("corrupt header: ") + spng_strerror(ret));
  PngHeader header;
  header.width = int(ihdr.width);
  header.height = int(ihdr.height);
  header.bit_depth = ihdr.bit_depth;
  header.color_type = static_cast<PngColorType>(ihdr.color_type);
  header.interlaced = ihdr.interlace_method != 0;
  spng_trns trns{};
  header.has_transparency = spng_get_trns(ctx, &trns) == 0;
  return header;
}

int mode_channels(ColorMode mode) {
  switch (mode) {
    case ColorMode::kGray:
      return 1;
    case ColorMode::kGrayAlpha:
      return 2;
    case ColorMode::kRgb:
      return 3;
    case ColorMode::kRgbAlpha:
      return 4;
    case ColorMode::kUnchanged:
      break;
  }
  return 0;
}

void decode_with(spng_ctx* ctx, int fmt, int flags, std::uint8_t* out, std::size_t size) {
  if (int ret = spng_decode_image(ctx, out, size, fmt, flags)) {
    fail(
        std::string(ret == SPNG_EOF || ret == SPNG_IO_EOF ? "truncated data: " : "corrupt data: ") +
        spng_strerror(ret));
  }
}

// Unpacks 1/2/4-bit palette indices (most significant bits first) into one byte each.
void unpack_indices(const std::uint8_t* packed, int bit_depth, int width, std::uint8_t* out) {
  const int per_byte = 8 / bit_depth;
  const int mask = (1 << bit_depth) - 1;
  for (int x = 0; x < width; ++x) {
    const int shift = 8 - bit_depth * (x % per_byte + 1);
    out[x] = std::uint8_t((packed[x / per_byte] >> shift) & mask);
  }
}

// RGBA8 (tRNS applied) -> the requested mode, as Pillow's convert() does.
void convert_rgba_row(const std::uint8_t* rgba, ColorMode mode, std::uint8_t* out, int width) {
  for (int x = 0; x < width; ++x, rgba += 4) {
    const auto luma =
        std::uint8_t((rgba[0] * 19595 + rgba[1] * 38470 + rgba[2] * 7471 + 0x8000) >> 16);
    switch (mode) {
      case ColorMode::kGray:
        *out++ = luma;
        break;
      case ColorMode::kGrayAlpha:
        *out++ = luma, *out++ = rgba[3];
        break;
      case ColorMode::kRgb:
        *out++ = rgba[0], *out++ = rgba[1], *out++ = rgba[2];
        break;
      default:
        std::memcpy(out, rgba, 4), out += 4;
        break;
    }
  }
}

// True when `mode` asks for the samples as stored (palette indices stay indices; converting
// a gray or colour image to its own channel count changes nothing, tRNS included).
bool is_stored_layout(const PngHeader& header, ColorMode mode) {
  if (mode == ColorMode::kUnchanged) return true;
  return header.color_type != PngColorType::kPalette && header.bit_depth == 8 &&
         mode_channels(mode) == stored_channels(header.color_type);
}

}  // namespace

PngHeader PngDecoder::read_header(const std::uint8_t* data, std::size_t size) {
  Context ctx = open(data, size);
  return header_of(ctx.get());
}

ImageShape PngDecoder::output_shape(const PngHeader& header,
                                    const PngDecodeOptions& options) const {
  check_pixel_limit("PNG", header.width, header.height, options.max_pixels);
  ImageShape shape;
  shape.height = header.height;
  shape.width = header.width;
  if (options.mode == ColorMode::kUnchanged) {
    shape.channels = stored_channels(header.color_type);
    shape.sample_bytes = header.bit_depth == 16 ? 2 : 1;
  } else {
    shape.channels = mode_channels(options.mode);
  }
  return shape;
}

void PngDecoder::decode(const std::uint8_t* data, std::size_t size, const PngDecodeOptions& options,
                        const ImageView& out) {
  PlainPng plain;
  if (plain_.parse(data, size, plain) && is_stored_layout(plain.header, options.mode)) {
    check_destination("PNG", output_shape(plain.header, options), out);
    if (plain_.decode(plain, out)) return;
  }
  Context ctx = open(data, size);
  const PngHeader header = header_of(ctx.get());
  const ImageShape shape = output_shape(header, options);
  check_destination("PNG", shape, out);

  int fmt = SPNG_FMT_RGBA8;
  int flags = SPNG_DECODE_TRNS;
  bool unpack = false;
  if (options.mode == ColorMode::kUnchanged) {
    flags = 0;
    if (header.color_type == PngColorType::kGray && header.bit_depth < 8) {
      fmt = SPNG_FMT_G8;  // scaled to 0..255, like Pillow's L;1/L;2/L;4 unpackers
    } else {
      fmt = SPNG_FMT_PNG;  // as stored (host-endian 16-bit); palette -> indices
      unpack = header.color_type == PngColorType::kPalette && header.bit_depth < 8;
    }
  }
  std::size_t decoded_size = 0;
  if (int ret = spng_decoded_image_size(ctx.get(), fmt, &decoded_size)) fail(spng_strerror(ret));
  const std::size_t decoded_row = decoded_size / std::size_t(header.height);

  const bool direct = fmt != SPNG_FMT_RGBA8 && !unpack && out.row_stride == shape.row_bytes() &&
                      decoded_row == shape.row_bytes();
  if (direct) {
    decode_with(ctx.get(), fmt, flags, out.data, decoded_size);
    return;
  }
  scratch_.resize(decoded_size);
  // libspng ORs the bits of interlaced sub-byte pixels into place: start from zeros, or the
  // previous image's bytes would leak into this one.
  if (header.interlaced && header.bit_depth < 8 && fmt != SPNG_FMT_RGBA8)
    std::fill(scratch_.begin(), scratch_.end(), std::uint8_t(0));
  decode_with(ctx.get(), fmt, flags, scratch_.data(), decoded_size);
  for (int y = 0; y < shape.height; ++y) {
    const std::uint8_t* src = scratch_.data() + std::size_t(y) * decoded_row;
    if (fmt == SPNG_FMT_RGBA8)
      convert_rgba_row(src, options.mode, out.row(y), shape.width);
    else if (unpack)
      unpack_indices(src, header.bit_depth, shape.width, out.row(y));
    else
      std::memcpy(out.row(y), src, shape.row_bytes());
  }
}

}  // namespace conveyor::codecs
