#include "conveyor/ops/photometric.h"

#include <algorithm>
#include <cmath>
#include <string>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "conveyor/core/error.h"
#include "conveyor/ops/output_writer.h"

// The kernels follow torch's float32 steps with fused multiply-adds (std::fma) and floor/round:
// without FMA and SSE4.1 (the x86-64 baseline) those are library calls, so the loops are also
// compiled for FMA (with AVX and SSE4.1) and picked at load time; both versions give identical
// results (std::fma is exact either way).
// Only the explicit std::fma calls fuse: contracting a * b + c elsewhere (GCC's default where FMA
// exists) would round differently from torch.
// Not under ThreadSanitizer: GCC instruments the clones' ifunc resolver, which the loader runs
// before TSan is initialised (a segfault at startup).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define CONVEYOR_FMA_CLONES __attribute__((target_clones("fma", "default")))
#else
#define CONVEYOR_FMA_CLONES
#endif

namespace conveyor {
namespace {

size_t pixel_count(const PlanarImage& image) {
  return static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
}

// torch's float -> uint8 cast after clamp_(0, 255): truncation.
inline uint8_t clamp_truncate(float value) {
  return static_cast<uint8_t>(std::min(std::max(value, 0.0f), 255.0f));
}

// _rgb_to_grayscale_image: r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114) in float32
// (ATen's vectorised add with alpha is a fused multiply-add).
inline float luma(uint8_t r, uint8_t g, uint8_t b) {
  float l = static_cast<float>(r) * 0.2989f;
  l = std::fma(0.587f, static_cast<float>(g), l);
  return std::fma(0.114f, static_cast<float>(b), l);
}

// _blend(image1, image2, ratio): image1.mul(ratio).add_(image2, alpha=1 - ratio), clamped,
// truncated to uint8.
inline uint8_t blend(uint8_t pixel, float other, float ratio, float alpha) {
  return clamp_truncate(std::fma(alpha, other, static_cast<float>(pixel) * ratio));
}

void check_factor(double factor, const char* name) {
  if (!(factor >= 0))
    throw Error(ErrorKind::kInvalidArgument,
                std::string(name) + " factor must be non-negative, got " + std::to_string(factor));
}

void check_rgb(const PlanarImage& image, const char* op) {
  if (image.channels != 3)
    throw Error(ErrorKind::kInvalidArgument,
                std::string(op) + " needs 3 channels, got " + std::to_string(image.channels));
}

// torch.remainder(a, 1.0) for float (fmod, moved into [0, 1) when negative) for a in
// [-1, 2), without the fmod call: a - 1 is exact there (Sterbenz), a + 1 rounds as torch's does.
inline float remainder_one(float a) {
  if (a >= 1.0f) return a - 1.0f;
  if (a < 0.0f) return a + 1.0f;
  return a;
}

}  // namespace

CONVEYOR_FMA_CLONES void adjust_brightness(PlanarImage& image, double factor_value) {
  const float factor = static_cast<float>(factor_value);
  check_factor(factor_value, "brightness");
  const size_t n = pixel_count(image);
  for (int c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    for (size_t i = 0; i < n; ++i) p[i] = clamp_truncate(static_cast<float>(p[i]) * factor);
  }
}

CONVEYOR_FMA_CLONES void adjust_contrast(PlanarImage& image, double factor_value) {
  const float factor = static_cast<float>(factor_value);
  check_factor(factor_value, "contrast");
  check_rgb(image, "adjust_contrast");
  const size_t n = pixel_count(image);
  if (n == 0) return;
  const uint8_t *r = image.plane(0), *g = image.plane(1), *b = image.plane(2);
  // The floored luma is an integer in [0, 255]: its sum is exact in 64 bits; torch.mean's
  // float32 result is that sum / n rounded to float.
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<uint64_t>(std::floor(luma(r[i], g[i], b[i])));
  const float mean = static_cast<float>(static_cast<double>(sum) / static_cast<double>(n));
  const float alpha = static_cast<float>(1.0 - factor_value);
  for (int c = 0; c < 3; ++c) {
    uint8_t* p = image.plane(c);
    for (size_t i = 0; i < n; ++i) p[i] = blend(p[i], mean, factor, alpha);
  }
}

CONVEYOR_FMA_CLONES void adjust_saturation(PlanarImage& image, double factor_value) {
  const float factor = static_cast<float>(factor_value);
  check_factor(factor_value, "saturation");
  check_rgb(image, "adjust_saturation");
  const size_t n = pixel_count(image);
  uint8_t *r = image.plane(0), *g = image.plane(1), *b = image.plane(2);
  const float alpha = static_cast<float>(1.0 - factor_value);
  for (size_t i = 0; i < n; ++i) {
    const float gray = std::floor(luma(r[i], g[i], b[i]));
    r[i] = blend(r[i], gray, factor, alpha);
    g[i] = blend(g[i], gray, factor, alpha);
    b[i] = blend(b[i], gray, factor, alpha);
  }
}

namespace {

// torchvision's adjust_hue steps (the image as float32 in [0, 1], _rgb_to_hsv, the hue shift
// modulo 1, _hsv_to_rgb, back to uint8 as to_dtype(scale=True): x * 255.999, truncated) for one
// pixel, written without branches (selects), so that the AVX2 form below is the same
// operations on 8 pixels: every step is one IEEE float32 operation, so both give identical
// bytes.
constexpr float kToUnit = static_cast<float>(1.0 / 255.0);
constexpr float kSixth = static_cast<float>(1.0 / 6.0);
constexpr float kToByte = 255.0f + 1.0f - 1e-3f;

inline void hue_pixel(uint8_t& pr, uint8_t& pg, uint8_t& pb, float hue) {
  const float r = static_cast<float>(pr) * kToUnit;
  const float g = static_cast<float>(pg) * kToUnit;
  const float b = static_cast<float>(pb) * kToUnit;
  // _rgb_to_hsv
  const float maxc = std::max(std::max(r, g), b);
  const float minc = std::min(std::min(r, g), b);
  const bool eqc = maxc == minc;
  const float range = maxc - minc;
  const float s = range / (eqc ? 1.0f : maxc);
  const float divisor = eqc ? 1.0f : range;
  const float rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
  const float h_r = bc - gc, h_g = (rc + 2.0f) - bc, h_b = (gc + 4.0f) - rc;
  const float h_raw = maxc == r ? h_r : (maxc == g ? h_g : h_b);
  float h = remainder_one(h_raw * kSixth + 1.0f);  // fmod_(1.0) of a value in [5/6, 2)
  const float v = maxc;
  // hue shift, then _hsv_to_rgb
  h = remainder_one(h + hue);
  const float h6 = h * 6.0f;
  const float fi = std::floor(h6);
  const float f = h6 - fi;
  const float sector = fi >= 6.0f ? fi - 6.0f : fi;  // int(fi) % 6 for fi in [0, 6]
  const float sxf = s * f;
  const float one_minus_s = 1.0f - s;
  const float q = std::min(std::max((1.0f - sxf) * v, 0.0f), 1.0f);
  const float t = std::min(std::max((sxf + one_minus_s) * v, 0.0f), 1.0f);
  const float p = std::min(std::max(one_minus_s * v, 0.0f), 1.0f);
  // sector: 0 (v, t, p), 1 (q, v, p), 2 (p, v, t), 3 (p, q, v), 4 (t, p, v), 5 (v, p, q)
  const float out_r = sector == 0.0f || sector == 5.0f ? v
                      : sector == 1.0f                 ? q
                      : sector == 4.0f                 ? t
                                                       : p;
  const float out_g = sector == 1.0f || sector == 2.0f ? v
                      : sector == 0.0f                 ? t
                      : sector == 3.0f                 ? q
                                                       : p;
  const float out_b = sector == 3.0f || sector == 4.0f ? v
                      : sector == 2.0f                 ? t
                      : sector == 5.0f                 ? q
                                                       : p;
  pr = static_cast<uint8_t>(out_r * kToByte);
  pg = static_cast<uint8_t>(out_g * kToByte);
  pb = static_cast<uint8_t>(out_b * kToByte);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define CONVEYOR_HUE_AVX2 1
__attribute__((target("avx2"))) inline __m256 load8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

__attribute__((target("avx2"))) inline void store8(uint8_t* p, __m256 value) {
  const __m256i words = _mm256_cvttps_epi32(value);  // in [0, 255]: truncation as the cast
  const __m128i half =
      _mm_packus_epi32(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(half, half));
}

__attribute__((target("avx2"))) inline __m256 select(__m256 mask, __m256 yes, __m256 no) {
  return _mm256_blendv_ps(no, yes, mask);
}

// remainder_one on 8 lanes.
__attribute__((target("avx2"))) inline __m256 remainder_one8(__m256 a) {
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  const __m256 wrapped = select(_mm256_cmp_ps(a, one, _CMP_GE_OQ), _mm256_sub_ps(a, one), a);
  return select(_mm256_cmp_ps(a, zero, _CMP_LT_OQ), _mm256_add_ps(a, one), wrapped);
}

__attribute__((target("avx2"))) inline __m256 equal(__m256 a, float b) {
  return _mm256_cmp_ps(a, _mm256_set1_ps(b), _CMP_EQ_OQ);
}

__attribute__((target("avx2"))) inline __m256 clamp01(__m256 x) {
  // std::min(std::max(x, 0), 1) for non-NaN x (only -0.0 may differ, and it truncates to 0).
  return _mm256_min_ps(_mm256_max_ps(x, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
}

// hue_pixel on pixels [0, count) with count a multiple of 8; returns the pixels done.
__attribute__((target("avx2"))) size_t adjust_hue_avx2(uint8_t* pr, uint8_t* pg, uint8_t* pb,
                                                       size_t count, float hue_value) {
  const __m256 to_unit = _mm256_set1_ps(kToUnit), sixth = _mm256_set1_ps(kSixth);
  const __m256 to_byte = _mm256_set1_ps(kToByte), hue = _mm256_set1_ps(hue_value);
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  const __m256 four = _mm256_set1_ps(4.0f), six = _mm256_set1_ps(6.0f);
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 r = _mm256_mul_ps(load8(pr + i), to_unit);
    const __m256 g = _mm256_mul_ps(load8(pg + i), to_unit);
    const __m256 b = _mm256_mul_ps(load8(pb + i), to_unit);
    const __m256 maxc = _mm256_max_ps(_mm256_max_ps(r, g), b);
    const __m256 minc = _mm256_min_ps(_mm256_min_ps(r, g), b);
    const __m256 eqc = _mm256_cmp_ps(maxc, minc, _CMP_EQ_OQ);
    const __m256 range = _mm256_sub_ps(maxc, minc);
    const __m256 s = _mm256_div_ps(range, select(eqc, one, maxc));
    const __m256 divisor = select(eqc, one, range);
    const __m256 rc = _mm256_div_ps(_mm256_sub_ps(maxc, r), divisor);
    const __m256 gc = _mm256_div_ps(_mm256_sub_ps(maxc, g), divisor);
    const __m256 bc = _mm256_div_ps(_mm256_sub_ps(maxc, b), divisor);
    const __m256 h_r = _mm256_sub_ps(bc, gc);
    const __m256 h_g = _mm256_sub_ps(_mm256_add_ps(rc, two), bc);
    const __m256 h_b = _mm256_sub_ps(_mm256_add_ps(gc, four), rc);
    const __m256 h_raw = select(_mm256_cmp_ps(maxc, r, _CMP_EQ_OQ), h_r,
                                select(_mm256_cmp_ps(maxc, g, _CMP_EQ_OQ), h_g, h_b));
    __m256 h = remainder_one8(_mm256_add_ps(_mm256_mul_ps(h_raw, sixth), one));
    const __m256 v = maxc;
    h = remainder_one8(_mm256_add_ps(h, hue));
    const __m256 h6 = _mm256_mul_ps(h, six);
    const __m256 fi = _mm256_floor_ps(h6);
    const __m256 f = _mm256_sub_ps(h6, fi);
    const __m256 sector = select(_mm256_cmp_ps(fi, six, _CMP_GE_OQ), _mm256_sub_ps(fi, six), fi);
    const __m256 sxf = _mm256_mul_ps(s, f);
    const __m256 one_minus_s = _mm256_sub_ps(one, s);
    const __m256 q = clamp01(_mm256_mul_ps(_mm256_sub_ps(one, sxf), v));
    const __m256 t = clamp01(_mm256_mul_ps(_mm256_add_ps(sxf, one_minus_s), v));
    const __m256 p = clamp01(_mm256_mul_ps(one_minus_s, v));
    const __m256 s0 = equal(sector, 0), s1 = equal(sector, 1), s2 = equal(sector, 2);
    const __m256 s3 = equal(sector, 3), s4 = equal(sector, 4), s5 = equal(sector, 5);
    const __m256 out_r = select(_mm256_or_ps(s0, s5), v, select(s1, q, select(s4, t, p)));
    const __m256 out_g = select(_mm256_or_ps(s1, s2), v, select(s0, t, select(s3, q, p)));
    const __m256 out_b = select(_mm256_or_ps(s3, s4), v, select(s2, t, select(s5, q, p)));
    store8(pr + i, _mm256_mul_ps(out_r, to_byte));
    store8(pg + i, _mm256_mul_ps(out_g, to_byte));
    store8(pb + i, _mm256_mul_ps(out_b, to_byte));
  }
  return i;
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

}  // namespace

CONVEYOR_FMA_CLONES void adjust_hue(PlanarImage& image, double hue_value) {
  const float hue = static_cast<float>(hue_value);
  if (!(hue >= -0.5f && hue <= 0.5f))
    throw Error(ErrorKind::kInvalidArgument,
                "hue factor must be in [-0.5, 0.5], got " + std::to_string(hue));
  check_rgb(image, "adjust_hue");
  const size_t n = pixel_count(image);
  uint8_t *pr = image.plane(0), *pg = image.plane(1), *pb = image.plane(2);
  size_t i = 0;
#if defined(CONVEYOR_HUE_AVX2)
  if (cpu_has_avx2()) i = adjust_hue_avx2(pr, pg, pb, n, hue);
#endif
  for (; i < n; ++i) hue_pixel(pr[i], pg[i], pb[i], hue);
}

CONVEYOR_FMA_CLONES void rgb_to_grayscale(PlanarImage& image) {
  check_rgb(image, "rgb_to_grayscale");
  const size_t n = pixel_count(image);
  uint8_t *r = image.plane(0), *g = image.plane(1), *b = image.plane(2);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t l = static_cast<uint8_t>(luma(r[i], g[i], b[i]));  // .to(uint8): truncation
    r[i] = g[i] = b[i] = l;
  }
}

CONVEYOR_FMA_CLONES void autocontrast(PlanarImage& image) {
  const size_t n = pixel_count(image);
  if (n == 0) return;
  const float inv_bound = static_cast<float>(1.0 / 255.0);
  for (int c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    const auto [lo, hi] = std::minmax_element(p, p + n);
    float minimum = *lo, inv_scale = static_cast<float>(*hi - *lo) * inv_bound;
    if (*lo == *hi) minimum = 0, inv_scale = 1;
    for (size_t i = 0; i < n; ++i)
      p[i] = clamp_truncate((static_cast<float>(p[i]) - minimum) / inv_scale);
  }
}

void equalize(PlanarImage& image) {
  const size_t n = pixel_count(image);
  if (n == 0) return;
  for (int c = 0; c < image.channels; ++c) {
    uint8_t* p = image.plane(c);
    int64_t hist[256] = {};
    for (size_t i = 0; i < n; ++i) ++hist[p[i]];
    int last = 255;
    while (hist[last] == 0) --last;
    // PIL's scheme: step = (pixels not at the channel's maximum value) // 255; no change when 0.
    const int64_t step = (static_cast<int64_t>(n) - hist[last]) / 255;
    if (step == 0) continue;
    uint8_t lut[256];
    lut[0] = 0;
    int64_t cumulative = 0;
    for (int k = 1; k < 256; ++k) {
      cumulative += hist[k - 1];
      lut[k] = static_cast<uint8_t>(std::min<int64_t>((cumulative + step / 2) / step, 255));
    }
    for (size_t i = 0; i < n; ++i) p[i] = lut[p[i]];
  }
}

void permute_channels(PlanarImage& image, const std::array<int, 3>& permutation) {
  check_rgb(image, "permute_channels");
  std::array<bool, 3> seen{};
  for (int source : permutation) {
    if (source < 0 || source > 2 || seen[static_cast<size_t>(source)])
      throw Error(ErrorKind::kInvalidArgument, "channel permutation must be a permutation of 0..2");
    seen[static_cast<size_t>(source)] = true;
  }
  // Planes are contiguous and equally sized: permute by swapping whole planes.
  const size_t bytes = image.plane_stride;
  std::vector<uint8_t> copy(image.plane(0), image.plane(0) + 3 * bytes);
  for (int c = 0; c < 3; ++c)
    std::copy_n(copy.data() + bytes * static_cast<size_t>(permutation[static_cast<size_t>(c)]),
                bytes, image.plane(c));
}

std::vector<float> gaussian_kernel1d(int size, float sigma) {
  // torch.linspace(-lim, lim, size, dtype=float32): the first half counts up from start, the
  // second half down from end, with a float32 step.
  const float lim = static_cast<float>((size - 1) / (2.0 * std::sqrt(2.0)));
  const float start = -lim, end = lim;
  std::vector<float> x(static_cast<size_t>(size));
  if (size == 1) {
    x[0] = start;
  } else {
    const float step = (end - start) / static_cast<float>(size - 1);
    const int halfway = size / 2;
    for (int i = 0; i < size; ++i)
      x[static_cast<size_t>(i)] = i < halfway ? start + step * static_cast<float>(i)
                                              : end - step * static_cast<float>(size - i - 1);
  }
  // softmax(-(x / sigma)^2)
  float maximum = -INFINITY;
  for (float& v : x) {
    const float scaled = v / sigma;
    v = -(scaled * scaled);
    maximum = std::max(maximum, v);
  }
  float sum = 0;
  for (float& v : x) sum += (v = std::exp(v - maximum));
  for (float& v : x) v /= sum;
  return x;
}

CONVEYOR_FMA_CLONES void gaussian_blur(PlanarImage& image, std::array<int, 2> kernel_size,
                                       std::array<float, 2> sigma, BlurScratch& scratch) {
  for (int k : kernel_size)
    if (k <= 0 || k % 2 == 0)
      throw Error(ErrorKind::kInvalidArgument,
                  "gaussian_blur kernel sizes must be odd and positive, got " + std::to_string(k));
  for (float s : sigma)
    if (!(s > 0))
      throw Error(ErrorKind::kInvalidArgument,
                  "gaussian_blur sigma must be positive, got " + std::to_string(s));
  const int w = image.width, h = image.height;
  if (w == 0 || h == 0) return;
  const int rx = kernel_size[0] / 2, ry = kernel_size[1] / 2;
  if (rx >= w || ry >= h)
    throw Error(ErrorKind::kInvalidArgument,
                "gaussian_blur kernel " + std::to_string(kernel_size[0]) + "x" +
                    std::to_string(kernel_size[1]) + " needs reflect padding smaller than the " +
                    std::to_string(w) + "x" + std::to_string(h) + " image (as torch's pad does)");
  const std::vector<float> kx = gaussian_kernel1d(kernel_size[0], sigma[0]);
  const std::vector<float> ky = gaussian_kernel1d(kernel_size[1], sigma[1]);
  // Reflect (no edge repeat): index -1 reads 1, index n reads n - 2.
  const auto reflect = [](int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  const size_t padded_w = static_cast<size_t>(w + 2 * rx);
  scratch.padded.resize(padded_w);
  scratch.rows.resize(static_cast<size_t>(w) * static_cast<size_t>(h));
  for (int c = 0; c < image.channels; ++c) {
    uint8_t* plane = image.plane(c);
    // Horizontal pass into float rows (separable: the 2-D kernel is ky ⊗ kx).
    for (int y = 0; y < h; ++y) {
      const uint8_t* src = plane + image.row_stride * static_cast<size_t>(y);
      for (int x = -rx; x < w + rx; ++x)
        scratch.padded[static_cast<size_t>(x + rx)] = static_cast<float>(src[reflect(x, w)]);
      float* out = scratch.rows.data() + static_cast<size_t>(w) * static_cast<size_t>(y);
      for (int x = 0; x < w; ++x) {
        float acc = 0;
        const float* in = scratch.padded.data() + x;
        for (int k = 0; k < kernel_size[0]; ++k) acc += kx[static_cast<size_t>(k)] * in[k];
        out[x] = acc;
      }
    }
    // Vertical pass, rounded half to even (torch.round) into the plane.
    for (int y = 0; y < h; ++y) {
      uint8_t* dst = plane + image.row_stride * static_cast<size_t>(y);
      for (int x = 0; x < w; ++x) {
        float acc = 0;
        for (int k = 0; k < kernel_size[1]; ++k)
          acc += ky[static_cast<size_t>(k)] *
                 scratch.rows[static_cast<size_t>(w) * static_cast<size_t>(reflect(y + k - ry, h)) +
                              static_cast<size_t>(x)];
        dst[x] = static_cast<uint8_t>(std::min(std::max(std::nearbyint(acc), 0.0f), 255.0f));
      }
    }
  }
}

void erase(void* chw, DType dtype, int image_height, int image_width, int top, int left, int height,
           int width, const float* values, bool per_pixel) {
  if (top < 0 || left < 0 || height < 0 || width < 0 || top + height > image_height ||
      left + width > image_width)
    throw Error(ErrorKind::kInvalidArgument, "erase rectangle outside the image");
  const size_t plane = static_cast<size_t>(image_height) * static_cast<size_t>(image_width);
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < height; ++y) {
      const size_t row = plane * static_cast<size_t>(c) +
                         static_cast<size_t>(top + y) * static_cast<size_t>(image_width) +
                         static_cast<size_t>(left);
      for (int x = 0; x < width; ++x) {
        const float v = per_pixel ? values[(static_cast<size_t>(c) * static_cast<size_t>(height) +
                                            static_cast<size_t>(y)) *
                                               static_cast<size_t>(width) +
                                           static_cast<size_t>(x)]
                                  : values[c];
        const size_t at = row + static_cast<size_t>(x);
        switch (dtype) {
          case DType::kFloat32:
            static_cast<float*>(chw)[at] = v;
            break;
          case DType::kFloat16:
            static_cast<uint16_t*>(chw)[at] = float_to_half(v);
            break;
          case DType::kUint8:
            static_cast<uint8_t*>(chw)[at] = static_cast<uint8_t>(static_cast<int64_t>(v));
            break;
        }
      }
    }
  }
}

}  // namespace conveyor
