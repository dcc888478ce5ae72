#include "conveyor/ops/photometric_stage.h"

#include <cstring>

#include "conveyor/ops/box_ops.h"

namespace conveyor {

void PhotometricStage::draw(SampleRandom& random, int output_width, int output_height) {
  before_.clear();
  after_.clear();
  erasing_.clear();
  for (const PhotometricSpec& spec : pipeline_.photometric_before)
    plan_photometric(spec, random, before_);
  for (const PhotometricSpec& spec : pipeline_.photometric_after)
    plan_photometric(spec, random, after_);
  for (const ErasingSpec& spec : pipeline_.erasing)
    erasing_.push_back(plan_erasing(spec, output_height, output_width, random));
}

void PhotometricStage::run_before(DecodedImage& image) {
  if (before_.empty()) return;
  const int w = image.width, h = image.height;
  planar_.reset(w, h, 3);
  for (int y = 0; y < h; ++y) {
    const uint8_t* src = image.data + image.row_stride * static_cast<size_t>(y);
    uint8_t *r = planar_.row(0, y), *g = planar_.row(1, y), *b = planar_.row(2, y);
    for (int x = 0; x < w; ++x) {
      r[x] = src[3 * x];
      g[x] = src[3 * x + 1];
      b[x] = src[3 * x + 2];
    }
  }
  run_photometric(before_, planar_, blur_);
  const size_t stride = static_cast<size_t>(w) * 3;
  interleaved_.resize(stride * static_cast<size_t>(h) + kRowSlack);
  for (int y = 0; y < h; ++y) {
    uint8_t* dst = interleaved_.data() + stride * static_cast<size_t>(y);
    const uint8_t *r = planar_.row(0, y), *g = planar_.row(1, y), *b = planar_.row(2, y);
    for (int x = 0; x < w; ++x) {
      dst[3 * x] = r[x];
      dst[3 * x + 1] = g[x];
      dst[3 * x + 2] = b[x];
    }
  }
  image.data = interleaved_.data();
  image.row_stride = stride;
}

void PhotometricStage::run_after(ImageTransformer& transformer, const GeometryPlan& plan,
                                 const DecodedImage& image, const OutputFormat& format, void* out) {
  planar_.reset(plan.width, plan.height, 3);
  OutputFormat planes;  // uint8, plain copy: CHW uint8 is exactly planar_'s layout
  transformer.run(plan, image, planes, planar_.plane(0));
  run_photometric(after_, planar_, blur_);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < plan.height; ++y)
      write_output_row(
          format, c, planar_.row(c, y), plan.width, false,
          static_cast<uint8_t*>(out) + format.row_offset(c, y, plan.width, plan.height));
}

void PhotometricStage::erase_output(void* out, DType dtype, int width, int height) const {
  for (const ErasingParams& params : erasing_)
    if (params.apply)
      erase(out, dtype, height, width, params.top, params.left, params.height, params.width,
            params.values.data(), params.per_pixel);
}

void PhotometricStage::run_box_ops(std::vector<float>& boxes, std::vector<int64_t>& box_ids,
                                   int width, int height) const {
  BoxFormat format = BoxFormat::kXYXY;  // the geometric ops leave XYXY boxes
  for (const OpSpec& op : pipeline_.box_ops) {
    const size_t count = boxes.size() / 4;
    if (op.kind == OpKind::kConvertBoundingBoxFormat) {
      convert_box_format(boxes.data(), count, format, op.box_format);
      format = op.box_format;
    } else if (op.kind == OpKind::kClampBoundingBoxes) {
      clamp_boxes(boxes.data(), count, format, height, width);
    } else if (op.kind == OpKind::kSanitizeBoundingBoxes) {
      const std::vector<uint8_t> keep = sanitize_mask(boxes.data(), count, format, height, width,
                                                      op.box_min_size, op.box_min_area);
      keep_rows(boxes, keep, 4);
      if (box_ids.size() == keep.size()) keep_rows(box_ids, keep, 1);
    }
  }
}

}  // namespace conveyor
