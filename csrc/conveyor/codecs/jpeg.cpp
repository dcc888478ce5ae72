#include "conveyor/codecs/jpeg.h"

#include <turbojpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "conveyor/codecs/jpeg_region.h"
#include "conveyor/codecs/pixel_limit.h"
#include "conveyor/codecs/turbojpeg_compat.h"
#include "conveyor/core/error.h"

namespace conveyor::codecs {
namespace {

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorKind::kDecode, "JPEG: " + message);
}

// libjpeg-turbo's message for an error, or for the warning that stopped (or, without
// accept_warnings, would have spoiled) the decode.
[[noreturn]] void fail_decode(bool error, const std::string& message) {
  if (error) fail("corrupt data: " + message);
  // With warnings fatal, libjpeg-turbo stopped at the first one: the image is incomplete.
  fail("truncated or corrupt data (libjpeg-turbo warning: " + message +
       "); pass accept_warnings=True to keep what libjpeg-turbo can decode");
}

// TurboJPEG 2.1 can leave its libjpeg object mid-header after an error (the next image then
// fails with "Bogus marker length"), so a handle that reported an error is replaced.
void* replace_handle(void* handle) {
  void* fresh = tj::create();
  if (!fresh) throw Error(ErrorKind::kRuntime, "JPEG: could not create a TurboJPEG handle");
  tj::destroy(handle);
  return fresh;
}

JpegColorspace to_colorspace(int tjcs) {
  switch (tjcs) {
    case TJCS_RGB:
      return JpegColorspace::kRgb;
    case TJCS_GRAY:
      return JpegColorspace::kGray;
    case TJCS_CMYK:
      return JpegColorspace::kCmyk;
    case TJCS_YCCK:
      return JpegColorspace::kYcck;
    default:
      return JpegColorspace::kYCbCr;
  }
}

JpegSubsampling to_subsampling(int tjsamp) {
  switch (tjsamp) {
    case TJSAMP_444:
      return JpegSubsampling::k444;
    case TJSAMP_422:
      return JpegSubsampling::k422;
    case TJSAMP_420:
      return JpegSubsampling::k420;
    case TJSAMP_GRAY:
      return JpegSubsampling::kGray;
    case TJSAMP_440:
      return JpegSubsampling::k440;
    case TJSAMP_411:
      return JpegSubsampling::k411;
#ifdef TJ_NUMINIT
    case TJSAMP_441:
      return JpegSubsampling::k441;
#endif
    default:
      return JpegSubsampling::kUnknown;
  }
}

bool is_cmyk(const JpegHeader& header) {
  return header.colorspace == JpegColorspace::kCmyk || header.colorspace == JpegColorspace::kYcck;
}

// Pillow: MULDIV255(a, b) rounded as in its Convert.c.
inline int muldiv255(int a, int b) {
  const int t = a * b + 128;
  return ((t >> 8) + t) >> 8;
}

// libjpeg-turbo gives Adobe CMYK as stored (inverted); Pillow's mode "CMYK" holds 255 - stored.
// Its convert("RGB") is then R = (255 - K) - (C * (255 - K)) / 255, clipped.
inline void cmyk_to_rgb(const std::uint8_t* stored, std::uint8_t* rgb) {
  const int nk = stored[3];
  for (int c = 0; c < 3; ++c) {
    const int value = nk - muldiv255(255 - stored[c], nk);
    rgb[c] = std::uint8_t(std::clamp(value, 0, 255));
  }
}

// Writes one row of `width` CMYK pixels as libjpeg-turbo decodes them in the requested mode.
void convert_cmyk_row(const std::uint8_t* src, ColorMode mode, std::uint8_t* dst, int width) {
  for (int x = 0; x < width; ++x, src += 4) {
    if (mode == ColorMode::kUnchanged) {
      for (int c = 0; c < 4; ++c) *dst++ = std::uint8_t(255 - src[c]);
    } else {
      std::uint8_t rgb[3];
      cmyk_to_rgb(src, rgb);
      if (mode == ColorMode::kRgb) {
        dst[0] = rgb[0], dst[1] = rgb[1], dst[2] = rgb[2];
        dst += 3;
      } else {  // Pillow: CMYK -> RGB -> L
        *dst++ = std::uint8_t((rgb[0] * 19595 + rgb[1] * 38470 + rgb[2] * 7471 + 0x8000) >> 16);
      }
    }
  }
}

}  // namespace

std::vector<ScalingFactor> jpeg_scaling_factors() {
  int count = 0;
#ifdef TJ_NUMINIT
  const tjscalingfactor* factors = tj3GetScalingFactors(&count);
#else
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
#endif
  std::vector<ScalingFactor> result;
  for (int i = 0; factors && i < count; ++i) result.push_back({factors[i].num, factors[i].denom});
  std::sort(result.begin(), result.end(), [](const ScalingFactor& a, const ScalingFactor& b) {
    return a.num * b.denom > b.num * a.denom;
  });
  return result;
}

ScalingFactor smallest_scale_at_least(int height, int width, int min_height, int min_width) {
  ScalingFactor best{1, 1};
  for (const ScalingFactor& factor : jpeg_scaling_factors()) {
    if (factor.num > factor.denom) continue;  // never upscale
    if (factor.scale(height) >= min_height && factor.scale(width) >= min_width) best = factor;
  }
  return best;
}

JpegDecoder::JpegDecoder() : handle_(tj::create()) {
  if (!handle_) throw Error(ErrorKind::kRuntime, "JPEG: could not create a TurboJPEG handle");
}

JpegDecoder::~JpegDecoder() {
  if (handle_) tj::destroy(handle_);
}

JpegDecoder::JpegDecoder(JpegDecoder&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      region_(std::move(other.region_)),
      scratch_(std::move(other.scratch_)) {}

JpegDecoder& JpegDecoder::operator=(JpegDecoder&& other) noexcept {
  if (this != &other) {
    if (handle_) tj::destroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    region_ = std::move(other.region_);
    scratch_ = std::move(other.scratch_);
  }
  return *this;
}

JpegHeader JpegDecoder::read_header(const std::uint8_t* data, std::size_t size) {
  if (data == nullptr || size == 0) fail("empty data (0 bytes)");
  if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF)
    fail("not a JPEG file (no FF D8 FF start-of-image marker)");
  tj::Header raw{};
  if (tj::read_header(handle_, data, size, &raw) != tj::Status::kOk) {
    const std::string message = tj::error_message(handle_);
    handle_ = replace_handle(handle_);
    fail("corrupt header: " + message);
  }
  JpegHeader header;
  header.width = raw.width;
  header.height = raw.height;
  header.colorspace = to_colorspace(raw.colorspace);
  header.subsampling = to_subsampling(raw.subsampling);
  header.components = header.colorspace == JpegColorspace::kGray ? 1 : is_cmyk(header) ? 4 : 3;
  if (header.width <= 0 || header.height <= 0)
    fail("corrupt header: no image frame with a size (truncated file?)");
  return header;
}

ImageShape JpegDecoder::output_shape(const JpegHeader& header,
                                     const JpegDecodeOptions& options) const {
  check_pixel_limit("JPEG", header.width, header.height, options.max_pixels);
  const ScalingFactor scale = options.scale;
  if (scale.num <= 0 || scale.denom <= 0) {
    throw Error(ErrorKind::kInvalidArgument, "JPEG: scale must be a positive fraction");
  }
  const std::vector<ScalingFactor> factors = jpeg_scaling_factors();
  const bool supported = std::any_of(factors.begin(), factors.end(), [&](const ScalingFactor& f) {
    return std::int64_t(f.num) * scale.denom == std::int64_t(scale.num) * f.denom;
  });
  if (!supported) {
    throw Error(ErrorKind::kInvalidArgument,
                "JPEG: unsupported scale " + std::to_string(scale.num) + "/" +
                    std::to_string(scale.denom) + " (libjpeg-turbo supports n/8 for n = 1..16)");
  }
  ImageShape shape;
  shape.height = scale.scale(header.height);
  shape.width = scale.scale(header.width);
  // What is allocated: a DCT upscale (up to 2x each way) may exceed the limit the stored
  // size passed.
  if (!scale.is_identity()) {
    const std::string scaled =
        "JPEG scaled by " + std::to_string(scale.num) + "/" + std::to_string(scale.denom);
    check_pixel_limit(scaled.c_str(), shape.width, shape.height, options.max_pixels);
  }
  switch (options.mode) {
    case ColorMode::kUnchanged:
      shape.channels = header.components;
      break;
    case ColorMode::kGray:
      shape.channels = 1;
      break;
    case ColorMode::kRgb:
      shape.channels = 3;
      break;
    default:
      throw Error(ErrorKind::kInvalidArgument,
                  "JPEG: mode must be unchanged, gray or rgb (JPEG has no alpha channel)");
  }
  const CropRegion& crop = options.crop;
  if (!crop.empty()) {
    if (crop.x < 0 || crop.y < 0 || crop.width <= 0 || crop.height <= 0 ||
        crop.x + std::int64_t(crop.width) > shape.width ||
        crop.y + std::int64_t(crop.height) > shape.height) {
      throw Error(ErrorKind::kInvalidArgument,
                  "JPEG: crop region (x=" + std::to_string(crop.x) +
                      ", y=" + std::to_string(crop.y) + ", w=" + std::to_string(crop.width) +
                      ", h=" + std::to_string(crop.height) + ") is not inside the " +
                      std::to_string(shape.width) + "x" + std::to_string(shape.height) +
                      " scaled image");
    }
    shape.width = crop.width;
    shape.height = crop.height;
  }
  return shape;
}

void JpegDecoder::decode(const std::uint8_t* data, std::size_t size,
                         const JpegDecodeOptions& options, const ImageView& out) {
  const JpegHeader header = read_header(data, size);
  const ImageShape shape = output_shape(header, options);
  check_destination("JPEG", shape, out);

  const bool cmyk = is_cmyk(header);
  int pixel_format = TJPF_RGB;
  if (cmyk)
    pixel_format = TJPF_CMYK;
  else if (options.mode == ColorMode::kGray ||
           (options.mode == ColorMode::kUnchanged && header.components == 1))
    pixel_format = TJPF_GRAY;

  if (!options.crop.empty()) {
    decode_region(data, size, options, cmyk, pixel_format == TJPF_GRAY, shape, out);
    return;
  }
  const tj::Header raw{header.width, header.height, 0, 0};
  // accept_warnings also goes through the libjpeg API: after a warning, TurboJPEG reports a
  // later fatal error as TJERR_WARNING too (its warning flag sticks), so a file it abandoned
  // half-decoded would pass as a completed one (found by fuzz_decode.h).
  if (!tj::scales_exactly(raw, options.scale.num, options.scale.denom) || options.accept_warnings) {
    // The libjpeg API uses the factor asked for: a whole-image "region" at that scale.
    JpegDecodeOptions whole = options;
    whole.crop = {0, 0, shape.width, shape.height};
    decode_region(data, size, whole, cmyk, pixel_format == TJPF_GRAY, shape, out);
    return;
  }
  // libjpeg keeps the quantization and Huffman tables of earlier images in its decompressor,
  // and a file without DQT (invalid) or DHT (Motion-JPEG: the standard tables apply) would
  // reuse them: every image gets a fresh handle, so its pixels never depend on earlier ones
  // (0.5 us measured, against 20 us for a 32x24 image).
  handle_ = replace_handle(handle_);
  std::size_t pitch = out.row_stride;
  std::uint8_t* const target = cmyk ? cmyk_scratch(shape, pitch) : out.data;
  const tj::Status status =
      tj::decode(handle_, data, size, raw, options.scale.num, options.scale.denom, target, pitch,
                 pixel_format, !options.accept_warnings, options.fast);
  if (status == tj::Status::kError ||
      (status == tj::Status::kWarning && !options.accept_warnings)) {
    const std::string message = tj::error_message(handle_);
    handle_ = replace_handle(handle_);
    fail_decode(status == tj::Status::kError, message);
  }
  // A warning with accept_warnings: libjpeg-turbo finished the image (missing parts gray).
  if (cmyk) {
    for (int y = 0; y < shape.height; ++y)
      convert_cmyk_row(target + std::size_t(y) * pitch, options.mode, out.row(y), shape.width);
  }
}

std::uint8_t* JpegDecoder::cmyk_scratch(const ImageShape& shape, std::size_t& pitch) {
  pitch = std::size_t(shape.width) * 4;
  scratch_.resize(pitch * std::size_t(shape.height));
  return scratch_.data();
}

void JpegDecoder::decode_region(const std::uint8_t* data, std::size_t size,
                                const JpegDecodeOptions& options, bool cmyk, bool gray,
                                const ImageShape& shape, const ImageView& out) {
  if (!region_) region_ = std::make_unique<libjpeg::RegionDecoder>();
  libjpeg::RegionRequest request;
  request.scale_num = options.scale.num;
  request.scale_denom = options.scale.denom;
  request.x = options.crop.x;
  request.y = options.crop.y;
  request.width = options.crop.width;
  request.height = options.crop.height;
  request.format = cmyk   ? libjpeg::PixelFormat::kCmyk
                   : gray ? libjpeg::PixelFormat::kGray
                          : libjpeg::PixelFormat::kRgb;
  request.stop_on_warning = !options.accept_warnings;
  request.fast = options.fast;
  std::size_t pitch = out.row_stride;
  std::uint8_t* const target = cmyk ? cmyk_scratch(shape, pitch) : out.data;
  const libjpeg::Status status = region_->decode(data, size, request, target, pitch);
  if (status == libjpeg::Status::kError ||
      (status == libjpeg::Status::kWarning && !options.accept_warnings))
    fail_decode(status == libjpeg::Status::kError, region_->message());
  if (cmyk) {
    for (int y = 0; y < shape.height; ++y)
      convert_cmyk_row(target + std::size_t(y) * pitch, options.mode, out.row(y), shape.width);
  }
}

}  // namespace conveyor::codecs
