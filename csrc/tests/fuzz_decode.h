// The image decode fuzz target: any bytes must give either an image or a conveyor::Error, never a
// crash, hang, leak or out-of-bounds access (decodes land in buffers of exactly the reported
// shape, so ASan sees any overrun). For JPEGs it also checks what jpeg.h promises: a crop
// equals the same rectangle of the full decode at the same scale, and fails exactly when the
// full decode fails. Options (mode, DCT scale, crop, fast, accept_warnings) come from a hash
// of the input, so the fuzzer explores them along with the bytes.
//
// Finding (fixed in jpeg.cpp): after a warning, TurboJPEG reported a later fatal error as a
// warning, so accept_warnings returned a half-decoded image where the crop path failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "conveyor/codecs/decode_image.h"
#include "conveyor/codecs/jpeg.h"
#include "conveyor/core/error.h"
#include "conveyor/core/image.h"

namespace conveyor_fuzz {

using conveyor::ColorMode;
using conveyor::Image;
using conveyor::codecs::DecodeOptions;
using conveyor::codecs::ImageDecoder;

// A broken promise: say which and with what options, then abort. libFuzzer saves the input
// itself; for the CTest driver, CONVEYOR_FUZZ_DUMP=<path> writes it there.
[[noreturn]] inline void fail(const std::uint8_t* data, std::size_t size, const char* what,
                              const DecodeOptions* options = nullptr,
                              const std::string& error = {}) {
  std::fprintf(stderr, "fuzz_decode: %s\n", what);
  if (const char* path = std::getenv("CONVEYOR_FUZZ_DUMP")) {
    if (FILE* file = std::fopen(path, "wb")) {
      std::fwrite(data, 1, size, file);
      std::fclose(file);
    }
  }
  if (options)
    std::fprintf(stderr,
                 "  mode %d, scale %d/%d, fast %d, accept_warnings %d, crop x %d y %d w %d h %d\n"
                 "  error: %s\n",
                 int(options->mode), options->scale.num, options->scale.denom, int(options->fast),
                 int(options->accept_warnings), options->crop.x, options->crop.y,
                 options->crop.width, options->crop.height, error.c_str());
  std::abort();
}

// Small enough that a fuzzed header cannot make the harness allocate gigabytes.
constexpr std::uint64_t kFuzzMaxPixels = std::uint64_t(1) << 22;

struct Outcome {
  bool shape_ok = false;  // output_shape() accepted the options
  bool ok = false;        // and decode() succeeded
  Image image;
  std::string error;  // the conveyor::Error's message when !ok
};

inline Outcome try_decode(ImageDecoder& decoder, const std::uint8_t* data, std::size_t size,
                          const DecodeOptions& options) {
  Outcome outcome;
  try {
    outcome.image = Image::allocate(decoder.output_shape(data, size, options));
    outcome.shape_ok = true;
    decoder.decode(data, size, options, outcome.image.view());
    outcome.ok = true;
  } catch (const conveyor::Error& e) {
    outcome.error = e.what();
  }
  return outcome;
}

// The rectangle (x, y, w, h) of `full` equals `crop` byte for byte.
inline bool crop_matches(const Image& full, const Image& crop, int x, int y) {
  const auto& fs = full.shape();
  const auto& cs = crop.shape();
  if (fs.channels != cs.channels || fs.sample_bytes != cs.sample_bytes) return false;
  const std::size_t pixel = std::size_t(fs.channels) * fs.sample_bytes;
  for (int r = 0; r < cs.height; ++r)
    if (std::memcmp(full.view().row(y + r) + std::size_t(x) * pixel, crop.view().row(r),
                    cs.row_bytes()) != 0)
      return false;
  return true;
}

inline int fuzz_decode_one_input(const std::uint8_t* data, std::size_t size) {
  using namespace conveyor::codecs;
  static thread_local ImageDecoder decoder;
  std::uint64_t hash = 1469598103934665603ull ^ size;  // FNV-1a over the first bytes
  for (std::size_t i = 0; i < size && i < 96; ++i) hash = (hash ^ data[i]) * 1099511628211ull;
  auto pick = [&hash](std::uint64_t n) {
    hash = hash * 6364136223846793005ull + 1442695040888963407ull;
    return (hash >> 33) % n;
  };

  const ImageFormat format = detect_image_format(data, size);
  DecodeOptions options;
  options.max_pixels = kFuzzMaxPixels;
  if (format != ImageFormat::kJpeg) {
    // PNG (and anything else, which must be refused cleanly): every colour mode.
    static const ColorMode kModes[] = {ColorMode::kUnchanged, ColorMode::kGray,
                                       ColorMode::kGrayAlpha, ColorMode::kRgb,
                                       ColorMode::kRgbAlpha};
    options.mode = kModes[pick(5)];
    const Outcome outcome = try_decode(decoder, data, size, options);
    if (format == ImageFormat::kUnknown && outcome.shape_ok)
      fail(data, size, "an unknown format was accepted");
    return 0;
  }

  const int orientation = jpeg_exif_orientation(data, size);
  if (orientation < 1 || orientation > 8) fail(data, size, "EXIF orientation outside 1..8");
  static const ColorMode kJpegModes[] = {ColorMode::kUnchanged, ColorMode::kRgb, ColorMode::kGray};
  options.mode = kJpegModes[pick(3)];
  static const std::vector<ScalingFactor> kScales = jpeg_scaling_factors();
  options.scale = pick(3) == 0 ? kScales[pick(kScales.size())] : ScalingFactor{};
  options.fast = pick(4) == 0;
  options.accept_warnings = pick(3) == 0;
  const Outcome full = try_decode(decoder, data, size, options);
  if (!full.shape_ok) return 0;
  const int height = full.image.shape().height, width = full.image.shape().width;
  if (height <= 0 || width <= 0) fail(data, size, "an empty output shape");

  // A crop inside the scaled image: edges, single pixels and interior windows.
  DecodeOptions cropped = options;
  cropped.crop.x = int(pick(std::uint64_t(width)));
  cropped.crop.y = int(pick(std::uint64_t(height)));
  cropped.crop.width = 1 + int(pick(std::uint64_t(width - cropped.crop.x)));
  cropped.crop.height = 1 + int(pick(std::uint64_t(height - cropped.crop.y)));
  const Outcome crop = try_decode(decoder, data, size, cropped);
  if (!crop.shape_ok) fail(data, size, "a crop inside the image was refused", &cropped, crop.error);
  if (crop.ok != full.ok)
    fail(data, size,
         full.ok ? "the crop failed, the full decode did not"
                 : "the crop decoded, the full decode failed",
         &cropped, full.ok ? crop.error : full.error);
  // With accept_warnings the pixels libjpeg-turbo makes up after damage depend on which rows
  // were decoded or skipped, so only the verdict is compared there.
  if (full.ok && !options.accept_warnings &&
      !crop_matches(full.image, crop.image, cropped.crop.x, cropped.crop.y))
    fail(data, size, "the crop differs from the same rectangle of the full decode", &cropped);
  return 0;
}

}  // namespace conveyor_fuzz
