#include "conveyor/ops/resample.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <immintrin.h>
#include <tmmintrin.h>
#define CONVEYOR_HAVE_SSSE3_KERNEL 1
#endif

namespace conveyor {
namespace {

inline uint8_t clamp_to_byte(int32_t value) {
  return static_cast<uint8_t>(value < 0 ? 0 : value > 255 ? 255 : value);
}

#if defined(__SSE2__)
inline __m128i load_u32(const uint8_t* p) {
  int32_t value;
  std::memcpy(&value, p, 4);
  return _mm_cvtsi32_si128(value);
}

inline __m128i weight_pair(const int16_t* w) {
  int32_t pair;
  std::memcpy(&pair, w, 4);  // w[0] in the low half, w[1] in the high half (little endian)
  return _mm_set1_epi32(pair);
}

// Sums of `taps` rows x weights for the 16 columns at x, as four int32x4 (columns 0-3, 4-7,
// 8-11, 12-15), shifted down by the weights' precision. `taps` is even (padded weights).
struct VerticalSums16 {
  __m128i lanes[4];
};

inline VerticalSums16 vertical_sums16(const uint8_t* const* rows, int taps, const int16_t* w, int x,
                                      __m128i initial, __m128i shift) {
  const __m128i zero = _mm_setzero_si128();
  __m128i acc0 = initial, acc1 = initial, acc2 = initial, acc3 = initial;
  for (int k = 0; k < taps; k += 2) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k] + x));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k + 1] + x));
    const __m128i pair = weight_pair(w + k);
    const __m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
    acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(_mm_unpacklo_epi8(lo, zero), pair));
    acc1 = _mm_add_epi32(acc1, _mm_madd_epi16(_mm_unpackhi_epi8(lo, zero), pair));
    acc2 = _mm_add_epi32(acc2, _mm_madd_epi16(_mm_unpacklo_epi8(hi, zero), pair));
    acc3 = _mm_add_epi32(acc3, _mm_madd_epi16(_mm_unpackhi_epi8(hi, zero), pair));
  }
  return {{_mm_sra_epi32(acc0, shift), _mm_sra_epi32(acc1, shift), _mm_sra_epi32(acc2, shift),
           _mm_sra_epi32(acc3, shift)}};
}
#endif

#if defined(CONVEYOR_HAVE_SSSE3_KERNEL)
// SSSE3 (runtime-dispatched; every x86-64 CPU since 2006 has it): one 16-byte load covers 4
// taps of one output pixel, pshufb pairs the taps per channel for pmaddwd, and 4 output pixels
// are transposed to planar bytes together (3 stores of 4 bytes instead of 12 byte stores).
// One output pixel: (r, g, b, 0) sums in int32 lanes, already shifted.
__attribute__((target("ssse3"), always_inline)) inline __m128i horizontal_pixel_ssse3(
    const uint8_t* row, const AxisWeights& wx, const int32_t* pair_weights, int pairs, int groups,
    int x, __m128i pair_low, __m128i pair_high, __m128i initial, __m128i shift) {
  const uint8_t* p = row + static_cast<size_t>(wx.first[x]) * 3;
  const int32_t* w = pair_weights + static_cast<size_t>(x) * pairs;
  __m128i acc = initial;
  for (int g = 0; g < groups; ++g, p += 12) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    acc = _mm_add_epi32(
        acc, _mm_madd_epi16(_mm_shuffle_epi8(bytes, pair_low), _mm_set1_epi32(w[2 * g])));
    if (2 * g + 1 < pairs)
      acc = _mm_add_epi32(
          acc, _mm_madd_epi16(_mm_shuffle_epi8(bytes, pair_high), _mm_set1_epi32(w[2 * g + 1])));
  }
  return _mm_sra_epi32(acc, shift);
}

__attribute__((target("ssse3"))) void horizontal_rgb_ssse3(const uint8_t* src, size_t src_stride,
                                                           int row_count,
                                                           const HorizontalPlan& plan,
                                                           uint8_t* const dst[3],
                                                           size_t dst_stride) {
  const AxisWeights& wx = *plan.weights;
  const int32_t* pair_weights = plan.pair_weights.data();
  const int taps = wx.taps, pairs = taps / 2, groups = (taps + 3) / 4;
  const __m128i pair_low = _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m128i pair_high =
      _mm_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  const __m128i to_planar = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m128i initial = _mm_set1_epi32(wx.precision > 0 ? 1 << (wx.precision - 1) : 0);
  const __m128i shift = _mm_cvtsi32_si128(wx.precision);
  const int out_size = wx.out_size;
  for (int r = 0; r < row_count; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * src_stride;
    uint8_t* out0 = dst[0] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out1 = dst[1] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out2 = dst[2] + static_cast<size_t>(r) * dst_stride;
    int x = 0;
    for (; x + 4 <= out_size; x += 4) {
      const __m128i a = horizontal_pixel_ssse3(row, wx, pair_weights, pairs, groups, x, pair_low,
                                               pair_high, initial, shift),
                    b = horizontal_pixel_ssse3(row, wx, pair_weights, pairs, groups, x + 1,
                                               pair_low, pair_high, initial, shift),
                    c = horizontal_pixel_ssse3(row, wx, pair_weights, pairs, groups, x + 2,
                                               pair_low, pair_high, initial, shift),
                    d = horizontal_pixel_ssse3(row, wx, pair_weights, pairs, groups, x + 3,
                                               pair_low, pair_high, initial, shift);
      const __m128i bytes = _mm_shuffle_epi8(
          _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)), to_planar);
      const int32_t red = _mm_cvtsi128_si32(bytes);
      const int32_t green = _mm_cvtsi128_si32(_mm_srli_si128(bytes, 4));
      const int32_t blue = _mm_cvtsi128_si32(_mm_srli_si128(bytes, 8));
      std::memcpy(out0 + x, &red, 4);
      std::memcpy(out1 + x, &green, 4);
      std::memcpy(out2 + x, &blue, 4);
    }
    for (; x < out_size; ++x) {
      const __m128i v = horizontal_pixel_ssse3(row, wx, pair_weights, pairs, groups, x, pair_low,
                                               pair_high, initial, shift);
      const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
      const uint32_t rgb = static_cast<uint32_t>(_mm_cvtsi128_si32(bytes));
      out0[x] = static_cast<uint8_t>(rgb);
      out1[x] = static_cast<uint8_t>(rgb >> 8);
      out2[x] = static_cast<uint8_t>(rgb >> 16);
    }
  }
}

bool cpu_has_ssse3() {
  static const bool has = __builtin_cpu_supports("ssse3");
  return has;
}

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}

// AVX2 (runtime-dispatched): the SSSE3 scheme with two output pixels per 256-bit register
// (one in each 128-bit lane), so one vpmaddwd covers a pair of taps of two pixels.
__attribute__((target("avx2"))) void horizontal_rgb_avx2(const uint8_t* src, size_t src_stride,
                                                         int row_count, const HorizontalPlan& plan,
                                                         uint8_t* const dst[3], size_t dst_stride) {
  const AxisWeights& wx = *plan.weights;
  const int32_t* pair_weights = plan.pair_weights.data();
  const int taps = wx.taps, pairs = taps / 2, groups = (taps + 3) / 4;
  const __m128i pair_low = _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
  const __m128i pair_high =
      _mm_setr_epi8(6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  const __m256i pair_low2 = _mm256_broadcastsi128_si256(pair_low);
  const __m256i pair_high2 = _mm256_broadcastsi128_si256(pair_high);
  const __m128i to_planar = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const int32_t rounding = wx.precision > 0 ? 1 << (wx.precision - 1) : 0;
  const __m128i initial = _mm_set1_epi32(rounding);
  const __m256i initial2 = _mm256_set1_epi32(rounding);
  const __m128i shift = _mm_cvtsi32_si128(wx.precision);
  const int out_size = wx.out_size;
  const int32_t* lane_weights = plan.lane_weights.data();
  for (int r = 0; r < row_count; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * src_stride;
    uint8_t* out0 = dst[0] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out1 = dst[1] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out2 = dst[2] + static_cast<size_t>(r) * dst_stride;
    int x = 0;
    for (; x + 4 <= out_size; x += 4) {
      const uint8_t* p0 = row + static_cast<size_t>(wx.first[x]) * 3;
      const uint8_t* p1 = row + static_cast<size_t>(wx.first[x + 1]) * 3;
      const uint8_t* p2 = row + static_cast<size_t>(wx.first[x + 2]) * 3;
      const uint8_t* p3 = row + static_cast<size_t>(wx.first[x + 3]) * 3;
      const int32_t* w01 = lane_weights + static_cast<size_t>(x / 2) * pairs * 8;
      const int32_t* w23 = w01 + pairs * 8;
      __m256i acc01 = initial2, acc23 = initial2;  // lanes: (x, x + 1) and (x + 2, x + 3)
      for (int g = 0; g < groups; ++g) {
        const int o = 12 * g;
        const __m256i v01 = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p0 + o))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(p1 + o)), 1);
        const __m256i v23 = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p2 + o))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(p3 + o)), 1);
        acc01 = _mm256_add_epi32(
            acc01,
            _mm256_madd_epi16(_mm256_shuffle_epi8(v01, pair_low2),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w01 + 16 * g))));
        acc23 = _mm256_add_epi32(
            acc23,
            _mm256_madd_epi16(_mm256_shuffle_epi8(v23, pair_low2),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w23 + 16 * g))));
        if (2 * g + 1 < pairs) {
          acc01 = _mm256_add_epi32(
              acc01,
              _mm256_madd_epi16(
                  _mm256_shuffle_epi8(v01, pair_high2),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w01 + 8 * (2 * g + 1)))));
          acc23 = _mm256_add_epi32(
              acc23,
              _mm256_madd_epi16(
                  _mm256_shuffle_epi8(v23, pair_high2),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w23 + 8 * (2 * g + 1)))));
        }
      }
      acc01 = _mm256_sra_epi32(acc01, shift);
      acc23 = _mm256_sra_epi32(acc23, shift);
      // Per lane: [x, x + 2] then [x + 1, x + 3] as rgb0 bytes; interleave back to x..x+3.
      const __m256i packed =
          _mm256_packus_epi16(_mm256_packs_epi32(acc01, acc23), _mm256_setzero_si256());
      const __m128i ordered =
          _mm_unpacklo_epi32(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
      const __m128i bytes = _mm_shuffle_epi8(ordered, to_planar);
      const int32_t red = _mm_cvtsi128_si32(bytes);
      const int32_t green = _mm_cvtsi128_si32(_mm_srli_si128(bytes, 4));
      const int32_t blue = _mm_cvtsi128_si32(_mm_srli_si128(bytes, 8));
      std::memcpy(out0 + x, &red, 4);
      std::memcpy(out1 + x, &green, 4);
      std::memcpy(out2 + x, &blue, 4);
    }
    for (; x < out_size; ++x) {
      const __m128i v = horizontal_pixel_ssse3(row, wx, pair_weights, pairs, groups, x, pair_low,
                                               pair_high, initial, shift);
      const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
      const uint32_t rgb = static_cast<uint32_t>(_mm_cvtsi128_si32(bytes));
      out0[x] = static_cast<uint8_t>(rgb);
      out1[x] = static_cast<uint8_t>(rgb >> 8);
      out2[x] = static_cast<uint8_t>(rgb >> 16);
    }
  }
}

// AVX2 (runtime-dispatched) fused vertical pass: 16 outputs per step, one 256-bit madd per
// pair of taps and 8 outputs. Streaming stores write whole 64-byte lines when dst is aligned.
template <bool kStream, int kTaps>  // kTaps 0: any
__attribute__((target("avx2"), always_inline)) inline int vertical_affine_avx2_impl(
    const uint8_t* const* rows, int runtime_taps, const int16_t* w, int width, int precision,
    float multiplier, float offset, float* dst) {
  const int taps = kTaps > 0 ? kTaps : runtime_taps;
  const __m256i initial = _mm256_set1_epi32(precision > 0 ? 1 << (precision - 1) : 0);
  const __m128i shift = _mm_cvtsi32_si128(precision);
  const __m256 m = _mm256_set1_ps(multiplier), a = _mm256_set1_ps(offset);
  const __m256i byte_max = _mm256_set1_epi32(255);
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    __m256i acc_lo = initial, acc_hi = initial;  // outputs [0-3 | 8-11], [4-7 | 12-15]
    for (int k = 0; k < taps; k += 2) {
      int32_t pair_bits;
      std::memcpy(&pair_bits, w + k, 4);
      const __m256i pair = _mm256_set1_epi32(pair_bits);
      const __m256i r0 =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k] + x)));
      const __m256i r1 =
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[k + 1] + x)));
      acc_lo = _mm256_add_epi32(acc_lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(r0, r1), pair));
      acc_hi = _mm256_add_epi32(acc_hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(r0, r1), pair));
    }
    // Clamped to [0, 255] as a uint8 pass would (bicubic's negative lobes overshoot).
    const __m256i v_lo = _mm256_min_epi32(
        _mm256_max_epi32(_mm256_sra_epi32(acc_lo, shift), _mm256_setzero_si256()), byte_max);
    const __m256i v_hi = _mm256_min_epi32(
        _mm256_max_epi32(_mm256_sra_epi32(acc_hi, shift), _mm256_setzero_si256()), byte_max);
    const __m256 f_lo = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v_lo), m), a);
    const __m256 f_hi = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v_hi), m), a);
    const __m256 first = _mm256_permute2f128_ps(f_lo, f_hi, 0x20);
    const __m256 second = _mm256_permute2f128_ps(f_lo, f_hi, 0x31);
    if (kStream) {
      _mm256_stream_ps(dst + x, first);
      _mm256_stream_ps(dst + x + 8, second);
    } else {
      _mm256_storeu_ps(dst + x, first);
      _mm256_storeu_ps(dst + x + 8, second);
    }
  }
  return x;
}

__attribute__((target("avx2"))) int vertical_affine_avx2(const uint8_t* const* rows, int width,
                                                         int taps, const int16_t* w, int precision,
                                                         float multiplier, float offset,
                                                         bool streaming, float* dst) {
  const bool stream = streaming && reinterpret_cast<uintptr_t>(dst) % 32 == 0;
  if (stream && taps == 2)
    return vertical_affine_avx2_impl<true, 2>(rows, taps, w, width, precision, multiplier, offset,
                                              dst);
  if (stream)
    return vertical_affine_avx2_impl<true, 0>(rows, taps, w, width, precision, multiplier, offset,
                                              dst);
  return vertical_affine_avx2_impl<false, 0>(rows, taps, w, width, precision, multiplier, offset,
                                             dst);
}
#endif

#if defined(CONVEYOR_HAVE_SSSE3_KERNEL)
// One interleaved RGB row into three planes (pshufb, 16 pixels per step).
__attribute__((target("ssse3"))) void split_rgb_row_ssse3(const uint8_t* src, int width, uint8_t* r,
                                                          uint8_t* g, uint8_t* b) {
  // Bytes of channel c among 48 bytes a|b|c: a holds pixels 0-5 (+ r5 partly), etc.
  const __m128i ra = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i rb = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1);
  const __m128i rc = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13);
  const __m128i ga = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i gb = _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1);
  const __m128i gc = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14);
  const __m128i ba = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i bb = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1);
  const __m128i bc = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15);
  int x = 0;
  for (; x + 16 <= width; x += 16) {
    const uint8_t* p = src + 3 * x;
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i m = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(r + x),
                     _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, ra), _mm_shuffle_epi8(m, rb)),
                                  _mm_shuffle_epi8(c, rc)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(g + x),
                     _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, ga), _mm_shuffle_epi8(m, gb)),
                                  _mm_shuffle_epi8(c, gc)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(b + x),
                     _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, ba), _mm_shuffle_epi8(m, bb)),
                                  _mm_shuffle_epi8(c, bc)));
  }
  for (; x < width; ++x) {
    r[x] = src[3 * x];
    g[x] = src[3 * x + 1];
    b[x] = src[3 * x + 2];
  }
}

// One group of 8 outputs of the planar kernel, as int32 (already shifted).
template <int kPairs>  // 0: any number of tap pairs
__attribute__((target("avx2"), always_inline)) inline __m256i horizontal_group_avx2(
    const uint8_t* row, const HorizontalPlan& plan, int runtime_pairs, int g, __m256i initial,
    __m128i shift) {
  const int pairs = kPairs > 0 ? kPairs : runtime_pairs;
  const __m128i bytes = _mm_loadu_si128(
      reinterpret_cast<const __m128i*>(row + plan.group_first[static_cast<size_t>(g)]));
  __m256i acc = initial;
  for (int k = 0; k < pairs; ++k) {
    const size_t at = static_cast<size_t>(g) * pairs + k;
    const __m128i mask =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(plan.group_masks.data() + 16 * at));
    const __m256i weights =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.group_weights.data() + 8 * at));
    acc = _mm256_add_epi32(
        acc, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_shuffle_epi8(bytes, mask)), weights));
  }
  return _mm256_sra_epi32(acc, shift);
}

// AVX2 planar horizontal pass over one row (see HorizontalPlan): per group of 8 outputs one
// 16-byte load, per tap pair a pshufb gathering (a, b) byte pairs, widened to int16 and
// multiplied with the pair weights by one vpmaddwd. Two groups are packed to 16 bytes.
template <int kPairs>
__attribute__((target("avx2"))) void horizontal_plane_avx2_impl(const uint8_t* row,
                                                                const HorizontalPlan& plan,
                                                                uint8_t* out) {
  const AxisWeights& wx = *plan.weights;
  const int pairs = wx.taps / 2, out_size = wx.out_size;
  const int groups = static_cast<int>(plan.group_first.size());
  const __m256i initial = _mm256_set1_epi32(wx.precision > 0 ? 1 << (wx.precision - 1) : 0);
  const __m128i shift = _mm_cvtsi32_si128(wx.precision);
  int g = 0;
  for (; g + 2 <= groups; g += 2) {
    const __m256i a = horizontal_group_avx2<kPairs>(row, plan, pairs, g, initial, shift);
    const __m256i b = horizontal_group_avx2<kPairs>(row, plan, pairs, g + 1, initial, shift);
    // int16 lanes [a0-3 b0-3 | a4-7 b4-7] -> qwords in order a0-3 a4-7 b0-3 b4-7 -> bytes.
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    const __m128i packed =
        _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    const int x = 8 * g;
    if (x + 16 <= out_size) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), packed);
    } else {
      alignas(16) uint8_t tail[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tail), packed);
      std::memcpy(out + x, tail, static_cast<size_t>(out_size - x));
    }
  }
  if (g < groups) {
    const __m256i words = _mm256_permute4x64_epi64(
        _mm256_packs_epi32(horizontal_group_avx2<kPairs>(row, plan, pairs, g, initial, shift),
                           initial),
        0xD8);
    alignas(16) uint8_t tail[16];
    _mm_store_si128(
        reinterpret_cast<__m128i*>(tail),
        _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)));
    std::memcpy(out + 8 * g, tail, static_cast<size_t>(out_size - 8 * g));
  }
}

// Specialised for the common windows: 2 taps (upscales), 4 taps (mild downscales).
__attribute__((target("avx2"))) void horizontal_plane_avx2(const uint8_t* row,
                                                           const HorizontalPlan& plan,
                                                           uint8_t* out) {
  switch (plan.weights->taps) {
    case 2:
      horizontal_plane_avx2_impl<1>(row, plan, out);
      return;
    case 4:
      horizontal_plane_avx2_impl<2>(row, plan, out);
      return;
    default:
      horizontal_plane_avx2_impl<0>(row, plan, out);
      return;
  }
}
#endif

// Input rows of output y's window in a src/stride layout; `storage` holds them when the
// window is too wide for `local` (extreme downscales).
const uint8_t* const* strided_rows(const uint8_t* src, size_t src_stride, int row_offset,
                                   int in_rows, const AxisWeights& wy, int y, int* count,
                                   const uint8_t** local, int local_size,
                                   std::vector<const uint8_t*>& storage) {
  const int start = wy.first[y] - row_offset;
  *count = std::min(wy.taps, in_rows - start);
  const uint8_t** rows = local;
  if (*count > local_size) {
    storage.resize(static_cast<size_t>(*count));
    rows = storage.data();
  }
  for (int k = 0; k < *count; ++k) rows[k] = src + static_cast<size_t>(start + k) * src_stride;
  return rows;
}

constexpr int kLocalRows = 64;
constexpr size_t kPlaneSlack = 32;  // a plane row of planar_row is read up to 16 bytes past its end

}  // namespace

void HorizontalPlan::prepare(const AxisWeights& wx, int width) {
  const bool same = weights == &wx && in_width == width && key == wx.key &&
                    reversed == wx.reversed && wx.key.in_size >= 0;
  weights = &wx;
  key = wx.key;
  reversed = wx.reversed;
  if (same) return;
  in_width = width;
  int last_start = 0;
  for (int start : wx.first) last_start = std::max(last_start, start);
  in_bounds = last_start + wx.taps <= width;
  const int pairs = wx.taps / 2;
  pair_weights.resize(static_cast<size_t>(wx.out_size) * pairs);
  for (size_t i = 0; i < pair_weights.size(); ++i)
    std::memcpy(&pair_weights[i], &wx.weights[2 * i], 4);
  lane_weights.clear();
  group_first.clear();
  group_masks.clear();
  group_weights.clear();
#if defined(CONVEYOR_HAVE_SSSE3_KERNEL)
  if (in_bounds && cpu_has_avx2()) {
    const int groups = (wx.out_size + 7) / 8;
    bool fits = true;
    std::vector<int32_t> bases(static_cast<size_t>(groups));
    for (int g = 0; g < groups && fits; ++g) {  // (a flip folded into wx reverses the order)
      int low = wx.first[8 * g], high = low;
      for (int x = 8 * g; x < std::min(8 * g + 8, wx.out_size); ++x) {
        low = std::min(low, wx.first[x]);
        high = std::max(high, wx.first[x]);
      }
      bases[static_cast<size_t>(g)] = low;
      fits = high - low + wx.taps <= 16;
    }
    if (fits) {
      group_first.resize(static_cast<size_t>(groups));
      group_masks.assign(static_cast<size_t>(groups) * pairs * 16, 0x80);
      group_weights.assign(static_cast<size_t>(groups) * pairs * 8, 0);
      for (int g = 0; g < groups; ++g) {
        const int base = bases[static_cast<size_t>(g)];
        group_first[static_cast<size_t>(g)] = base;
        for (int j = 0; j < 8 && 8 * g + j < wx.out_size; ++j) {
          const int x = 8 * g + j, offset = wx.first[x] - base;
          for (int k = 0; k < pairs; ++k) {
            const size_t at = static_cast<size_t>(g) * pairs + k;
            group_masks[16 * at + 2 * j] = static_cast<uint8_t>(offset + 2 * k);
            group_masks[16 * at + 2 * j + 1] = static_cast<uint8_t>(offset + 2 * k + 1);
            group_weights[8 * at + j] = pair_weights[static_cast<size_t>(x) * pairs + k];
          }
        }
      }
      planar_row.resize(3 * (static_cast<size_t>(width) + kPlaneSlack));
      return;  // the interleaved kernels' weights are not needed
    }
  }
  if (in_bounds && cpu_has_avx2()) {
    // Weights of pixels (2j, 2j + 1) for tap pair k, broadcast to each lane.
    // (int32 storage: std::vector<__m256i> would drop the type's 32-byte alignment.)
    const int pixel_pairs = wx.out_size / 2;
    lane_weights.resize(static_cast<size_t>(pixel_pairs) * pairs * 8);
    for (int j = 0; j < pixel_pairs; ++j)
      for (int k = 0; k < pairs; ++k)
        for (int lane = 0; lane < 8; ++lane)
          lane_weights[(static_cast<size_t>(j) * pairs + k) * 8 + lane] =
              pair_weights[static_cast<size_t>(2 * j + lane / 4) * pairs + k];
  }
#endif
}

void resample_horizontal_rgb(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                             const AxisWeights& wx, uint8_t* const dst[3], size_t dst_stride) {
  HorizontalPlan plan;  // (a prepared plan saves this setup per call)
  plan.prepare(wx, in_width);
  resample_horizontal_rgb(src, src_stride, row_count, plan, dst, dst_stride);
}

void resample_horizontal_rgb(const uint8_t* src, size_t src_stride, int row_count,
                             HorizontalPlan& plan, uint8_t* const dst[3], size_t dst_stride) {
  const AxisWeights& wx = *plan.weights;
  const int taps = wx.taps, in_width = plan.in_width;
  const int32_t rounding = wx.precision > 0 ? 1 << (wx.precision - 1) : 0;
#if defined(CONVEYOR_HAVE_SSSE3_KERNEL)
  if (plan.planar_kernel()) {  // split the row into planes (in L1), then 8 outputs per load
    const size_t plane = static_cast<size_t>(in_width) + kPlaneSlack;
    uint8_t* planes[3] = {plan.planar_row.data(), plan.planar_row.data() + plane,
                          plan.planar_row.data() + 2 * plane};
    for (int r = 0; r < row_count; ++r) {
      split_rgb_row_ssse3(src + static_cast<size_t>(r) * src_stride, in_width, planes[0], planes[1],
                          planes[2]);
      for (int c = 0; c < 3; ++c)
        horizontal_plane_avx2(planes[c], plan, dst[c] + static_cast<size_t>(r) * dst_stride);
    }
    return;
  }
  // The 16-byte loads read up to 4 pixels past the last tap: rows have that much slack.
  if (plan.in_bounds && !plan.lane_weights.empty()) {
    horizontal_rgb_avx2(src, src_stride, row_count, plan, dst, dst_stride);
    return;
  }
  if (plan.in_bounds && cpu_has_ssse3()) {
    horizontal_rgb_ssse3(src, src_stride, row_count, plan, dst, dst_stride);
    return;
  }
#endif
  for (int r = 0; r < row_count; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * src_stride;
    uint8_t* out0 = dst[0] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out1 = dst[1] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out2 = dst[2] + static_cast<size_t>(r) * dst_stride;
#if defined(__SSE2__)
    if (plan.in_bounds) {
      const __m128i zero = _mm_setzero_si128();
      const __m128i initial = _mm_set1_epi32(rounding);
      const __m128i shift = _mm_cvtsi32_si128(wx.precision);
      for (int x = 0; x < wx.out_size; ++x) {
        const uint8_t* p = row + static_cast<size_t>(wx.first[x]) * 3;
        const int16_t* w = &wx.weights[static_cast<size_t>(x) * taps];
        __m128i acc = initial;
        for (int k = 0; k < taps; k += 2, p += 6, w += 2) {
          // r0 r1 g0 g1 b0 b1 . . as int16, times (w0, w1) pairs -> r, g, b sums in int32 lanes.
          const __m128i pixels =
              _mm_unpacklo_epi8(_mm_unpacklo_epi8(load_u32(p), load_u32(p + 3)), zero);
          acc = _mm_add_epi32(acc, _mm_madd_epi16(pixels, weight_pair(w)));
        }
        acc = _mm_sra_epi32(acc, shift);
        acc = _mm_packus_epi16(_mm_packs_epi32(acc, acc), zero);
        const uint32_t rgb = static_cast<uint32_t>(_mm_cvtsi128_si32(acc));
        out0[x] = static_cast<uint8_t>(rgb);
        out1[x] = static_cast<uint8_t>(rgb >> 8);
        out2[x] = static_cast<uint8_t>(rgb >> 16);
      }
      continue;
    }
#endif
    for (int x = 0; x < wx.out_size; ++x) {
      int32_t acc[3] = {rounding, rounding, rounding};
      const int start = wx.first[x];
      const int16_t* w = &wx.weights[static_cast<size_t>(x) * taps];
      for (int k = 0; k < taps && start + k < in_width; ++k) {
        const uint8_t* p = row + static_cast<size_t>(start + k) * 3;
        acc[0] += p[0] * w[k];
        acc[1] += p[1] * w[k];
        acc[2] += p[2] * w[k];
      }
      out0[x] = clamp_to_byte(acc[0] >> wx.precision);
      out1[x] = clamp_to_byte(acc[1] >> wx.precision);
      out2[x] = clamp_to_byte(acc[2] >> wx.precision);
    }
  }
}

void resample_horizontal_plane(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                               const AxisWeights& wx, uint8_t* dst, size_t dst_stride) {
  const int taps = wx.taps;
  const int32_t rounding = wx.precision > 0 ? 1 << (wx.precision - 1) : 0;
  for (int r = 0; r < row_count; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * src_stride;
    uint8_t* out = dst + static_cast<size_t>(r) * dst_stride;
    for (int x = 0; x < wx.out_size; ++x) {
      int32_t acc = rounding;
      const int start = wx.first[x];
      const int16_t* w = &wx.weights[static_cast<size_t>(x) * taps];
      const int count = std::min(taps, in_width - start);
      for (int k = 0; k < count; ++k) acc += row[start + k] * w[k];
      out[x] = clamp_to_byte(acc >> wx.precision);
    }
  }
}

void resample_horizontal_plane(const uint8_t* src, size_t src_stride, int row_count,
                               const HorizontalPlan& plan, uint8_t* dst, size_t dst_stride) {
#if defined(CONVEYOR_HAVE_SSSE3_KERNEL)
  if (plan.planar_kernel()) {
    for (int r = 0; r < row_count; ++r)
      horizontal_plane_avx2(src + static_cast<size_t>(r) * src_stride, plan,
                            dst + static_cast<size_t>(r) * dst_stride);
    return;
  }
#endif
  resample_horizontal_plane(src, src_stride, plan.in_width, row_count, *plan.weights, dst,
                            dst_stride);
}

void resample_vertical_row(const uint8_t* const* rows, int count, int width, const AxisWeights& wy,
                           int y, uint8_t* dst) {
  const int taps = wy.taps;
  const int32_t rounding = wy.precision > 0 ? 1 << (wy.precision - 1) : 0;
  const int16_t* w = &wy.weights[static_cast<size_t>(y) * taps];
  int x = 0;
#if defined(__SSE2__)
  if (count == taps) {
    const __m128i initial = _mm_set1_epi32(rounding);
    const __m128i shift = _mm_cvtsi32_si128(wy.precision);
    for (; x + 16 <= width; x += 16) {
      const VerticalSums16 sums = vertical_sums16(rows, taps, w, x, initial, shift);
      const __m128i packed = _mm_packus_epi16(_mm_packs_epi32(sums.lanes[0], sums.lanes[1]),
                                              _mm_packs_epi32(sums.lanes[2], sums.lanes[3]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), packed);
    }
  }
#endif
  for (; x < width; ++x) {
    int32_t acc = rounding;
    for (int k = 0; k < count; ++k) acc += rows[k][x] * w[k];
    dst[x] = clamp_to_byte(acc >> wy.precision);
  }
}

void resample_vertical_row_affine(const uint8_t* const* rows, int count, int width,
                                  const AxisWeights& wy, int y, float multiplier, float offset,
                                  bool streaming, float* dst) {
  const int taps = wy.taps;
  const int32_t rounding = wy.precision > 0 ? 1 << (wy.precision - 1) : 0;
  const int16_t* w = &wy.weights[static_cast<size_t>(y) * taps];
  int x = 0;
#if defined(CONVEYOR_HAVE_SSSE3_KERNEL)
  if (count == taps && cpu_has_avx2())
    x = vertical_affine_avx2(rows, width, taps, w, wy.precision, multiplier, offset, streaming,
                             dst);
#else
  (void)streaming;
#endif
#if defined(__SSE2__)
  if (count == taps && !wy.negative) {
    const __m128i initial = _mm_set1_epi32(rounding);
    const __m128i shift = _mm_cvtsi32_si128(wy.precision);
    const __m128 m = _mm_set1_ps(multiplier), a = _mm_set1_ps(offset);
    for (; x + 16 <= width; x += 16) {
      const VerticalSums16 sums = vertical_sums16(rows, taps, w, x, initial, shift);
      // Non-negative weights sum to 2^precision, so the shifted sums are already uint8
      // values: convert them to float directly (same as rounding via packus).
      const __m128 f0 = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums.lanes[0]), m), a);
      const __m128 f1 = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums.lanes[1]), m), a);
      const __m128 f2 = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums.lanes[2]), m), a);
      const __m128 f3 = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums.lanes[3]), m), a);
      _mm_storeu_ps(dst + x, f0);
      _mm_storeu_ps(dst + x + 4, f1);
      _mm_storeu_ps(dst + x + 8, f2);
      _mm_storeu_ps(dst + x + 12, f3);
    }
  }
#endif
  for (; x < width; ++x) {
    int32_t acc = rounding;
    for (int k = 0; k < count; ++k) acc += rows[k][x] * w[k];
    dst[x] = static_cast<float>(clamp_to_byte(acc >> wy.precision)) * multiplier + offset;
  }
}

void resample_vertical_row(const uint8_t* src, size_t src_stride, int row_offset, int in_rows,
                           int width, const AxisWeights& wy, int y, uint8_t* dst) {
  const uint8_t* local[kLocalRows];
  std::vector<const uint8_t*> storage;
  int count = 0;
  const uint8_t* const* rows =
      strided_rows(src, src_stride, row_offset, in_rows, wy, y, &count, local, kLocalRows, storage);
  resample_vertical_row(rows, count, width, wy, y, dst);
}

void resample_vertical_row_affine(const uint8_t* src, size_t src_stride, int row_offset,
                                  int in_rows, int width, const AxisWeights& wy, int y,
                                  float multiplier, float offset, float* dst) {
  const uint8_t* local[kLocalRows];
  std::vector<const uint8_t*> storage;
  int count = 0;
  const uint8_t* const* rows =
      strided_rows(src, src_stride, row_offset, in_rows, wy, y, &count, local, kLocalRows, storage);
  resample_vertical_row_affine(rows, count, width, wy, y, multiplier, offset, false, dst);
}

void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace conveyor
