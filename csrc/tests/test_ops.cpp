// Resize weights, geometry plans, boxes and masks, the fused output writer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/ops/box_geometry.h"
#include "conveyor/ops/detection_geometry.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/image_transform.h"
#include "conveyor/ops/mask_geometry.h"
#include "conveyor/ops/op_schema.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/resample.h"
#include "conveyor/ops/resize_weights.h"

using namespace conveyor;

TEST_CASE("resize weights sum to one in fixed point and stay in bounds") {
  for (auto [in, out] :
       std::vector<std::pair<int, int>>{{500, 512}, {375, 224}, {640, 37}, {3, 9}, {9, 1}}) {
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

TEST_CASE("nearest weights pick torch's source pixel with weight one") {
  // torch: floor(i * in / out) in float32, with copies for equal and doubled sizes; exact:
  // floor((i + 0.5) * in / out).
  CHECK(nearest_source_index(5, 7, 14, false) == 2);
  CHECK(nearest_source_index(3, 10, 4, false) == 7);
  CHECK(nearest_source_index(3, 10, 4, true) == 8);
  CHECK(nearest_source_index(0, 10, 4, true) == 1);
  CHECK(nearest_source_index(3, 3, 4, true) == 2);
  for (Interpolation mode : {Interpolation::kNearest, Interpolation::kNearestExact}) {
    AxisWeights weights;
    compute_axis_weights(weights, 10, 0.0, 10, 4, true, mode);  // antialias ignored
    for (int x = 0; x < 4; ++x) {
      int sum = 0, at = -1;
      for (int k = 0; k < weights.taps; ++k) {
        sum += weights.weights[x * weights.taps + k];
        if (weights.weights[x * weights.taps + k] != 0) at = weights.first[x] + k;
      }
      CHECK(sum == (1 << weights.precision));
      CHECK(at == nearest_source_index(x, 10, 4, mode == Interpolation::kNearestExact));
    }
  }
}

TEST_CASE("bicubic weights have negative lobes; without antialias borders are replicated") {
  AxisWeights weights;
  compute_axis_weights(weights, 5, 0.0, 5, 9, false, Interpolation::kBicubic);
  CHECK(weights.negative);
  CHECK(weights.taps == 4);
  // Output 0 sits at -0.22: taps -2..1 fold onto pixels 0 and 1 (weights sum to one there).
  int sum = 0;
  for (int k = 0; k < weights.taps; ++k) sum += weights.weights[k];
  CHECK(weights.first[0] == 0);
  CHECK(std::abs(sum - (1 << weights.precision)) <= 2);
  CHECK(weights.weights[0] > (1 << weights.precision));  // overshoot: > 1 on the border pixel
  AxisWeights antialiased;
  compute_axis_weights(antialiased, 500, 0.0, 500, 100, true, Interpolation::kBicubic);
  CHECK(antialiased.taps >= 20);  // support 2 x the downscale factor 5 on each side
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
      for (int x = 0; x < 20; ++x)
        same = same && out[(c * 10 + y) * 20 + x] == rgb[(y * 20 + x) * 3 + c];
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
  crop.x = 0;
  crop.y = 0;
  crop.width = 150;
  crop.height = 100;
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
  // 2x2 mask, pad 1 all round with mask fill 7, pad left 1 with 9, crop the 4x3 window at (0, 1),
  // nearest upscale 2x vertically, flip.
  GeometryStep inner{GeometryStep::kPad};
  inner.padding = {1, 1, 1, 1};
  inner.fill = {1, 1, 1};  // the image's fill: masks use their own
  inner.mask_fill = 7;
  GeometryStep outer{GeometryStep::kPad};
  outer.padding = {1, 0, 0, 0};
  outer.mask_fill = 9;
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

TEST_CASE("the op schema builds typed ops and names the op and argument it rejects") {
  const OpSpec crop = make_op("random_crop", {{"size", ArgValue::sequence({48, 64}, true)},
                                              {"pad_if_needed", ArgValue::boolean(true)},
                                              {"mask_fill", ArgValue::integer(255)},
                                              {"padding", ArgValue::none()}});
  CHECK(crop.kind == OpKind::kRandomCrop && crop.height == 48 && crop.width == 64);
  CHECK(crop.pad_if_needed && crop.mask_fill == 255 && !crop.has_padding);
  CHECK_THROWS_KIND(make_op("random_crop", {}), ErrorKind::kInvalidArgument);  // needs size
  CHECK_THROWS_KIND(make_op("hflip", {{"p", ArgValue::string("x")}}), ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(make_op("nope", {}), ErrorKind::kInvalidArgument);
  bool named = false;
  try {
    make_op("pad", {{"padding", ArgValue::integer(1)}, {"fill", ArgValue::integer(256)}});
  } catch (const Error& error) {
    named = std::string(error.what()).find("pad: fill") != std::string::npos;
  }
  CHECK(named);
  for (const OpSchema& schema : op_schemas()) CHECK(&op_schema(schema.kind) == &schema);
}

TEST_CASE("vertical flip moves pixels, boxes and masks") {
  std::vector<uint8_t> rgb(2 * 3 * 3 + 64);
  for (int i = 0; i < 18; ++i) rgb[i] = static_cast<uint8_t>(i);
  GeometryPlan plan;
  plan.steps = {GeometryStep{GeometryStep::kVerticalFlip}};
  plan.width = 2;
  plan.height = 3;
  std::vector<uint8_t> out(2 * 3 * 3);
  ImageTransformer transformer;
  transformer.run(plan, DecodedImage{rgb.data(), 6, 2, 3, 2, 3}, OutputFormat{}, out.data());
  CHECK(out[0] == rgb[12] && out[1] == rgb[15]);  // red plane, row 0 = source row 2
  std::vector<float> boxes = {0, 0, 2, 1};
  std::vector<int64_t> labels = {7};
  apply_geometry_to_boxes(plan, 2, 3, boxes, labels);
  CHECK((boxes == std::vector<float>{0, 2, 2, 3}));
  std::vector<uint8_t> mask = {1, 2, 3, 4, 5, 6}, scratch;
  apply_geometry_to_mask(plan, 2, 3, mask, scratch);
  CHECK((mask == std::vector<uint8_t>{5, 6, 3, 4, 1, 2}));
}

TEST_CASE("IoU crop zeroes boxes centred outside; zoom out pads inside side_range") {
  OpSpec crop = make_op("random_iou_crop", {{"sampler_options", ArgValue::sequence({0.0}, false)}});
  const std::vector<float> boxes = {0, 0, 10, 10, 40, 40, 60, 60};
  for (uint64_t index = 0; index < 20; ++index) {
    SampleRandom random(1, 0, index);
    const GeometryPlan plan = plan_geometry({crop}, 100, 100, random, &boxes);
    CHECK(plan.steps.size() == 1 && plan.steps[0].zero_boxes_outside);
    std::vector<float> moved = boxes;
    std::vector<int64_t> labels = {1, 2};
    apply_geometry_to_boxes(plan, 100, 100, moved, labels);
    const GeometryStep& step = plan.steps[0];
    const size_t expected = centre_within(&boxes[0], step.x, step.y, step.width, step.height) +
                            centre_within(&boxes[4], step.x, step.y, step.width, step.height);
    CHECK(labels.size() == expected && expected >= 1);
  }
  OpSpec zoom = make_op("random_zoom_out", {{"p", ArgValue::real(1.0)}});
  for (uint64_t index = 0; index < 20; ++index) {
    SampleRandom random(1, 0, index);
    const GeometryPlan plan = plan_geometry({zoom}, 50, 40, random);
    CHECK(plan.width >= 50 && plan.width <= 200 && plan.height >= 40 && plan.height <= 160);
  }
}

namespace {

// Runs `steps` on a w x h RGB test image with `format` (output plan_width x plan_height).
std::vector<uint8_t> run_plan(const std::vector<GeometryStep>& steps, int out_w, int out_h,
                              const std::vector<uint8_t>& rgb, int w, int h,
                              const OutputFormat& format) {
  GeometryPlan plan;
  plan.steps = steps;
  plan.width = out_w;
  plan.height = out_h;
  const size_t bytes = static_cast<size_t>(out_w) * out_h * 3 * dtype_size(format.dtype);
  std::vector<uint8_t> out(bytes + 64, 0xAB);
  // Misaligned by 4 bytes: the streaming stores must fall back to plain stores.
  uint8_t* target = out.data() + (reinterpret_cast<uintptr_t>(out.data()) % 32 == 0 ? 4 : 0);
  ImageTransformer transformer;
  transformer.run(plan, DecodedImage{rgb.data(), static_cast<size_t>(w) * 3, w, h, w, h}, format,
                  target);
  return std::vector<uint8_t>(target, target + bytes);
}

}  // namespace

TEST_CASE("fused streaming resize equals the two-pass resize then the affine write") {
  struct Case {
    int w, h, out_w, out_h;
    bool flip, pad_first;
  };
  const std::vector<Case> cases = {
      {500, 375, 512, 512, false, false}, {500, 375, 512, 512, true, false},
      {500, 375, 224, 224, false, false}, {37, 23, 515, 301, true, false},
      {100, 75, 33, 17, false, false},    {640, 480, 40, 500, true, false},
      {60, 40, 64, 64, false, true},      {1, 1, 20, 3, false, false}};
  OutputFormat as_float;
  as_float.dtype = DType::kFloat32;
  as_float.affine = true;
  for (int c = 0; c < 3; ++c) {
    as_float.multiplier[c] = 1.0f / (255.0f * (0.2f + 0.01f * c));
    as_float.offset[c] = -0.4f - 0.05f * c;
  }
  // Bicubic's negative lobes overshoot on this noise: the float write must clamp as uint8 does.
  for (Interpolation mode : {Interpolation::kBilinear, Interpolation::kBicubic,
                             Interpolation::kNearest, Interpolation::kNearestExact})
    for (const Case& t : cases) {
      std::vector<uint8_t> rgb(static_cast<size_t>(t.w) * t.h * 3 + kRowSlack);
      for (size_t i = 0; i < rgb.size(); ++i)
        rgb[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
      GeometryStep resize{GeometryStep::kResize};
      resize.width = t.out_w;
      resize.height = t.out_h;
      resize.interpolation = mode;
      GeometryStep whole{GeometryStep::kCrop};  // a crop after the resize: the two-pass path
      whole.width = t.out_w;
      whole.height = t.out_h;
      GeometryStep pad{GeometryStep::kPad};  // a pad before it: a planar source
      pad.padding = {0, 0, 0, 0};
      std::vector<GeometryStep> fused, reference;
      if (t.pad_first) {
        fused.push_back(pad);
        reference.push_back(pad);
      }
      fused.push_back(resize);
      reference.push_back(resize);
      if (t.flip) {
        fused.push_back(GeometryStep{GeometryStep::kFlip});
        reference.push_back(GeometryStep{GeometryStep::kFlip});
      }
      reference.push_back(whole);
      const auto bytes_fused = run_plan(fused, t.out_w, t.out_h, rgb, t.w, t.h, OutputFormat{});
      const auto bytes_reference =
          run_plan(reference, t.out_w, t.out_h, rgb, t.w, t.h, OutputFormat{});
      CHECK(bytes_fused == bytes_reference);
      const auto floats = run_plan(fused, t.out_w, t.out_h, rgb, t.w, t.h, as_float);
      bool same = true;
      const size_t plane = static_cast<size_t>(t.out_w) * t.out_h;
      for (size_t i = 0; i < plane * 3; ++i) {
        float value;
        std::memcpy(&value, floats.data() + 4 * i, 4);
        const int c = static_cast<int>(i / plane);
        const float expected =
            static_cast<float>(bytes_reference[i]) * as_float.multiplier[c] + as_float.offset[c];
        same = same && std::abs(value - expected) <= 1e-6f * (1.0f + std::abs(expected));
      }
      CHECK(same);
    }
}

TEST_CASE("SIMD horizontal passes equal the scalar definition (interleaved and planar, flipped)") {
  for (auto [in, out] : std::vector<std::pair<int, int>>{{500, 512},
                                                         {375, 512},
                                                         {500, 224},
                                                         {37, 515},
                                                         {100, 33},
                                                         {16, 17},
                                                         {3, 40},
                                                         {640, 600}}) {
    for (int variant = 0; variant < 8; ++variant) {
      const bool flip = variant & 1, antialias = variant & 2;
      const Interpolation mode = variant & 4 ? Interpolation::kBicubic : Interpolation::kBilinear;
      AxisWeights wx;
      compute_axis_weights(wx, in, 0.0, in, out, antialias, mode);
      if (flip) wx.reverse();
      const int rows = 3;
      std::vector<uint8_t> rgb(static_cast<size_t>(in) * 3 * rows + kRowSlack);
      for (size_t i = 0; i < rgb.size(); ++i)
        rgb[i] = static_cast<uint8_t>((i * 2654435761u) >> 11);
      std::vector<uint8_t> planes(static_cast<size_t>(out) * rows * 3 + kRowSlack, 0);
      uint8_t* dst[3] = {planes.data(), planes.data() + out * rows, planes.data() + 2 * out * rows};
      HorizontalPlan plan;
      plan.prepare(wx, in);
#if defined(__x86_64__)
      if (in == 500 && out == 512 && variant == 2 && __builtin_cpu_supports("avx2"))
        CHECK(plan.planar_kernel());
#endif
      resample_horizontal_rgb(rgb.data(), static_cast<size_t>(in) * 3, rows, plan, dst,
                              static_cast<size_t>(out));
      // The planar form on channel 1 split out by hand.
      std::vector<uint8_t> green(static_cast<size_t>(in) * rows + kRowSlack),
          green_out(static_cast<size_t>(out) * rows);
      for (int i = 0; i < in * rows; ++i) green[i] = rgb[3 * i + 1];
      resample_horizontal_plane(green.data(), static_cast<size_t>(in), rows, plan, green_out.data(),
                                static_cast<size_t>(out));
      bool same = true;
      for (int r = 0; r < rows; ++r)
        for (int x = 0; x < out; ++x)
          for (int c = 0; c < 3; ++c) {
            int32_t acc = wx.precision > 0 ? 1 << (wx.precision - 1) : 0;
            for (int k = 0; k < wx.taps && wx.first[x] + k < in; ++k)
              acc += rgb[(static_cast<size_t>(r) * in + wx.first[x] + k) * 3 + c] *
                     wx.weights[static_cast<size_t>(x) * wx.taps + k];
            const int expected = std::min(255, std::max(0, acc >> wx.precision));
            same = same && dst[c][r * out + x] == expected;
            if (c == 1) same = same && green_out[r * out + x] == expected;
          }
      CHECK(same);
    }
  }
}

TEST_MAIN()
