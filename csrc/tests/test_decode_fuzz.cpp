// A short mutation-fuzzing run of the image decoders (JPEG full / crop / DCT scale, PNG through
// the plain and libspng paths), built with AddressSanitizer and UndefinedBehaviorSanitizer when
// the compiler has them. Seeds are small encoded images of many layouts; mutations flip, insert,
// delete and duplicate bytes, insert markers and chunk names, truncate, and splice seeds of the
// same format. CONVEYOR_FUZZ_SECONDS sets the duration; the seed changes per run (fuzz_run.h).
#include <spng.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "fuzz_decode.h"
#include "fuzz_run.h"
#include "jpeg_encode.h"

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes encode_png(int width, int height, int bit_depth, int color_type, bool interlaced) {
  static const int kChannels[] = {1, 0, 3, 1, 2, 0, 4};
  const std::size_t row_bits = std::size_t(width) * kChannels[color_type] * bit_depth;
  Bytes rows((row_bits + 7) / 8 * height);
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = std::uint8_t(i * 37 + i / 11);
  spng_ctx* ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  spng_ihdr ihdr{std::uint32_t(width),
                 std::uint32_t(height),
                 std::uint8_t(bit_depth),
                 std::uint8_t(color_type),
                 0,
                 0,
                 std::uint8_t(interlaced ? 1 : 0)};
  spng_set_ihdr(ctx, &ihdr);
  spng_plte plte{};
  plte.n_entries = 1u << (bit_depth < 8 ? bit_depth : 8);
  for (std::uint32_t i = 0; i < plte.n_entries; ++i)
    plte.entries[i] = {std::uint8_t(i), std::uint8_t(255 - i), std::uint8_t(i * 7), 255};
  if (color_type == 3) spng_set_plte(ctx, &plte);
  if (color_type == 3) {
    spng_trns trns{};
    trns.n_type3_entries = 2;
    trns.type3_alpha[0] = 0;
    trns.type3_alpha[1] = 128;
    spng_set_trns(ctx, &trns);
  }
  CHECK(spng_encode_image(ctx, rows.data(), rows.size(), SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) == 0);
  std::size_t size = 0;
  int error = 0;
  auto* buffer = static_cast<std::uint8_t*>(spng_get_png_buffer(ctx, &size, &error));
  Bytes png(buffer, buffer + size);
  std::free(buffer);
  spng_ctx_free(ctx);
  return png;
}

std::vector<Bytes> make_seeds() {
  using conveyor_test::encode_libjpeg;
  using conveyor_test::EncodeSpec;
  using conveyor_test::pattern;
  std::vector<Bytes> seeds;
  EncodeSpec s420;  // 4:2:0 baseline
  EncodeSpec s444;
  s444.h_samp = s444.v_samp = 1;
  s444.progressive = true;
  EncodeSpec s422;
  s422.v_samp = 1;
  s422.restart_rows = 1;
  s422.optimize = true;
  EncodeSpec s411;
  s411.h_samp = 4;
  s411.v_samp = 1;
  seeds.push_back(encode_libjpeg(pattern(37, 29, 3), 37, 29, 3, s420));
  seeds.push_back(encode_libjpeg(pattern(24, 40, 3), 24, 40, 3, s444));
  seeds.push_back(encode_libjpeg(pattern(50, 17, 3), 50, 17, 3, s422));
  seeds.push_back(encode_libjpeg(pattern(33, 16, 3), 33, 16, 3, s411));
  seeds.push_back(encode_libjpeg(pattern(19, 23, 1), 19, 23, 1, s444));
  seeds.push_back(encode_libjpeg(pattern(16, 9, 4), 16, 9, 4, s420));
  seeds.push_back(encode_png(21, 13, 8, 3, false));   // palette (VOC masks): the plain path
  seeds.push_back(encode_png(21, 13, 8, 2, false));   // RGB: the plain path
  seeds.push_back(encode_png(9, 11, 2, 0, false));    // 2-bit gray: libspng
  seeds.push_back(encode_png(12, 10, 16, 6, false));  // 16-bit RGBA: libspng
  seeds.push_back(encode_png(17, 15, 8, 4, true));    // interlaced gray+alpha: libspng
  seeds.push_back(encode_png(10, 10, 4, 3, true));    // interlaced 4-bit palette
  return seeds;
}

const std::vector<std::string> kFragments = {
    "\xFF\xD8", "\xFF\xD9", "\xFF\xDA", "\xFF\xDB", "\xFF\xC0",
    "\xFF\xC2", "\xFF\xC4", "\xFF\xDD", "\xFF\xD0", "\xFF\xE1",
    "\xFF",     "\x00",     "IDAT",     "IEND",     "PLTE",
    "tRNS",     "IHDR",     "\x7F\xFF", "\xFF\xFF", "\x00\x00\x00\x00",
};

Bytes mutate(Bytes input, const std::vector<Bytes>& corpus, std::mt19937_64& rng) {
  const int steps = 1 + static_cast<int>(rng() % 4);
  for (int s = 0; s < steps; ++s) {
    const std::size_t at = input.empty() ? 0 : rng() % (input.size() + 1);
    switch (rng() % 8) {
      case 0:
      case 1:
        if (at < input.size()) input[at] = std::uint8_t(rng());
        break;
      case 2:
        if (at < input.size()) input[at] ^= std::uint8_t(1u << (rng() % 8));
        break;
      case 3:
        input.insert(input.begin() + at, std::uint8_t(rng()));
        break;
      case 4:
        if (at < input.size())
          input.erase(input.begin() + at,
                      input.begin() + std::min(input.size(), at + 1 + rng() % 16));
        break;
      case 5: {
        const std::string& f = kFragments[rng() % kFragments.size()];
        input.insert(input.begin() + at, f.begin(), f.end());
        break;
      }
      case 6:
        if (at < input.size()) input.resize(at);  // truncation
        break;
      default: {
        // Splice a run of another input of the same format at the same offset.
        const Bytes& other = corpus[rng() % corpus.size()];
        if (input.empty() || other.size() < 16 || other[0] != input[0] || at >= other.size()) break;
        const std::size_t n = std::min(other.size() - at, std::size_t(1 + rng() % 64));
        for (std::size_t i = 0; i < n && at + i < input.size(); ++i) input[at + i] = other[at + i];
      }
    }
  }
  return input;
}

Bytes read_test_file(const char* name) {
  std::ifstream file(std::string(CONVEYOR_TEST_DATA) + "/" + name, std::ios::binary);
  CHECK(file.good());
  return Bytes(std::istreambuf_iterator<char>(file), {});
}

conveyor::Image decode(const Bytes& jpeg, const conveyor::codecs::DecodeOptions& options) {
  conveyor::codecs::ImageDecoder decoder;
  return decoder.decode(jpeg.data(), jpeg.size(), options);
}

}  // namespace

// Found by this fuzzer: a warning ("corrupt data") followed by a fatal error ("two SOF
// markers"). TurboJPEG reports the fatal error as a warning too, and accept_warnings returned
// the half-decoded image; it must fail as the crop and Pillow do.
TEST_CASE("accept_warnings does not accept a fatal error that follows a warning") {
  const Bytes jpeg = read_test_file("fatal_after_warning.jpg");
  conveyor::codecs::DecodeOptions options;
  options.mode = conveyor::ColorMode::kRgb;
  options.accept_warnings = true;
  CHECK_THROWS_KIND(decode(jpeg, options), conveyor::ErrorKind::kDecode);
  options.crop = {26, 5, 16, 11};
  CHECK_THROWS_KIND(decode(jpeg, options), conveyor::ErrorKind::kDecode);
}

// Found by this fuzzer: a progressive file with incomplete AC scans (a valid file; Pillow
// decodes it like the full decode) is block-smoothed, and crops missed the smoothing context.
TEST_CASE("crops of a block-smoothed progressive JPEG equal the full decode") {
  const Bytes jpeg = read_test_file("progressive_smoothed.jpg");
  conveyor::codecs::DecodeOptions options;
  options.mode = conveyor::ColorMode::kRgb;
  const conveyor::Image full = decode(jpeg, options);
  for (const conveyor::codecs::CropRegion crop :
       {conveyor::codecs::CropRegion{13, 37, 4, 2}, conveyor::codecs::CropRegion{12, 0, 12, 40},
        conveyor::codecs::CropRegion{1, 3, 9, 30}}) {
    options.crop = crop;
    CHECK(conveyor_fuzz::crop_matches(full, decode(jpeg, options), crop.x, crop.y));
  }
}

TEST_CASE("fuzzing the JPEG and PNG decoders finds no crash and no crop/full disagreement") {
  const double seconds = conveyor_test::fuzz_seconds();
  std::mt19937_64 rng(conveyor_test::fuzz_seed("test_decode_fuzz"));
  std::vector<Bytes> corpus = make_seeds();
  const std::size_t seeds = corpus.size();
  for (const Bytes& seed : corpus) conveyor_fuzz::fuzz_decode_one_input(seed.data(), seed.size());
  const auto start = std::chrono::steady_clock::now();
  std::size_t runs = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    for (int i = 0; i < 64; ++i, ++runs) {
      // Mostly mutate the seeds themselves: deeply mutated images rarely reach the decoder.
      const Bytes& parent = corpus[rng() % 2 ? rng() % seeds : rng() % corpus.size()];
      Bytes input = mutate(parent, corpus, rng);
      if (input.size() > 65536) input.resize(65536);
      conveyor_fuzz::fuzz_decode_one_input(input.data(), input.size());
      if (rng() % 32 == 0 && corpus.size() < 256) corpus.push_back(std::move(input));
    }
  }
  std::printf("fuzzed %zu inputs in %.1f s\n", runs, seconds);
  CHECK(runs > 0);
}

TEST_MAIN()
