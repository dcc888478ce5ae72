// PlainPngDecoder against libspng: the same pixels on every layout and row filter it takes, and
// a refusal (so that PngDecoder asks libspng) on anything unusual or corrupt.
#include <spng.h>

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "check.h"
#include "conveyor/codecs/png.h"
#include "conveyor/codecs/png_plain.h"
#include "conveyor/core/error.h"

using namespace conveyor;
using namespace conveyor::codecs;

namespace {

using Bytes = std::vector<std::uint8_t>;

int channels_of(int color_type) { return stored_channels(static_cast<PngColorType>(color_type)); }

// Rows with smooth runs and noise, so the encoder's filter choice varies along the image.
Bytes samples(int width, int height, int channels, unsigned seed) {
  Bytes v(std::size_t(width) * height * channels);
  for (std::size_t i = 0; i < v.size(); ++i) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t x = i % (std::size_t(width) * channels),
                      y = i / (std::size_t(width) * channels);
    v[i] = std::uint8_t(y % 3 == 0 ? (seed >> 16) : (x * 3 + y * 5) / (1 + y % 4));
  }
  return v;
}

Bytes encode(const Bytes& rows, int width, int height, int color_type, int filter_choice) {
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_set_option(ctx, SPNG_FILTER_CHOICE, filter_choice);
  spng_ihdr ihdr{std::uint32_t(width), std::uint32_t(height), 8, std::uint8_t(color_type), 0, 0, 0};
  spng_set_ihdr(ctx, &ihdr);
  spng_plte plte{};
  plte.n_entries = 256;
  if (color_type == 3) spng_set_plte(ctx, &plte);
  CHECK(spng_encode_image(ctx, rows.data(), rows.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) == 0);
  std::size_t size = 0;
  int error = 0;
  auto* buffer = static_cast<std::uint8_t*>(spng_get_png_buffer(ctx, &size, &error));
  Bytes png(buffer, buffer + size);
  std::free(buffer);
  spng_ctx_free(ctx);
  return png;
}

std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::uint8_t(v >> shift));
}

Bytes chunk(const char* type, const Bytes& payload) {
  Bytes out;
  put32(out, std::uint32_t(payload.size()));
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), payload.begin(), payload.end());
  put32(out, crc32(out.data() + 4, payload.size() + 4));
  return out;
}

struct Chunk {
  std::string type;
  Bytes payload;
};

std::vector<Chunk> chunks_of(const Bytes& png) {
  std::vector<Chunk> chunks;
  for (std::size_t at = 8; at + 12 <= png.size();) {
    const std::uint32_t length =
        (std::uint32_t(png[at]) << 24) | (png[at + 1] << 16) | (png[at + 2] << 8) | png[at + 3];
    chunks.push_back({std::string(png.begin() + at + 4, png.begin() + at + 8),
                      Bytes(png.begin() + at + 8, png.begin() + at + 8 + length)});
    at += 12 + length;
  }
  return chunks;
}

Bytes assemble(const std::vector<Chunk>& chunks) {
  Bytes png(std::begin(kPngSignature), std::end(kPngSignature));
  for (const Chunk& c : chunks) {
    const Bytes bytes = chunk(c.type.c_str(), c.payload);
    png.insert(png.end(), bytes.begin(), bytes.end());
  }
  return png;
}

// libspng's own decode of the stored samples.
Bytes spng_decode(const Bytes& png) {
  spng_ctx* ctx = spng_ctx_new(0);
  spng_set_png_buffer(ctx, png.data(), png.size());
  std::size_t size = 0;
  CHECK(spng_decoded_image_size(ctx, SPNG_FMT_PNG, &size) == 0);
  Bytes out(size);
  CHECK(spng_decode_image(ctx, out.data(), size, SPNG_FMT_PNG, 0) == 0);
  spng_ctx_free(ctx);
  return out;
}

// What PlainPngDecoder gives, or an empty vector when it refuses the file.
Bytes plain_decode(PlainPngDecoder& decoder, const Bytes& png) {
  PlainPng parsed;
  if (!decoder.parse(png.data(), png.size(), parsed)) return {};
  const ImageShape shape{parsed.header.height, parsed.header.width,
                         stored_channels(parsed.header.color_type), 1};
  Bytes out(shape.bytes());
  if (!decoder.decode(parsed, ImageView{out.data(), shape, shape.row_bytes()})) return {};
  return out;
}

// PngDecoder's answer: the pixels, or "error".
std::string png_decoder_result(const Bytes& png) {
  PngDecoder decoder;
  try {
    const PngDecodeOptions options;
    const ImageShape shape =
        decoder.output_shape(decoder.read_header(png.data(), png.size()), options);
    Bytes out(shape.bytes());
    decoder.decode(png.data(), png.size(), options,
                   ImageView{out.data(), shape, shape.row_bytes()});
    return std::string(out.begin(), out.end());
  } catch (const Error&) {
    return "error";
  }
}

Bytes palette_png() { return encode(samples(23, 9, 1, 7), 23, 9, 3, SPNG_FILTER_CHOICE_ALL); }

}  // namespace

TEST_CASE("every 8-bit layout and row filter decodes as libspng does") {
  PlainPngDecoder decoder;
  const int filter_choices[] = {SPNG_FILTER_CHOICE_NONE,  SPNG_FILTER_CHOICE_SUB,
                                SPNG_FILTER_CHOICE_UP,    SPNG_FILTER_CHOICE_AVG,
                                SPNG_FILTER_CHOICE_PAETH, SPNG_FILTER_CHOICE_ALL};
  const int sizes[][2] = {{1, 1}, {2, 5}, {37, 11}, {500, 375}};
  for (int color_type : {0, 2, 3, 4, 6}) {
    for (int filters : filter_choices) {
      for (const auto& size : sizes) {
        const Bytes rows =
            samples(size[0], size[1], channels_of(color_type), unsigned(color_type * 31 + size[0]));
        const Bytes png = encode(rows, size[0], size[1], color_type, filters);
        const Bytes decoded = plain_decode(decoder, png);
        CHECK(decoded == rows);
        CHECK(decoded == spng_decode(png));
      }
    }
  }
}

TEST_CASE("IDAT split over chunks, ancillary chunks and a missing IEND still decode") {
  PlainPngDecoder decoder;
  const Bytes png = palette_png();
  const Bytes expected = spng_decode(png);
  std::vector<Chunk> chunks = chunks_of(png);
  std::vector<Chunk> split;
  for (const Chunk& c : chunks) {
    if (c.type != "IDAT") {
      if (c.type == "PLTE") split.push_back({"gAMA", {0, 0, 0xB1, 0x8F}});
      split.push_back(c);
      continue;
    }
    for (std::size_t at = 0; at < c.payload.size(); at += 5)
      split.push_back({"IDAT", Bytes(c.payload.begin() + at,
                                     c.payload.begin() + std::min(at + 5, c.payload.size()))});
    split.push_back({"tEXt", {'a', 0, 'b'}});
  }
  CHECK(plain_decode(decoder, assemble(split)) == expected);
  split.pop_back();  // IEND
  CHECK(plain_decode(decoder, assemble(split)) == expected);
}

TEST_CASE("refuses what it does not take, and PngDecoder then answers as libspng does") {
  PlainPngDecoder decoder;
  const std::vector<Chunk> good = chunks_of(palette_png());
  const auto with = [&](auto edit) {
    std::vector<Chunk> chunks = good;
    edit(chunks);
    return assemble(chunks);
  };
  auto idat = [](std::vector<Chunk>& c) -> Chunk& { return c[2]; };  // IHDR, PLTE, IDAT, IEND
  CHECK(good[2].type == "IDAT");
  const std::string spng_pixels = png_decoder_result(palette_png());

  // Corrupt: refused, and PngDecoder raises libspng's error.
  std::vector<Bytes> corrupt = {
      with([&](auto& c) { idat(c).payload.back() ^= 1; }),                         // Adler-32
      with([&](auto& c) { idat(c).payload.resize(idat(c).payload.size() - 6); }),  // short stream
      with([&](auto& c) { c.erase(c.begin() + 1); }),                              // no PLTE
      with([&](auto& c) { c[1].payload.resize(4); }),  // PLTE of 4 bytes
      with([&](auto& c) {
        c.insert(c.begin() + 2, Chunk{"ABCD", {1}});
      }),                  // unknown critical
      with([&](auto& c) {  // IDAT, tEXt, IDAT
        Bytes& data = idat(c).payload;
        Chunk tail{"IDAT", Bytes(data.begin() + 4, data.end())};
        data.resize(4);
        c.insert(c.begin() + 3, {Chunk{"tEXt", {'a', 0, 'b'}}, tail});
      }),
  };
  Bytes bad_plte_crc = palette_png();
  bad_plte_crc[8 + 25 + (12 + 3 * 256) - 1] ^= 0xFF;
  corrupt.push_back(bad_plte_crc);
  for (const Bytes& png : corrupt) {
    CHECK(plain_decode(decoder, png).empty());
    CHECK(png_decoder_result(png) == "error");
  }
  // Unusual but decoded by libspng: refused here, decoded there. libspng lets an IDAT CRC
  // mismatch pass when the zlib stream's own Adler-32 checks.
  Bytes bad_idat_crc = palette_png();  // signature, IHDR, PLTE (256 entries), IDAT: its stored CRC
  bad_idat_crc[8 + 25 + (12 + 3 * 256) + 12 + good[2].payload.size() - 1] ^= 0xFF;
  const std::vector<Bytes> unusual = {
      bad_idat_crc, with([&](auto& c) {
        c.insert(c.begin() + 1, Chunk{"tRNS", {0}});
      }),  // tRNS before PLTE
  };
  for (const Bytes& png : unusual) {
    CHECK(plain_decode(decoder, png).empty());
    CHECK(png_decoder_result(png) == spng_pixels);
  }
  // A stream longer than the image (IHDR says 8 rows of the 9 encoded): libspng reads 8 rows.
  const Bytes taller_stream = with([&](auto& c) { c[0].payload[7] = 8; });
  CHECK(plain_decode(decoder, taller_stream).empty());
  const std::string eight_rows = png_decoder_result(taller_stream);
  CHECK(eight_rows == spng_pixels.substr(0, 23 * 8));

  // Bytes after the zlib stream: ignored by both.
  const Bytes trailing = with([&](auto& c) { idat(c).payload.push_back(0); });
  CHECK(plain_decode(decoder, trailing) == spng_decode(palette_png()));
  CHECK(png_decoder_result(trailing) == spng_pixels);
}

TEST_CASE("16-bit, low bit depths and interlaced files go to libspng") {
  PlainPngDecoder decoder;
  PlainPng parsed;
  const Bytes png = palette_png();
  // IHDR bytes 8 and 12: bit depth, interlace method.
  for (const auto& [at, value] :
       std::vector<std::pair<std::size_t, int>>{{8, 16}, {8, 4}, {12, 1}}) {
    std::vector<Chunk> chunks = chunks_of(png);
    chunks[0].payload[at] = std::uint8_t(value);
    const Bytes edited = assemble(chunks);
    CHECK(!decoder.parse(edited.data(), edited.size(), parsed));
  }
}

TEST_MAIN()
