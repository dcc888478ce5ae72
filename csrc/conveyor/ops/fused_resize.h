// The last resize of a pipeline, fused with ToDtype + Normalize and the CHW write into the
// batch slot, streaming: horizontal rows are computed into a small ring as the vertical
// windows move down, so the intermediate stays in L1/L2 instead of a full-size image, and
// float32 outputs (written once, read much later by the consumer) use non-temporal stores.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/resample.h"
#include "conveyor/ops/resize_weights.h"

namespace conveyor {

// Source pixels: interleaved RGB (`interleaved`, rows readable kRowSlack bytes past the end)
// or three planes; row r of either at base + r * stride. `width`, `height`: the whole image.
struct ResizeSource {
  const uint8_t* interleaved = nullptr;
  const uint8_t* planes[3] = {nullptr, nullptr, nullptr};
  size_t stride = 0;
  int width = 0, height = 0;
};

// Scratch memory of one worker, reused between samples.
struct FusedResizeScratch {
  HorizontalPlan plan;
  std::vector<uint8_t> ring, row;
  std::vector<const uint8_t*> rows;
};

// Writes the wx.out_size x wy.out_size resize of `source` to `out` as 3 planes of
// format.dtype (CHW). Ends with a store fence: `out` may go to another thread right after.
void resize_to_output(const ResizeSource& source, const AxisWeights& wx, const AxisWeights& wy,
                      const OutputFormat& format, void* out, FusedResizeScratch& scratch);

}  // namespace conveyor
