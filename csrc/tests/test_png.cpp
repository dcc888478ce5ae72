// PngDecoder on PNGs written by libspng's encoder, and its error paths.
#include <spng.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "check.h"
#include "conveyor/codecs/png.h"
#include "conveyor/core/error.h"

using namespace conveyor;
using namespace conveyor::codecs;

namespace {

// Encodes rows already in PNG layout (packed for < 8 bits, host-endian for 16 bits).
std::vector<std::uint8_t> encode(const std::vector<std::uint8_t>& rows, int width, int height,
                                 int bit_depth, int color_type, const spng_plte* plte = nullptr,
                                 const spng_trns* trns = nullptr) {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{std::uint32_t(width),
                 std::uint32_t(height),
                 std::uint8_t(bit_depth),
                 std::uint8_t(color_type),
                 0,
                 0,
                 0};
  spng_set_ihdr(ctx, &ihdr);
  if (plte) spng_set_plte(ctx, const_cast<spng_plte*>(plte));
  if (trns) spng_set_trns(ctx, const_cast<spng_trns*>(trns));
  const int ret =
      spng_encode_image(ctx, rows.data(), rows.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  CHECK(ret == 0);
  std::size_t size = 0;
  int error = 0;
  auto* buffer = static_cast<std::uint8_t*>(spng_get_png_buffer(ctx, &size, &error));
  std::vector<std::uint8_t> png(buffer, buffer + size);
  std::free(buffer);
  spng_ctx_free(ctx);
  return png;
}

Image decode(PngDecoder& decoder, const std::vector<std::uint8_t>& png, ColorMode mode) {
  const PngDecodeOptions options{mode, kDefaultMaxPixels};
  Image image =
      Image::allocate(decoder.output_shape(decoder.read_header(png.data(), png.size()), options));
  decoder.decode(png.data(), png.size(), options, image.view());
  return image;
}

std::vector<std::uint8_t> ramp(std::size_t n, int step) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::uint8_t(i * step);
  return v;
}

}  // namespace

TEST_CASE("RGB 8-bit round trip, unchanged and converted") {
  PngDecoder decoder;
  const auto rgb = ramp(9 * 5 * 3, 7);
  const auto png = encode(rgb, 9, 5, 8, 2);
  const Image same = decode(decoder, png, ColorMode::kUnchanged);
  CHECK(same.shape() == (ImageShape{5, 9, 3, 1}));
  CHECK(std::equal(rgb.begin(), rgb.end(), same.data()));
  const Image rgba = decode(decoder, png, ColorMode::kRgbAlpha);
  CHECK(rgba.data()[3] == 255 && rgba.data()[4] == rgb[3]);
  const Image gray = decode(decoder, png, ColorMode::kGray);
  CHECK(gray.data()[1] == ((rgb[3] * 19595 + rgb[4] * 38470 + rgb[5] * 7471 + 0x8000) >> 16));
}

TEST_CASE("16-bit RGBA stays 16-bit unchanged, high byte when converted") {
  PngDecoder decoder;
  std::vector<std::uint16_t> samples(4 * 3 * 4);
  for (std::size_t i = 0; i < samples.size(); ++i) samples[i] = std::uint16_t(i * 4099);
  std::vector<std::uint8_t> rows(samples.size() * 2);
  std::memcpy(rows.data(), samples.data(), rows.size());
  const auto png = encode(rows, 4, 3, 16, 6);
  const Image wide = decode(decoder, png, ColorMode::kUnchanged);
  CHECK(wide.shape() == (ImageShape{3, 4, 4, 2}));
  CHECK(std::memcmp(wide.data(), samples.data(), rows.size()) == 0);
  const Image narrow = decode(decoder, png, ColorMode::kRgbAlpha);
  CHECK(narrow.data()[5] == samples[5] >> 8);
}

TEST_CASE("4-bit palette: indices unchanged, tRNS alpha when converted") {
  PngDecoder decoder;
  spng_plte plte{};
  plte.n_entries = 16;
  for (int i = 0; i < 16; ++i)
    plte.entries[i] = {std::uint8_t(i * 16), std::uint8_t(255 - i), 7, 255};
  spng_trns trns{};
  trns.n_type3_entries = 2;
  trns.type3_alpha[0] = 0;
  trns.type3_alpha[1] = 100;
  const std::vector<std::uint8_t> rows = {0x01, 0x23, 0x40, 0xF5, 0x67, 0x80};  // 5 px, 2 rows
  const auto png = encode(rows, 5, 2, 4, 3, &plte, &trns);
  const Image indices = decode(decoder, png, ColorMode::kUnchanged);
  const std::uint8_t expected[] = {0, 1, 2, 3, 4, 15, 5, 6, 7, 8};
  CHECK(indices.shape() == (ImageShape{2, 5, 1, 1}));
  CHECK(std::equal(expected, expected + 10, indices.data()));
  const Image rgba = decode(decoder, png, ColorMode::kRgbAlpha);
  CHECK(rgba.data()[3] == 0 && rgba.data()[7] == 100 && rgba.data()[11] == 255);
  CHECK(rgba.data()[4] == 16 && rgba.data()[5] == 254);
}

TEST_CASE("1-bit gray scales to 0/255") {
  PngDecoder decoder;
  const auto png = encode({0xA0}, 3, 1, 1, 0);
  const Image gray = decode(decoder, png, ColorMode::kUnchanged);
  CHECK(gray.data()[0] == 255 && gray.data()[1] == 0 && gray.data()[2] == 255);
}

TEST_CASE("errors: empty, signature, truncated, pixel limit, destination") {
  PngDecoder decoder;
  CHECK_THROWS_KIND(decoder.read_header(nullptr, 0), ErrorKind::kDecode);
  const std::uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0, 0, 0};
  CHECK_THROWS_KIND(decoder.read_header(jpeg, sizeof(jpeg)), ErrorKind::kDecode);
  const auto png = encode(ramp(64 * 64 * 3, 13), 64, 64, 8, 2);
  const std::vector<std::uint8_t> truncated(png.begin(), png.begin() + png.size() / 2);
  CHECK_THROWS_KIND(decode(decoder, truncated, ColorMode::kUnchanged), ErrorKind::kDecode);
  CHECK_THROWS_KIND(
      decoder.output_shape(decoder.read_header(png.data(), png.size()), {ColorMode::kRgb, 100}),
      ErrorKind::kDecode);
  Image wrong = Image::allocate({64, 64, 4, 1});
  CHECK_THROWS_KIND(decoder.decode(png.data(), png.size(), {ColorMode::kRgb, 0}, wrong.view()),
                    ErrorKind::kInvalidArgument);
  std::vector<std::uint8_t> corrupt = png;
  corrupt[corrupt.size() / 2] ^= 0xFF;
  CHECK_THROWS_KIND(decode(decoder, corrupt, ColorMode::kUnchanged), ErrorKind::kDecode);
}

TEST_MAIN()
