#include "conveyor/ops/output_writer.h"

#include <cstring>

namespace conveyor {

OutputFormat OutputFormat::from(const Pipeline& pipeline) {
  OutputFormat format;
  format.dtype = pipeline.dtype;
  format.affine = pipeline.affine;
  for (int c = 0; c < 3; ++c) {
    format.multiplier[c] = pipeline.multiplier[c];
    format.offset[c] = pipeline.offset[c];
  }
  return format;
}

uint16_t float_to_half(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits >= 0x7F800000u)  // inf or nan
    return static_cast<uint16_t>(sign | 0x7C00u | (abs_bits > 0x7F800000u ? 0x200u : 0u));
  if (abs_bits >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // overflow
  if (abs_bits < 0x38800000u) {  // subnormal half (or zero)
    float magnitude;
    std::memcpy(&magnitude, &abs_bits, 4);
    // Adding 0.5 aligns the mantissa so the FPU rounds to nearest even at 2^-24 steps.
    const float shifted = magnitude + 0.5f;
    uint32_t shifted_bits;
    std::memcpy(&shifted_bits, &shifted, 4);
    return static_cast<uint16_t>(sign | (shifted_bits - 0x3F000000u));
  }
  const uint32_t mantissa_odd = (abs_bits >> 13) & 1u;
  const uint32_t rounded = abs_bits + 0xC8000FFFu + mantissa_odd;  // rebias + round half even
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

namespace {

template <typename T>
void copy_row(const uint8_t* row, int width, bool reversed, T* out) {
  if (reversed)
    for (int x = 0; x < width; ++x) out[x] = static_cast<T>(row[width - 1 - x]);
  else
    for (int x = 0; x < width; ++x) out[x] = static_cast<T>(row[x]);
}

void affine_row(const uint8_t* row, int width, bool reversed, float m, float a, float* out) {
  if (reversed)
    for (int x = 0; x < width; ++x) out[x] = static_cast<float>(row[width - 1 - x]) * m + a;
  else
    for (int x = 0; x < width; ++x) out[x] = static_cast<float>(row[x]) * m + a;
}

}  // namespace

void write_output_row(const OutputFormat& format, int channel, const uint8_t* row, int width,
                      bool reversed, void* out) {
  switch (format.dtype) {
    case DType::kUint8:
      if (reversed)
        copy_row(row, width, true, static_cast<uint8_t*>(out));
      else
        std::memcpy(out, row, static_cast<size_t>(width));
      return;
    case DType::kFloat32:
      if (format.affine)
        affine_row(row, width, reversed, format.multiplier[channel], format.offset[channel],
                   static_cast<float*>(out));
      else
        copy_row(row, width, reversed, static_cast<float*>(out));
      return;
    case DType::kFloat16: {
      float values[256];
      uint16_t* halves = static_cast<uint16_t*>(out);
      for (int start = 0; start < width; start += 256) {
        const int count = width - start < 256 ? width - start : 256;
        const uint8_t* source = reversed ? row + (width - start - count) : row + start;
        if (format.affine)
          affine_row(source, count, reversed, format.multiplier[channel], format.offset[channel],
                     values);
        else
          copy_row(source, count, reversed, values);
        for (int x = 0; x < count; ++x) halves[start + x] = float_to_half(values[x]);
      }
      return;
    }
  }
}

}  // namespace conveyor
