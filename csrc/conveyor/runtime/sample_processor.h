// One sample end to end, on a worker thread: read the file, decode (DCT-scaled, and only the
// plan's first crop region or the pixels a first resize's crop window reads, when the plan
// allows), transform pixels, boxes and mask, write the image into its batch slot. Holds the
// thread's decoders and scratch memory (reused: no allocation per sample once warm).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "conveyor/codecs/decode_image.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/image_transform.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/photometric_stage.h"
#include "conveyor/runtime/buffer_pool.h"

namespace conveyor {

struct EngineSources {
  std::vector<std::string> image_paths;
  std::vector<std::string> mask_paths;  // empty, or one per image
  bool has_boxes = false;
  std::vector<float> boxes;      // 4 per box: a box's row is its index in boxes / 4
  std::vector<int64_t> offsets;  // image_paths.size() + 1 when has_boxes
  // Empty, or (width, height) per image as the annotations state it, 0 0 when unknown: lets the
  // engine plan padded batches before decoding (it checks them against the files).
  std::vector<int> source_sizes;

  size_t size() const { return image_paths.size(); }
  // Throws Error(kInvalidArgument) for inconsistent arrays.
  void validate() const;
};

// A sample's slot in a padded batch (the engine's pad_to_multiple): the image goes to the
// top-left corner of a [3, height, width] slot (the mask to a [height, width] one) when its plan
// gives the size the engine planned the batch with. The rest of the slot is filled with 0 (the
// mask's with mask_fill) when `fill_padding`, else left to the engine.
struct PaddedSlot {
  int planned_height = 0, planned_width = 0;
  int height = 0, width = 0;
  bool fill_padding = false;
  uint8_t mask_fill = 255;
};

struct SampleOutput {
  int width = 0, height = 0;
  int source_width = 0, source_height = 0;  // the decoded file's size (process() only)
  bool in_slot = false;  // written into the caller's slot (else into `image` and `mask`)
  std::vector<float> boxes;
  // One id per box, kept or dropped with it: process() sets each box's row in the sources
  // (which indexes any per-box field the caller keeps, e.g. labels); transform() keeps what
  // the caller put there.
  std::vector<int64_t> box_ids;
  std::shared_ptr<uint8_t> image;  // only when the pipeline has no fixed size
  std::shared_ptr<uint8_t> mask;   // idem
};

class SampleProcessor {
 public:
  // `sample_buffers`: where the per-sample images and masks of a pipeline without a fixed
  // size come from (recycled: no page faults for every image); nullptr: plain new[].
  SampleProcessor(const Pipeline& pipeline, const EngineSources& sources, uint64_t seed,
                  bool dct_scaling = true, std::shared_ptr<BufferPool> sample_buffers = nullptr);

  // Processes dataset sample `index`. With a fixed output size the image goes to
  // `image_slot` (and the mask to `mask_slot`); with `padded` too when the sample's size is the
  // planned one (padded into the slot); otherwise into freshly allocated buffers in `output`.
  // Throws Error; the caller adds the sample index and path.
  void process(int64_t index, uint64_t epoch, void* image_slot, uint8_t* mask_slot,
               SampleOutput& output, const PaddedSlot* padded = nullptr);

  // The same for pixels already in memory (interleaved RGB, rows readable 1 byte past the end);
  // `has_boxes`: output.boxes holds the sample's boxes (possibly none).
  void transform(const uint8_t* rgb, size_t stride, int width, int height, int64_t index,
                 uint64_t epoch, const uint8_t* mask, void* image_slot, uint8_t* mask_slot,
                 SampleOutput& output, bool allocate, bool has_boxes = false);

 private:
  // Pixels (into the slot or a fresh buffer), boxes already in `output`, and mask_ when
  // has_mask, all through `plan`.
  void apply(const GeometryPlan& plan, const DecodedImage& decoded, bool has_mask, void* image_slot,
             uint8_t* mask_slot, SampleOutput& output, bool allocate,
             const PaddedSlot* padded = nullptr);

  std::shared_ptr<uint8_t> new_buffer(size_t bytes);

  const Pipeline& pipeline_;
  const EngineSources& sources_;
  std::shared_ptr<BufferPool> sample_buffers_;
  uint64_t seed_;
  bool dct_scaling_;
  OutputFormat format_;
  codecs::ImageDecoder decoder_;
  ImageTransformer transformer_;
  PhotometricStage photometric_;     // photometric, erasing and box ops around the geometry
  AxisWeights source_x_, source_y_;  // scratch of windowed_resize_source
  std::vector<uint8_t> file_bytes_, pixels_, mask_pixels_, mask_, mask_scratch_;
};

}  // namespace conveyor
