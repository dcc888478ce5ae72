#include "conveyor/ops/resample.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
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
#endif

}  // namespace

void resample_horizontal_rgb(const uint8_t* src, size_t src_stride, int in_width, int row_count,
                             const AxisWeights& wx, uint8_t* const dst[3], size_t dst_stride) {
  const int taps = wx.taps;
  const int32_t rounding = wx.precision > 0 ? 1 << (wx.precision - 1) : 0;
  const bool in_bounds = wx.out_size == 0 || wx.first.back() + taps <= in_width;
  for (int r = 0; r < row_count; ++r) {
    const uint8_t* row = src + static_cast<size_t>(r) * src_stride;
    uint8_t* out0 = dst[0] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out1 = dst[1] + static_cast<size_t>(r) * dst_stride;
    uint8_t* out2 = dst[2] + static_cast<size_t>(r) * dst_stride;
#if defined(__SSE2__)
    if (in_bounds) {
      const __m128i zero = _mm_setzero_si128();
      const __m128i initial = _mm_set1_epi32(rounding);
      const __m128i shift = _mm_cvtsi32_si128(wx.precision);
      for (int x = 0; x < wx.out_size; ++x) {
        const uint8_t* p = row + static_cast<size_t>(wx.first[x]) * 3;
        const int16_t* w = &wx.weights[static_cast<size_t>(x) * taps];
        __m128i acc = initial;
        for (int k = 0; k < taps; k += 2, p += 6, w += 2) {
          // r0 r1 g0 g1 b0 b1 . . as int16, times (w0, w1) pairs -> r, g, b sums in int32 lanes.
          const __m128i pixels = _mm_unpacklo_epi8(_mm_unpacklo_epi8(load_u32(p), load_u32(p + 3)), zero);
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

void resample_vertical_row(const uint8_t* src, size_t src_stride, int row_offset, int in_rows,
                           int width, const AxisWeights& wy, int y, uint8_t* dst) {
  const int taps = wy.taps;
  const int32_t rounding = wy.precision > 0 ? 1 << (wy.precision - 1) : 0;
  const int start = wy.first[y] - row_offset;
  const int16_t* w = &wy.weights[static_cast<size_t>(y) * taps];
  const int count = std::min(taps, in_rows - start);
  int x = 0;
#if defined(__SSE2__)
  if (count == taps) {
    const __m128i zero = _mm_setzero_si128();
    const __m128i initial = _mm_set1_epi32(rounding);
    const __m128i shift = _mm_cvtsi32_si128(wy.precision);
    for (; x + 16 <= width; x += 16) {
      __m128i acc0 = initial, acc1 = initial, acc2 = initial, acc3 = initial;
      const uint8_t* p = src + static_cast<size_t>(start) * src_stride + x;
      for (int k = 0; k < taps; k += 2, p += 2 * src_stride) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + src_stride));
        const __m128i pair = weight_pair(w + k);
        const __m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
        acc0 = _mm_add_epi32(acc0, _mm_madd_epi16(_mm_unpacklo_epi8(lo, zero), pair));
        acc1 = _mm_add_epi32(acc1, _mm_madd_epi16(_mm_unpackhi_epi8(lo, zero), pair));
        acc2 = _mm_add_epi32(acc2, _mm_madd_epi16(_mm_unpacklo_epi8(hi, zero), pair));
        acc3 = _mm_add_epi32(acc3, _mm_madd_epi16(_mm_unpackhi_epi8(hi, zero), pair));
      }
      acc0 = _mm_sra_epi32(acc0, shift);
      acc1 = _mm_sra_epi32(acc1, shift);
      acc2 = _mm_sra_epi32(acc2, shift);
      acc3 = _mm_sra_epi32(acc3, shift);
      const __m128i packed = _mm_packus_epi16(_mm_packs_epi32(acc0, acc1), _mm_packs_epi32(acc2, acc3));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), packed);
    }
  }
#endif
  for (; x < width; ++x) {
    int32_t acc = rounding;
    const uint8_t* p = src + static_cast<size_t>(start) * src_stride + x;
    for (int k = 0; k < count; ++k) acc += p[static_cast<size_t>(k) * src_stride] * w[k];
    dst[x] = clamp_to_byte(acc >> wy.precision);
  }
}

}  // namespace conveyor
