// Resize weights, geometry plans, boxes and masks, the fused output writer.
#include <cmath>
#include <cstring>
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/ops/box_geometry.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/image_transform.h"
#include "conveyor/ops/mask_geometry.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/resize_weights.h"

using namespace conveyor;

TEST_CASE("resize weights sum to one in fixed point and stay in bounds") {
  for (auto [in, out] : std::vector<std::pair<int, int>>{{500, 512}, {375, 224}, {640, 37}, {3, 9}, {9, 1}}) {
    AxisWeights weights;
    compute_axis_weights(weights, in, 0.0, in, out, true);
    CHECK(weights.taps % 2 == 0);
    for (int x = 0; x < out; ++x) {
      int sum = 0;
      for (int k = 0; k < weights.taps; ++k) sum += weights.weights[x * weights.taps + k];
      CHECK(std::abs(sum - (1 << weights.precision)) <= weights.taps);
      CHECK(weights.first[x] >= 0 && weights.first[x] < in);
    }
  }
}

TEST_CASE("an upscale needs only two taps") {
  AxisWeights weights;
  compute_axis_weights(weights, 375, 0.0, 375, 512, true);
  CHECK(weights.taps == 2);
}

TEST_CASE("identity resize copies the image") {
  std::vector<uint8_t> rgb(20 * 10 * 3 + 64);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  GeometryPlan plan;
  plan.width = 20;
  plan.height = 10;
  GeometryStep resize{GeometryStep::kResize};
  resize.width = 20;
  resize.height = 10;
  plan.steps.push_back(resize);
  ImageTransformer transformer;
  std::vector<uint8_t> out(20 * 10 * 3);
  transformer.run(plan, DecodedImage{rgb.data(), 60, 20, 10, 20, 10}, OutputFormat{}, out.data());
  bool same = true;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 20; ++x) same = same && out[(c * 10 + y) * 20 + x] == rgb[(y * 20 + x) * 3 + c];
  CHECK(same);
}

TEST_CASE("center crop plan pads when larger, like torchvision") {
  OpSpec crop;
  crop.kind = OpKind::kCenterCrop;
  crop.height = 12;
  crop.width = 4;
  SampleRandom random(0, 0, 0);
  const GeometryPlan plan = plan_geometry({crop}, 10, 9, random);
  CHECK(plan.width == 4 && plan.height == 12);
  CHECK(plan.steps.size() == 2 && plan.steps[0].kind == GeometryStep::kPad);
  CHECK(plan.steps[0].padding[1] == 1 && plan.steps[0].padding[3] == 2);
  CHECK(plan.steps[1].x == 3 && plan.steps[1].y == 0);
}

TEST_CASE("random resized crop stays inside the image with the requested size") {
  OpSpec rrc;
  rrc.kind = OpKind::kRandomResizedCrop;
  rrc.height = rrc.width = 32;
  for (uint64_t i = 0; i < 200; ++i) {
    SampleRandom random(1, 0, i);
    const GeometryPlan plan = plan_geometry({rrc}, 120, 80, random);
    CHECK(plan.width == 32 && plan.height == 32);
    const GeometryStep& crop = plan.steps[0];
    CHECK(crop.kind == GeometryStep::kCrop);
    CHECK(crop.x >= 0 && crop.y >= 0 && crop.x + crop.width <= 120 && crop.y + crop.height <= 80);
  }
}

TEST_CASE("boxes are scaled, flipped, clipped and vanished ones dropped") {
  GeometryPlan plan;
  GeometryStep resize{GeometryStep::kResize};
  resize.width = 200;
  resize.height = 100;
  GeometryStep flip{GeometryStep::kFlip};
  GeometryStep crop{GeometryStep::kCrop};
  crop.x = 0; crop.y = 0; crop.width = 150; crop.height = 100;
  plan.steps = {resize, flip, crop};
  std::vector<float> boxes = {10, 10, 20, 20, 80, 0, 100, 50};
  std::vector<int64_t> labels = {1, 2};
  CHECK(apply_geometry_to_boxes(plan, 100, 50, boxes, labels) == 1);
  // box 0: x 20..40 -> flipped 160..180 -> outside the crop; box 1: 160..200 -> 0..40.
  CHECK(labels.size() == 1 && labels[0] == 2);
  CHECK(boxes[0] == 0.0f && boxes[2] == 40.0f && boxes[1] == 0.0f && boxes[3] == 100.0f);
}

TEST_CASE("mask nearest resize and flip") {
  GeometryPlan plan;
  GeometryStep resize{GeometryStep::kResize};
  resize.width = 4;
  resize.height = 1;
  plan.steps = {resize, GeometryStep{GeometryStep::kFlip}};
  std::vector<uint8_t> mask = {1, 2}, scratch;
  apply_geometry_to_mask(plan, 2, 1, mask, scratch);
  CHECK((mask == std::vector<uint8_t>{2, 2, 1, 1}));
}

TEST_CASE("mask pads nest: the outer border's fill wins, crops cut through padding") {
  // 2x2 mask, pad 1 all round with 7, pad left 1 with 9, crop the 4x3 window at (0, 1),
  // nearest upscale 2x vertically, flip.
  GeometryStep inner{GeometryStep::kPad};
  inner.padding = {1, 1, 1, 1};
  inner.fill = {7, 7, 7};
  GeometryStep outer{GeometryStep::kPad};
  outer.padding = {1, 0, 0, 0};
  outer.fill = {9, 9, 9};
  GeometryStep crop{GeometryStep::kCrop};
  crop.x = 0;
  crop.y = 1;
  crop.width = 4;
  crop.height = 3;
  GeometryStep resize{GeometryStep::kResize};
  resize.width = 4;
  resize.height = 6;
  GeometryPlan plan;
  plan.steps = {inner, outer, crop, resize, GeometryStep{GeometryStep::kFlip}};
  std::vector<uint8_t> mask = {1, 2, 3, 4}, scratch;
  apply_geometry_to_mask(plan, 2, 2, mask, scratch);
  // after the pads (5x4):  9 7 7 7 7 / 9 7 1 2 7 / 9 7 3 4 7 / 9 7 7 7 7
  // crop rows 1..3, cols 0..3: 9 7 1 2 / 9 7 3 4 / 9 7 7 7; each row twice; flipped
  const std::vector<uint8_t> expected = {2, 1, 7, 9, 2, 1, 7, 9, 4, 3, 7, 9,
                                         4, 3, 7, 9, 7, 7, 7, 9, 7, 7, 7, 9};
  CHECK(mask == expected);
}

TEST_CASE("float16 conversion rounds to nearest even") {
  CHECK(float_to_half(1.0f) == 0x3C00);
  CHECK(float_to_half(-2.0f) == 0xC000);
  CHECK(float_to_half(65504.0f) == 0x7BFF);
  CHECK(float_to_half(1e6f) == 0x7C00);
  CHECK(float_to_half(5.9604645e-8f) == 0x0001);
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3C00);  // tie -> even
}

TEST_CASE("pipeline validation names the op") {
  OpSpec normalize;
  normalize.kind = OpKind::kNormalize;
  CHECK_THROWS_KIND(compile_pipeline({normalize}), ErrorKind::kInvalidArgument);
  OpSpec to_float;
  to_float.kind = OpKind::kToDtype;
  to_float.scale_values = true;
  OpSpec resize;
  resize.height = resize.width = 4;
  CHECK_THROWS_KIND(compile_pipeline({to_float, resize}), ErrorKind::kInvalidArgument);
  const Pipeline pipeline = compile_pipeline({resize, to_float, normalize});
  CHECK(pipeline.fixed_size && pipeline.fixed_size->first == 4);
  CHECK(std::abs(pipeline.multiplier[0] - 1.0f / 255.0f) < 1e-9f);
}

TEST_MAIN()
