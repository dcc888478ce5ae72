// A sample's photometric, erasing and box stages around the geometric ones (one instance per
// worker thread, holding its scratch): draws their parameters after the geometry's from the
// sample's generator, runs the photometric ops before the geometric ones on the decoded image
// and after them on their uint8 output, erases in the final values and filters/clamps the
// output boxes.
#pragma once

#include <cstdint>
#include <vector>

#include "conveyor/ops/image_transform.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/photometric_plan.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {

class PhotometricStage {
 public:
  explicit PhotometricStage(const Pipeline& pipeline) : pipeline_(pipeline) {}

  // The photometric ops before the geometric ones see the whole image at full resolution: no
  // region decode, no DCT scaling.
  bool needs_whole_image() const { return !pipeline_.photometric_before.empty(); }
  // The geometric ops write uint8 planes that the photometric ops then change (no fused write).
  bool runs_after_geometry() const { return !pipeline_.photometric_after.empty(); }

  // Draws this sample's parameters (after the geometry's draws, from the same generator).
  void draw(SampleRandom& random, int output_width, int output_height);

  // Runs the ops before the geometric ones on `image` (interleaved RGB, full resolution) and
  // points it at the result (this stage's buffer, valid until the next call).
  void run_before(DecodedImage& image);

  // Runs the geometric plan through `transformer` into uint8 planes, the photometric ops after
  // it, then the fused write into `out` (plan.width x plan.height, CHW, format.dtype).
  void run_after(ImageTransformer& transformer, const GeometryPlan& plan, const DecodedImage& image,
                 const OutputFormat& format, void* out);

  // RandomErasing on the written output.
  void erase_output(void* out, DType dtype, int width, int height) const;

  // Sanitize / clamp / convert the output boxes (XYXY at first, 4 per box) and their ids (rows of
  // every per-box field) on the output canvas.
  void run_box_ops(std::vector<float>& boxes, std::vector<int64_t>& box_ids, int width,
                   int height) const;

 private:
  const Pipeline& pipeline_;
  std::vector<PhotometricStep> before_, after_;
  std::vector<ErasingParams> erasing_;
  PlanarImage planar_;
  BlurScratch blur_;
  std::vector<uint8_t> interleaved_;
};

}  // namespace conveyor
