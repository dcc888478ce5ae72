// Padded batches (pad_to_multiple): every image of a batch sits in the top-left corner of its
// [C, Hp, Wp] slot, Hp and Wp the batch's largest height and width rounded up to the multiple
// (torchvision's GeneralizedRCNNTransform.batch_images, detectron2's size_divisibility); the
// rest of the slot holds a fill value (0 for images, the ignore index for masks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace conveyor {

// `size` rounded up to a multiple of `multiple` (>= 1).
int round_up_to_multiple(int size, int multiple);

// (Hp, Wp) of images of `sizes` (height, width): the largest of each, rounded up.
std::pair<int, int> padded_size(const std::vector<std::pair<int, int>>& sizes, int multiple);

// Where an image of `channels` planes of `height` x `width` values lies in memory: rows
// `row_values` values apart, planes `plane_rows` rows apart (a contiguous CHW image has
// row_values = width, plane_rows = height; an image already in a padded slot has Wp and Hp).
struct ImageLayout {
  int channels = 3, height = 0, width = 0;
  size_t row_values = 0, plane_rows = 0;
};

// Copies the image at `src` into the top-left corner of the [channels, slot_height,
// slot_width] slot at `dst`, and with `fill` (a byte: 0 is 0 in every dtype) writes it over the
// rest of the slot, each byte once. `src` may lie inside the slot when it is a contiguous image
// ending where the slot ends (padded_tail()): rows then move forward over memory already read;
// or be the slot itself (an image written with the slot's strides): then only the padding is
// written.
void copy_into_padded_slot(const uint8_t* src, const ImageLayout& layout, size_t value_size,
                           uint8_t* dst, int slot_height, int slot_width,
                           std::optional<uint8_t> fill);

// Writes `fill` over the padding of a slot whose height x width image is already in place.
void fill_slot_padding(uint8_t* slot, int channels, int height, int width, int slot_height,
                       int slot_width, size_t value_size, uint8_t fill);

// Where a worker writes a contiguous [channels, height, width] image into a padded slot so that
// copy_into_padded_slot() can then spread it in place: the slot's last bytes.
uint8_t* padded_tail(uint8_t* slot, int channels, int slot_height, int slot_width, int height,
                     int width, size_t value_size);

}  // namespace conveyor
