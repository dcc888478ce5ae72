#include "conveyor/ops/fused_resize.h"

#include <algorithm>

#include "conveyor/ops/planar_image.h"

namespace conveyor {

void resize_to_output(const ResizeSource& source, const AxisWeights& wx, const AxisWeights& wy,
                      const OutputFormat& format, void* out, FusedResizeScratch& scratch) {
  const int out_width = wx.out_size, out_height = wy.out_size, taps = wy.taps;
  // Windows move down monotonically (always, for these weights; checked anyway): a ring of
  // `taps` horizontal rows then holds every window. Otherwise keep every row (ring = image).
  bool monotonic = true;
  int row_begin = wy.first.empty() ? 0 : wy.first.front(), row_end = 0;
  for (int y = 0; y < out_height; ++y) {
    if (y > 0 && wy.first[y] < wy.first[y - 1]) monotonic = false;
    row_begin = std::min(row_begin, wy.first[y]);
    row_end = std::max(row_end, wy.first[y] + taps);
  }
  row_end = std::min(row_end, source.height);
  const int ring_rows = monotonic ? std::min(taps, row_end - row_begin) : row_end - row_begin;
  // One ring slot: the three planes of one input row, each padded for the SIMD slack.
  const size_t plane_row = static_cast<size_t>(out_width) + kRowSlack;
  const size_t slot_bytes = plane_row * 3;
  if (scratch.ring.size() < slot_bytes * static_cast<size_t>(ring_rows))
    scratch.ring.resize(slot_bytes * static_cast<size_t>(ring_rows));
  scratch.rows.resize(static_cast<size_t>(taps));
  scratch.plan.prepare(wx, source.width);
  auto slot = [&](int input_row) {
    return scratch.ring.data() +
           slot_bytes * static_cast<size_t>((input_row - row_begin) % ring_rows);
  };
  auto horizontal = [&](int input_row) {
    uint8_t* base = slot(input_row);
    if (source.interleaved) {
      uint8_t* planes[3] = {base, base + plane_row, base + 2 * plane_row};
      resample_horizontal_rgb(source.interleaved + source.stride * static_cast<size_t>(input_row),
                              source.stride, 1, scratch.plan, planes, plane_row);
    } else {
      for (int c = 0; c < 3; ++c)
        resample_horizontal_plane(source.planes[c] + source.stride * static_cast<size_t>(input_row),
                                  source.stride, 1, scratch.plan, base + plane_row * c, plane_row);
    }
  };

  const bool float_affine = format.dtype == DType::kFloat32 && format.affine;
  if (!float_affine) scratch.row.resize(plane_row);
  int computed_end =
      row_begin;  // horizontal rows [row_begin or later, computed_end) are in the ring
  for (int y = 0; y < out_height; ++y) {
    const int first = wy.first[y];
    const int count = std::min(taps, source.height - first);
    const int needed_end = first + count;
    if (monotonic) computed_end = std::max(computed_end, first);  // rows above are not needed again
    for (; computed_end < needed_end; ++computed_end) horizontal(computed_end);
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < count; ++k)
        scratch.rows[static_cast<size_t>(k)] = slot(first + k) + plane_row * c;
      uint8_t* row_out =
          static_cast<uint8_t*>(out) + format.row_offset(c, y, out_width, out_height);
      if (float_affine) {
        resample_vertical_row_affine(scratch.rows.data(), count, out_width, wy, y,
                                     format.multiplier[c], format.offset[c], true,
                                     reinterpret_cast<float*>(row_out));
      } else {
        resample_vertical_row(scratch.rows.data(), count, out_width, wy, y, scratch.row.data());
        write_output_row(format, c, scratch.row.data(), out_width, false, row_out);
      }
    }
  }
  store_fence();
}

}  // namespace conveyor
