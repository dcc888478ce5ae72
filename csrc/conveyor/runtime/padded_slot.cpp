#include "conveyor/runtime/padded_slot.h"

#include <algorithm>
#include <cstring>

namespace conveyor {

int round_up_to_multiple(int size, int multiple) {
  return (size + multiple - 1) / multiple * multiple;
}

std::pair<int, int> padded_size(const std::vector<std::pair<int, int>>& sizes, int multiple) {
  int height = 0, width = 0;
  for (const auto& [h, w] : sizes) {
    height = std::max(height, h);
    width = std::max(width, w);
  }
  return {round_up_to_multiple(height, multiple), round_up_to_multiple(width, multiple)};
}

void copy_into_padded_slot(const uint8_t* src, const ImageLayout& layout, size_t value_size,
                           uint8_t* dst, int slot_height, int slot_width,
                           std::optional<uint8_t> fill) {
  // Forward order, row by row: for a contiguous source at the slot's tail each destination row
  // ends at or before the next source row starts (the slot is at least as large in every
  // dimension), so memmove never overwrites a row not yet moved.
  const size_t row_bytes = static_cast<size_t>(layout.width) * value_size;
  const size_t slot_row_bytes = static_cast<size_t>(slot_width) * value_size;
  const size_t slot_plane_bytes = slot_row_bytes * static_cast<size_t>(slot_height);
  for (int c = 0; c < layout.channels; ++c) {
    uint8_t* plane = dst + slot_plane_bytes * static_cast<size_t>(c);
    for (int y = 0; y < layout.height; ++y) {
      const uint8_t* from =
          src + (layout.plane_rows * static_cast<size_t>(c) + static_cast<size_t>(y)) *
                    layout.row_values * value_size;
      uint8_t* to = plane + slot_row_bytes * static_cast<size_t>(y);
      if (from != to) std::memmove(to, from, row_bytes);
      if (fill) std::memset(to + row_bytes, *fill, slot_row_bytes - row_bytes);
    }
    if (fill)
      std::memset(plane + slot_row_bytes * static_cast<size_t>(layout.height), *fill,
                  slot_row_bytes * static_cast<size_t>(slot_height - layout.height));
  }
}

void fill_slot_padding(uint8_t* slot, int channels, int height, int width, int slot_height,
                       int slot_width, size_t value_size, uint8_t fill) {
  const ImageLayout layout{channels, height, width, static_cast<size_t>(slot_width),
                           static_cast<size_t>(slot_height)};
  copy_into_padded_slot(slot, layout, value_size, slot, slot_height, slot_width, fill);
}

uint8_t* padded_tail(uint8_t* slot, int channels, int slot_height, int slot_width, int height,
                     int width, size_t value_size) {
  const size_t slot_bytes = static_cast<size_t>(channels) * slot_height * slot_width * value_size;
  const size_t image_bytes = static_cast<size_t>(channels) * height * width * value_size;
  return slot + (slot_bytes - image_bytes);
}

}  // namespace conveyor
