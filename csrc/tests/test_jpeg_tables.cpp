// A JPEG's pixels never depend on the images a decoder saw before it. libjpeg keeps the
// quantization and Huffman tables of earlier images in its decompressor: a file without DQT
// (invalid) must fail as on a fresh decoder, and a file without DHT (Motion-JPEG: the standard
// tables apply) must decode with the standard tables, whatever came first, on the full
// (TurboJPEG) and the crop (libjpeg region) path, at every scale.
#include <string>
#include <vector>

#include "check.h"
#include "conveyor/codecs/jpeg.h"
#include "conveyor/core/error.h"
#include "jpeg_encode.h"

using namespace conveyor;
using namespace conveyor::codecs;
using conveyor_test::encode_libjpeg;
using conveyor_test::EncodeSpec;
using conveyor_test::pattern;
using conveyor_test::without_segments;

namespace {

using Bytes = std::vector<std::uint8_t>;

Image decode(JpegDecoder& decoder, const Bytes& jpeg, const JpegDecodeOptions& options) {
  const ImageShape shape =
      decoder.output_shape(decoder.read_header(jpeg.data(), jpeg.size()), options);
  Image image = Image::allocate(shape);
  decoder.decode(jpeg.data(), jpeg.size(), options, image.view());
  return image;
}

bool same(const Image& a, const Image& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.shape().bytes(), b.data());
}

struct Kind {
  const char* name;
  Bytes jpeg;
};

// Every other kind of JPEG, each leaving different tables behind.
std::vector<Kind> earlier_kinds() {
  const int w = 61, h = 43;
  const Bytes rgb = pattern(w, h, 3), gray = pattern(w, h, 1), cmyk = pattern(w, h, 4);
  return {
      {"baseline standard tables", encode_libjpeg(rgb, w, h, 3, {2, 2, false, 0, false, 90})},
      {"optimized tables q30", encode_libjpeg(rgb, w, h, 3, {2, 2, false, 0, true, 30})},
      {"optimized tables q98 4:4:4", encode_libjpeg(rgb, w, h, 3, {1, 1, false, 0, true, 98})},
      {"progressive", encode_libjpeg(rgb, w, h, 3, {2, 2, true, 0, true, 75})},
      {"restart markers", encode_libjpeg(rgb, w, h, 3, {2, 1, false, 1, true, 60})},
      {"gray optimized", encode_libjpeg(gray, w, h, 1, {1, 1, false, 0, true, 50})},
      {"CMYK optimized", encode_libjpeg(cmyk, w, h, 4, {1, 1, false, 0, true, 40})},
  };
}

// The options each case is decoded with: full, cropped, scaled, scaled and cropped.
std::vector<JpegDecodeOptions> decode_options() {
  std::vector<JpegDecodeOptions> result(4);
  result[1].crop = {5, 3, 30, 20};
  result[2].scale = {1, 2};
  result[3].scale = {5, 4};
  result[3].crop = {9, 11, 40, 30};
  return result;
}

// Decodes `earlier` then `target` on one decoder; it must act as a fresh decoder does.
void check_after(const Kind& earlier, const char* target_name, const Bytes& target,
                 const Image* expected, const JpegDecodeOptions& options) {
  JpegDecoder decoder;
  JpegDecodeOptions earlier_options = options;
  earlier_options.mode = ColorMode::kRgb;
  decode(decoder, earlier.jpeg, earlier_options);
  const std::string where = std::string(target_name) + " after " + earlier.name +
                            (options.crop.empty() ? " (full)" : " (crop)") + " scale " +
                            std::to_string(options.scale.num) + "/" +
                            std::to_string(options.scale.denom);
  try {
    const Image image = decode(decoder, target, options);
    if (!expected) {
      std::fprintf(stderr, "%s: decoded, expected a DecodeError\n", where.c_str());
      CHECK(false);
    } else if (!same(image, *expected)) {
      std::fprintf(stderr, "%s: pixels differ from a fresh decoder's\n", where.c_str());
      CHECK(false);
    }
  } catch (const Error& error) {
    const bool ok = !expected && error.kind() == ErrorKind::kDecode &&
                    std::string(error.what()).find("Quantization table 0x00 was not defined") !=
                        std::string::npos;
    if (!ok) std::fprintf(stderr, "%s: unexpected error: %s\n", where.c_str(), error.what());
    CHECK(ok);
  }
}

}  // namespace

TEST_CASE("a JPEG without DQT fails after every other kind of JPEG, full and cropped") {
  const Bytes no_dqt =
      without_segments(encode_libjpeg(pattern(48, 40, 3), 48, 40, 3, {2, 2, false, 0}), 0xDB);
  for (const JpegDecodeOptions& options : decode_options()) {
    JpegDecoder fresh;
    CHECK_THROWS_KIND(decode(fresh, no_dqt, options), ErrorKind::kDecode);
    for (const Kind& earlier : earlier_kinds())
      check_after(earlier, "no DQT", no_dqt, nullptr, options);
  }
}

TEST_CASE("a JPEG without DHT decodes with the standard tables after every other kind") {
  // Encoded with the standard tables, so the file with DHT is the reference.
  for (const EncodeSpec& spec : {EncodeSpec{2, 2, false, 0}, EncodeSpec{1, 1, false, 2}}) {
    const Bytes with_dht = encode_libjpeg(pattern(48, 40, 3), 48, 40, 3, spec);
    const Bytes no_dht = without_segments(with_dht, 0xC4);
    CHECK(no_dht.size() < with_dht.size());
    for (const JpegDecodeOptions& options : decode_options()) {
      JpegDecoder fresh;
      const Image expected = decode(fresh, with_dht, options);
      for (const Kind& earlier : earlier_kinds())
        check_after(earlier, "no DHT", no_dht, &expected, options);
    }
  }
}

TEST_CASE("every kind decodes the same after every other kind") {
  const std::vector<Kind> kinds = earlier_kinds();
  for (const JpegDecodeOptions& options : decode_options()) {
    for (const Kind& target : kinds) {
      JpegDecodeOptions rgb = options;
      rgb.mode = ColorMode::kRgb;
      JpegDecoder fresh;
      const Image expected = decode(fresh, target.jpeg, rgb);
      for (const Kind& earlier : kinds)
        check_after(earlier, target.name, target.jpeg, &expected, rgb);
    }
  }
}

TEST_MAIN()
