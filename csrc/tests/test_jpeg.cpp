// JpegDecoder against TurboJPEG's own compressor/decompressor, and its error paths.
#include <turbojpeg.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include <jpeglib.h>
}

#include "check.h"
#include "conveyor/codecs/decode_image.h"
#include "conveyor/codecs/jpeg.h"
#include "conveyor/core/error.h"
#include "jpeg_encode.h"

using namespace conveyor;
using namespace conveyor::codecs;
using conveyor_test::encode_libjpeg;
using conveyor_test::EncodeSpec;
using conveyor_test::pattern;

namespace {

// Encodes with TurboJPEG (TJPF_RGB / TJPF_GRAY / TJPF_CMYK -> YCCK).
std::vector<std::uint8_t> encode(const std::vector<std::uint8_t>& pixels, int width, int height,
                                 int pixel_format, int subsampling) {
  tjhandle handle = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int result = tjCompress2(handle, pixels.data(), width, 0, height, pixel_format, &jpeg,
                                 &size, subsampling, 92, 0);
  CHECK(result == 0);
  std::vector<std::uint8_t> out(jpeg, jpeg + size);
  tjFree(jpeg);
  tjDestroy(handle);
  return out;
}

// libjpeg-turbo's own decode, for exact comparison.
std::vector<std::uint8_t> reference(const std::vector<std::uint8_t>& jpeg, int width, int height,
                                    int pixel_format) {
  tjhandle handle = tjInitDecompress();
  std::vector<std::uint8_t> out(std::size_t(width) * height * tjPixelSize[pixel_format]);
  CHECK(tjDecompress2(handle, jpeg.data(), jpeg.size(), out.data(), width, 0, height, pixel_format,
                      TJFLAG_ACCURATEDCT) == 0);
  tjDestroy(handle);
  return out;
}

Image decode(JpegDecoder& decoder, const std::vector<std::uint8_t>& jpeg,
             const JpegDecodeOptions& options) {
  const ImageShape shape =
      decoder.output_shape(decoder.read_header(jpeg.data(), jpeg.size()), options);
  Image image = Image::allocate(shape);
  decoder.decode(jpeg.data(), jpeg.size(), options, image.view());
  return image;
}

bool equal(const Image& image, const std::vector<std::uint8_t>& expected) {
  return image.shape().bytes() == expected.size() &&
         std::equal(expected.begin(), expected.end(), image.data());
}

// True when `crop` equals rows y..y+h, columns x..x+w of `full` (same channels).
bool same_region(const Image& crop, const Image& full, const CropRegion& region) {
  const std::size_t bytes = std::size_t(region.width) * crop.shape().channels;
  for (int y = 0; y < region.height; ++y)
    if (!std::equal(crop.view().row(y), crop.view().row(y) + bytes,
                    full.view().row(y + region.y) + std::size_t(region.x) * crop.shape().channels))
      return false;
  return true;
}

const auto kRgb = pattern(67, 45, 3);
const auto kJpeg = encode(kRgb, 67, 45, TJPF_RGB, TJSAMP_420);

}  // namespace

TEST_CASE("header reports size, components and subsampling") {
  JpegDecoder decoder;
  const JpegHeader header = decoder.read_header(kJpeg.data(), kJpeg.size());
  CHECK(header.width == 67 && header.height == 45 && header.components == 3);
  CHECK(header.subsampling == JpegSubsampling::k420);
  CHECK(header.colorspace == JpegColorspace::kYCbCr);
  const auto k422 = encode(kRgb, 67, 45, TJPF_RGB, TJSAMP_422);
  CHECK(decoder.read_header(k422.data(), k422.size()).subsampling == JpegSubsampling::k422);
}

TEST_CASE("rgb decode equals libjpeg-turbo's for every subsampling") {
  JpegDecoder decoder;
  for (int subsampling : {TJSAMP_444, TJSAMP_422, TJSAMP_420}) {
    const auto jpeg = encode(kRgb, 67, 45, TJPF_RGB, subsampling);
    CHECK(equal(decode(decoder, jpeg, {}), reference(jpeg, 67, 45, TJPF_RGB)));
  }
}

TEST_CASE("decodes into a strided destination without touching the padding") {
  JpegDecoder decoder;
  const std::size_t stride = 67 * 3 + 13;
  std::vector<std::uint8_t> memory(stride * 45, 0xAB);
  decoder.decode(kJpeg.data(), kJpeg.size(), {}, ImageView{memory.data(), {45, 67, 3, 1}, stride});
  const auto expected = reference(kJpeg, 67, 45, TJPF_RGB);
  bool rows_equal = true, padding_intact = true;
  for (int y = 0; y < 45; ++y) {
    rows_equal &= std::equal(expected.begin() + y * 201, expected.begin() + (y + 1) * 201,
                             memory.begin() + y * stride);
    for (std::size_t x = 201; x < stride; ++x) padding_intact &= memory[y * stride + x] == 0xAB;
  }
  CHECK(rows_equal);
  CHECK(padding_intact);
}

TEST_CASE("DCT scaling and the smallest-scale helper") {
  JpegDecoder decoder;
  JpegDecodeOptions options;
  options.scale = {1, 2};
  const Image half = decode(decoder, kJpeg, options);
  CHECK(half.shape() == (ImageShape{23, 34, 3, 1}));
  CHECK(equal(half, reference(kJpeg, 34, 23, TJPF_RGB)));
  CHECK(smallest_scale_at_least(375, 500, 180, 180).num == 1);
  CHECK(smallest_scale_at_least(375, 500, 180, 180).denom == 2);
  CHECK(smallest_scale_at_least(375, 500, 1000, 10).num == 1);
  options.scale = {1, 3};
  CHECK_THROWS_KIND(decoder.output_shape(decoder.read_header(kJpeg.data(), kJpeg.size()), options),
                    ErrorKind::kInvalidArgument);
}

TEST_CASE("crop equals the same region of the full decode") {
  JpegDecoder decoder;
  const Image full = decode(decoder, kJpeg, {});
  JpegDecodeOptions options;
  options.crop = {19, 7, 30, 21};
  const Image crop = decode(decoder, kJpeg, options);
  CHECK(crop.shape() == (ImageShape{21, 30, 3, 1}));
  bool same = true;
  for (int y = 0; y < 21; ++y)
    same &=
        std::equal(crop.view().row(y), crop.view().row(y) + 90, full.view().row(y + 7) + 19 * 3);
  CHECK(same);
  options.crop = {60, 0, 10, 5};  // past the right edge
  CHECK_THROWS_KIND(decode(decoder, kJpeg, options), ErrorKind::kInvalidArgument);
}

// Every crop's pixels must equal the same rectangle of the full decode (decoded whole by
// TurboJPEG), at every DCT scale, for every layout libjpeg-turbo treats differently.
TEST_CASE("region decode equals the full decode: subsamplings, progressive, restarts, scales") {
  struct Layout {
    const char* name;
    int components;
    EncodeSpec spec;
  };
  const Layout layouts[] = {
      {"4:2:0", 3, {2, 2, false, 0}},
      {"4:2:2", 3, {2, 1, false, 0}},
      {"4:4:4", 3, {1, 1, false, 0}},
      {"4:4:0", 3, {1, 2, false, 0}},
      {"4:1:1", 3, {4, 1, false, 0}},
      {"4:2:0 progressive", 3, {2, 2, true, 0}},
      {"4:2:2 progressive", 3, {2, 1, true, 0}},
      {"4:2:0 restarts", 3, {2, 2, false, 1}},
      {"4:4:4 progressive restarts", 3, {1, 1, true, 2}},
      {"gray", 1, {1, 1, false, 0}},
      {"gray progressive", 1, {1, 1, true, 0}},
      {"CMYK 2x2 first", 4, {2, 2, false, 0}},
      {"CMYK 4:4:4", 4, {1, 1, false, 0}},
  };
  const int sizes[][2] = {{203, 157}, {64, 48}, {17, 9}, {500, 375}};
  // The last two: fast IDCT and merged (non-fancy) upsampling, as TJFLAG_FASTDCT/FASTUPSAMPLE.
  const ScalingFactor scales[] = {{1, 1}, {1, 2}, {3, 8}, {1, 4}, {1, 8}, {5, 4}, {1, 1}, {1, 2}};
  std::mt19937 random(7);
  JpegDecoder decoder;
  for (const Layout& layout : layouts) {
    for (const auto& size : sizes) {
      const int width = size[0], height = size[1];
      const auto jpeg = encode_libjpeg(pattern(width, height, layout.components), width, height,
                                       layout.components, layout.spec);
      for (const ColorMode mode : {ColorMode::kRgb, ColorMode::kUnchanged, ColorMode::kGray}) {
        for (const ScalingFactor& scale : scales) {
          JpegDecodeOptions options;
          options.mode = mode;
          options.scale = scale;
          options.fast = &scale - scales >= 6;
          const Image full = decode(decoder, jpeg, options);
          const int w = full.shape().width, h = full.shape().height;
          std::vector<CropRegion> regions = {{0, 0, w, h},
                                             {0, 0, 1, 1},
                                             {w - 1, h - 1, 1, 1},
                                             {w / 3, h / 3, w / 3 + 1, h / 3 + 1}};
          for (int i = 0; i < 20; ++i) {  // the first 8 narrow: edges next to iMCU boundaries
            const int cw = 1 + int(random() % unsigned(i < 8 ? std::min(w, 4) : w));
            const int ch = 1 + int(random() % unsigned(h));
            regions.push_back({int(random() % unsigned(w - cw + 1)),
                               int(random() % unsigned(h - ch + 1)), cw, ch});
          }
          for (const CropRegion& region : regions) {
            options.crop = region;
            const Image crop = decode(decoder, jpeg, options);
            const bool same = crop.shape().width == region.width &&
                              crop.shape().height == region.height &&
                              same_region(crop, full, region);
            if (!same)
              std::fprintf(stderr, "%s %dx%d mode %d scale %d/%d%s crop (%d, %d, %d, %d) differs\n",
                           layout.name, width, height, int(mode), scale.num, scale.denom,
                           options.fast ? " fast" : "", region.x, region.y, region.width,
                           region.height);
            CHECK(same);
          }
        }
      }
    }
  }
}

// fast=True and tiny images: TurboJPEG 2.1 picks its own factor when another gives the same
// output size (a 1x1 image at 1/2 decodes at 1/1, a 2x2 one at 5/4 at 3/2), and its reused
// handle gave upscaled fast decodes that changed from run to run. Every crop must equal the
// same rectangle of the full decode, images interleaved on one decoder, at every factor.
TEST_CASE("fast and tiny: crops equal the full decode at every factor, interleaved images") {
  struct Source {
    int width, height;
    EncodeSpec spec;
  };
  const Source sources[] = {{1, 1, {2, 2}},  {2, 2, {1, 1}},     {2, 2, {2, 2}},
                            {5, 3, {2, 1}},  {240, 180, {2, 2}}, {240, 180, {2, 1, true}},
                            {96, 72, {1, 1}}};
  std::vector<std::vector<std::uint8_t>> files;
  for (const Source& source : sources)
    files.push_back(encode_libjpeg(pattern(source.width, source.height, 3), source.width,
                                   source.height, 3, source.spec));
  std::mt19937 random(11);
  JpegDecoder decoder;
  for (const ScalingFactor& scale : jpeg_scaling_factors()) {
    for (const bool fast : {true, false}) {
      for (std::size_t i = 0; i < files.size(); ++i) {
        JpegDecodeOptions options;
        options.scale = scale;
        options.fast = fast;
        const Image full = decode(decoder, files[i], options);
        const int w = full.shape().width, h = full.shape().height;
        for (int k = 0; k < 4; ++k) {
          const auto& other = files[random() % files.size()];  // another image in between
          decode(decoder, other, options);
          const int cw = 1 + int(random() % unsigned(w)), ch = 1 + int(random() % unsigned(h));
          options.crop = {int(random() % unsigned(w - cw + 1)),
                          int(random() % unsigned(h - ch + 1)), cw, ch};
          const bool same = same_region(decode(decoder, files[i], options), full, options.crop);
          if (!same)
            std::fprintf(stderr, "%dx%d scale %d/%d%s crop (%d, %d, %d, %d) differs\n",
                         sources[i].width, sources[i].height, scale.num, scale.denom,
                         fast ? " fast" : "", options.crop.x, options.crop.y, cw, ch);
          CHECK(same);
          options.crop = {};
          CHECK(same_region(decode(decoder, files[i], options), full, {0, 0, w, h}));
        }
      }
    }
  }
}

TEST_CASE("region decode errors: truncation after the region, corrupt data, bad headers") {
  JpegDecoder decoder;
  const auto big = encode_libjpeg(pattern(160, 160, 3), 160, 160, 3, {2, 2, false, 0});
  const std::vector<std::uint8_t> truncated(big.begin(), big.begin() + big.size() * 3 / 4);
  JpegDecodeOptions options;
  options.crop = {8, 8, 16, 16};  // inside the intact part: the missing end is still reported
  try {
    decode(decoder, truncated, options);
    CHECK(false);
  } catch (const Error& error) {
    CHECK(error.kind() == ErrorKind::kDecode);
    CHECK(std::string(error.what()).find("Premature end of JPEG file") != std::string::npos);
    CHECK(std::string(error.what()).find("accept_warnings") != std::string::npos);
  }
  options.accept_warnings = true;
  JpegDecodeOptions whole;
  whole.accept_warnings = true;
  const Image completed = decode(decoder, truncated, whole);
  CHECK(same_region(decode(decoder, truncated, options), completed, options.crop));
  options.crop = {0, 140, 160, 20};  // inside the missing part: gray, as the full decode
  CHECK(same_region(decode(decoder, truncated, options), completed, options.crop));
  // Trailing bytes after the end-of-image marker are not truncation.
  std::vector<std::uint8_t> trailing = big;
  trailing.insert(trailing.end(), 100, 0x00);
  options.accept_warnings = false;
  options.crop = {8, 8, 16, 16};
  CHECK(decode(decoder, trailing, options).shape().width == 16);
  // Entropy-coded garbage inside the region: libjpeg-turbo's warning, as in a full decode.
  std::vector<std::uint8_t> corrupt = big;
  for (std::size_t i = big.size() / 3; i < big.size() / 3 + 40; ++i) corrupt[i] = 0xFF;
  options.crop = {0, 0, 160, 160};
  CHECK_THROWS_KIND(decode(decoder, corrupt, options), ErrorKind::kDecode);
  // The decoder is still good after errors.
  options.crop = {8, 8, 16, 16};
  CHECK(same_region(decode(decoder, big, options), decode(decoder, big, {}), options.crop));
}

// One rule for corrupt files: a crop fails (or warns) exactly when the full decode does,
// with the same message, also when the damage lies below or beside the crop.
TEST_CASE("a file is good or bad whatever the crop: damage after the region is reported") {
  const auto big = encode_libjpeg(pattern(160, 160, 3), 160, 160, 3, {2, 2, false, 0});
  const auto restarts = encode_libjpeg(pattern(160, 160, 3), 160, 160, 3, {2, 2, false, 1});
  using Bytes = std::vector<std::uint8_t>;
  const std::size_t end = big.size() - 2;  // the FF D9 end-of-image marker
  Bytes extraneous(big.begin(), big.begin() + std::ptrdiff_t(end));  // bytes before FF D9
  extraneous.insert(extraneous.end(), 64, 0x12);  // more than the bit buffer reads ahead
  extraneous.insert(extraneous.end(), {0xFF, 0xD9});
  Bytes premature(big.begin(), big.begin() + std::ptrdiff_t(end - end / 5));  // scan cut short
  premature.insert(premature.end(), {0xFF, 0xD9});
  Bytes bad_restart = restarts;  // a restart marker near the end renumbered
  for (std::size_t i = restarts.size() - 3; i > restarts.size() / 2; --i)
    if (bad_restart[i] == 0xFF && bad_restart[i + 1] >= 0xD0 && bad_restart[i + 1] <= 0xD7) {
      bad_restart[i + 1] = std::uint8_t(0xD0 + (bad_restart[i + 1] - 0xD0 + 3) % 8);
      break;
    }
  Bytes truncated(big.begin(), big.begin() + std::ptrdiff_t(big.size() * 3 / 4));
  const std::pair<const char*, const Bytes*> files[] = {{"extraneous bytes", &extraneous},
                                                        {"premature end", &premature},
                                                        {"bad restart", &bad_restart},
                                                        {"truncated", &truncated},
                                                        {"intact", &big}};
  for (const auto& [name, file] : files) {
    for (const ScalingFactor scale : {ScalingFactor{1, 1}, ScalingFactor{1, 2}}) {
      JpegDecoder decoder;
      JpegDecodeOptions options;
      options.scale = scale;
      std::string full_verdict = "ok";
      try {
        decode(decoder, *file, options);
      } catch (const Error& error) {
        full_verdict = error.what();
      }
      if ((file == &big) != (full_verdict == "ok"))
        std::fprintf(stderr, "%s at 1/%d: full decode \"%s\"\n", name, scale.denom,
                     full_verdict.c_str());
      CHECK((file == &big) == (full_verdict == "ok"));
      const int s = scale.scale(160);
      for (const CropRegion crop :
           {CropRegion{0, 0, 8, 8}, CropRegion{s - 8, 0, 8, 8}, CropRegion{0, s / 2, s, 4},
            CropRegion{s - 1, s - 1, 1, 1}, CropRegion{0, 0, s, s}}) {
        options.crop = crop;
        std::string verdict = "ok";
        try {
          decode(decoder, *file, options);
        } catch (const Error& error) {
          verdict = error.what();
        }
        if (verdict != full_verdict)
          std::fprintf(stderr, "%s crop (%d, %d, %d, %d) at 1/%d: \"%s\", full: \"%s\"\n", name,
                       crop.x, crop.y, crop.width, crop.height, scale.denom, verdict.c_str(),
                       full_verdict.c_str());
        CHECK(verdict == full_verdict);
      }
    }
  }
}

TEST_CASE("gray JPEGs and gray mode") {
  JpegDecoder decoder;
  const auto gray = encode(pattern(33, 17, 1), 33, 17, TJPF_GRAY, TJSAMP_GRAY);
  JpegDecodeOptions unchanged;
  unchanged.mode = ColorMode::kUnchanged;
  CHECK(decode(decoder, gray, unchanged).shape().channels == 1);
  CHECK(equal(decode(decoder, gray, unchanged), reference(gray, 33, 17, TJPF_GRAY)));
  CHECK(equal(decode(decoder, gray, {}), reference(gray, 33, 17, TJPF_RGB)));
  JpegDecodeOptions luma;
  luma.mode = ColorMode::kGray;
  CHECK(equal(decode(decoder, kJpeg, luma), reference(kJpeg, 67, 45, TJPF_GRAY)));
}

TEST_CASE("CMYK/YCCK: unchanged is Pillow's inverted CMYK, rgb is Pillow's conversion") {
  JpegDecoder decoder;
  const auto cmyk = encode(pattern(21, 11, 4), 21, 11, TJPF_CMYK, TJSAMP_444);
  CHECK(decoder.read_header(cmyk.data(), cmyk.size()).components == 4);
  const auto raw = reference(cmyk, 21, 11, TJPF_CMYK);
  JpegDecodeOptions unchanged;
  unchanged.mode = ColorMode::kUnchanged;
  const Image inverted = decode(decoder, cmyk, unchanged);
  bool ok = inverted.shape().channels == 4;
  for (std::size_t i = 0; ok && i < raw.size(); ++i) ok = inverted.data()[i] == 255 - raw[i];
  CHECK(ok);
  const Image rgb = decode(decoder, cmyk, {});
  const int k = raw[3], c = raw[0];
  const int t = (255 - c) * k + 128;
  CHECK(rgb.data()[0] == k - (((t >> 8) + t) >> 8));
}

TEST_CASE("errors: empty, not JPEG, truncated, pixel limit, wrong destination") {
  JpegDecoder decoder;
  CHECK_THROWS_KIND(decoder.read_header(nullptr, 0), ErrorKind::kDecode);
  const std::uint8_t text[] = "not a jpeg";
  CHECK_THROWS_KIND(decoder.read_header(text, sizeof(text)), ErrorKind::kDecode);
  const std::vector<std::uint8_t> truncated(kJpeg.begin(), kJpeg.begin() + kJpeg.size() * 2 / 3);
  CHECK_THROWS_KIND(decode(decoder, truncated, {}), ErrorKind::kDecode);
  JpegDecodeOptions accept;
  accept.accept_warnings = true;
  CHECK(decode(decoder, truncated, accept).shape() == (ImageShape{45, 67, 3, 1}));
  JpegDecodeOptions limited;
  limited.max_pixels = 100;
  CHECK_THROWS_KIND(decode(decoder, kJpeg, limited), ErrorKind::kDecode);
  Image wrong = Image::allocate({45, 66, 3, 1});
  CHECK_THROWS_KIND(decoder.decode(kJpeg.data(), kJpeg.size(), {}, wrong.view()),
                    ErrorKind::kInvalidArgument);
  const std::vector<std::uint8_t> header_only(kJpeg.begin(), kJpeg.begin() + 100);
  CHECK_THROWS_KIND(decode(decoder, header_only, {}), ErrorKind::kDecode);
  // The decoder is still good after errors.
  CHECK(equal(decode(decoder, kJpeg, {}), reference(kJpeg, 67, 45, TJPF_RGB)));
}

TEST_CASE("EXIF orientation is read from APP1") {
  std::vector<std::uint8_t> exif = {
      0xFF, 0xE1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0,    0,    'I',  'I',
      0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,                                      // TIFF, IFD at 8
      0x01, 0x00,                                                              // 1 entry
      0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,  // orientation 6
      0x00, 0x00, 0x00, 0x00};
  std::vector<std::uint8_t> jpeg(kJpeg.begin(), kJpeg.begin() + 2);
  jpeg.insert(jpeg.end(), exif.begin(), exif.end());
  jpeg.insert(jpeg.end(), kJpeg.begin() + 2, kJpeg.end());
  CHECK(jpeg_exif_orientation(jpeg.data(), jpeg.size()) == 6);
  CHECK(jpeg_exif_orientation(kJpeg.data(), kJpeg.size()) == 1);
  CHECK(jpeg_exif_orientation(jpeg.data(), 20) == 1);  // cut short: no orientation, no crash
}

TEST_CASE("decode_image dispatches by magic bytes") {
  CHECK(detect_image_format(kJpeg.data(), kJpeg.size()) == ImageFormat::kJpeg);
  const std::uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a'};
  CHECK(detect_image_format(gif, sizeof(gif)) == ImageFormat::kUnknown);
  ImageDecoder decoder;
  DecodeOptions options;
  options.mode = ColorMode::kRgb;
  CHECK(equal(decoder.decode(kJpeg.data(), kJpeg.size(), options),
              reference(kJpeg, 67, 45, TJPF_RGB)));
  CHECK_THROWS_KIND(decoder.decode(gif, sizeof(gif), options), ErrorKind::kDecode);
  CHECK_THROWS_KIND(decoder.decode(gif, 0, options), ErrorKind::kDecode);
}

TEST_MAIN()
