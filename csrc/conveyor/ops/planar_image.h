// Owned uint8 planar (CHW) pixels with slack after the last plane, so SIMD loops may read or
// write a few bytes past a row's end. Reused across samples by one worker (no reallocation
// once grown).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace conveyor {

inline constexpr size_t kRowSlack = 64;

struct PlanarImage {
  std::vector<uint8_t> storage;
  int width = 0, height = 0, channels = 3;
  size_t row_stride = 0, plane_stride = 0;

  void reset(int w, int h, int c = 3) {
    width = w;
    height = h;
    channels = c;
    row_stride = static_cast<size_t>(w);
    plane_stride = row_stride * static_cast<size_t>(h);
    const size_t needed = plane_stride * static_cast<size_t>(c) + kRowSlack;
    if (storage.size() < needed) storage.resize(needed);
  }
  uint8_t* plane(int c) { return storage.data() + plane_stride * static_cast<size_t>(c); }
  const uint8_t* plane(int c) const {
    return storage.data() + plane_stride * static_cast<size_t>(c);
  }
  uint8_t* row(int c, int y) { return plane(c) + row_stride * static_cast<size_t>(y); }
};

}  // namespace conveyor
