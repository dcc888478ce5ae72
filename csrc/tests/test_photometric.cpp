// Photometric and box kernels on hand-computed cases, and the determinism of their draws
// (tests/test_ops_photometric.py and test_ops_boxes.py compare them with torchvision).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/ops/box_ops.h"
#include "conveyor/ops/op_schema.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/photometric.h"
#include "conveyor/ops/photometric_plan.h"
#include "conveyor/sampling/sample_random.h"

using namespace conveyor;

namespace {

PlanarImage solid(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  PlanarImage image;
  image.reset(width, height, 3);
  std::fill_n(image.plane(0), image.plane_stride, r);
  std::fill_n(image.plane(1), image.plane_stride, g);
  std::fill_n(image.plane(2), image.plane_stride, b);
  return image;
}

}  // namespace

TEST_CASE("brightness scales, clamps and truncates") {
  PlanarImage image = solid(4, 3, 100, 200, 3);
  adjust_brightness(image, 1.5);
  CHECK(image.plane(0)[0] == 150);
  CHECK(image.plane(1)[5] == 255);
  CHECK(image.plane(2)[11] == 4);  // 4.5 truncated
  CHECK_THROWS_KIND(adjust_brightness(image, -1.0), ErrorKind::kInvalidArgument);
}

TEST_CASE("grayscale is the truncated luma in every channel") {
  PlanarImage image = solid(2, 2, 255, 0, 0);
  rgb_to_grayscale(image);
  for (int c = 0; c < 3; ++c) CHECK(image.plane(c)[3] == 76);  // 0.2989 * 255 = 76.2
}

TEST_CASE("hue: half a turn maps red to cyan; gray pixels keep their value") {
  PlanarImage red = solid(3, 2, 255, 0, 0);
  adjust_hue(red, 0.5);
  CHECK(red.plane(0)[0] == 0 && red.plane(1)[0] == 255 && red.plane(2)[0] == 255);
  PlanarImage gray = solid(3, 2, 90, 90, 90);
  adjust_hue(gray, 0.3);
  CHECK(gray.plane(0)[4] == 90 && gray.plane(1)[4] == 90 && gray.plane(2)[4] == 90);
  CHECK_THROWS_KIND(adjust_hue(gray, 0.51), ErrorKind::kInvalidArgument);
}

TEST_CASE("saturation 0 is the floored grayscale; contrast 0 is its mean") {
  PlanarImage image = solid(2, 1, 255, 0, 0);
  image.plane(0)[1] = 0;  // second pixel black
  PlanarImage desaturated = image;
  adjust_saturation(desaturated, 0.0);
  CHECK(desaturated.plane(1)[0] == 76 && desaturated.plane(1)[1] == 0);
  adjust_contrast(image, 0.0);
  CHECK(image.plane(0)[0] == 38 && image.plane(2)[1] == 38);  // mean of 76 and 0
}

TEST_CASE("autocontrast stretches each channel; equalize of a ramp is the identity") {
  PlanarImage image;
  image.reset(16, 16, 3);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 256; ++i) image.plane(c)[i] = static_cast<uint8_t>(i);
  PlanarImage ramp = image;
  equalize(ramp);
  CHECK(std::equal(ramp.plane(0), ramp.plane(0) + 3 * 256, image.plane(0)));
  for (int i = 0; i < 256; ++i) image.plane(1)[i] = static_cast<uint8_t>(50 + i % 101);
  autocontrast(image);
  // torchvision divides by (max - min) * float(1 / 255): 100 / 0.39215687 = 254.99998 -> 254.
  CHECK(image.plane(1)[0] == 0 && image.plane(1)[100] == 254);
  CHECK(image.plane(1)[50] == 127);  // 50 / (100 / 255) = 127.5, truncated
}

TEST_CASE("channel permutation moves planes; invalid permutations are rejected") {
  PlanarImage image = solid(2, 2, 1, 2, 3);
  permute_channels(image, {2, 0, 1});
  CHECK(image.plane(0)[0] == 3 && image.plane(1)[0] == 1 && image.plane(2)[0] == 2);
  CHECK_THROWS_KIND(permute_channels(image, {0, 0, 1}), ErrorKind::kInvalidArgument);
}

TEST_CASE("gaussian blur keeps a constant image and needs reflect room") {
  PlanarImage image = solid(9, 7, 10, 128, 250);
  BlurScratch scratch;
  gaussian_blur(image, {5, 3}, {1.2f, 0.8f}, scratch);
  CHECK(image.plane(0)[20] == 10 && image.plane(1)[62] == 128 && image.plane(2)[0] == 250);
  const std::vector<float> kernel = gaussian_kernel1d(7, 1.5f);
  float sum = 0;
  for (float k : kernel) sum += k;
  CHECK(std::abs(sum - 1.0f) < 1e-6f && kernel[3] > kernel[2] && kernel[0] == kernel[6]);
  CHECK_THROWS_KIND(gaussian_blur(image, {19, 3}, {1, 1}, scratch), ErrorKind::kInvalidArgument);
}

TEST_CASE("photometric draws depend only on (seed, epoch, index)") {
  PhotometricSpec spec;
  spec.kind = PhotometricSpec::kColorJitter;
  spec.brightness = std::array<float, 2>{0.6f, 1.4f};
  spec.hue = std::array<float, 2>{-0.1f, 0.1f};
  spec.validate();
  for (uint64_t index = 0; index < 20; ++index) {
    std::vector<PhotometricStep> a, b;
    SampleRandom ra(1, 2, index), rb(1, 2, index);
    plan_photometric(spec, ra, a);
    plan_photometric(spec, rb, b);
    CHECK(a.size() == 2 && b.size() == 2);
    for (size_t i = 0; i < a.size(); ++i)
      CHECK(a[i].kind == b[i].kind && a[i].factor == b[i].factor);
    for (const auto& step : a)
      CHECK(step.kind == PhotometricStep::kBrightness ? step.factor >= 0.6 && step.factor <= 1.4
                                                      : step.factor >= -0.1 && step.factor <= 0.1);
  }
  SampleRandom random(3, 0, 0);
  std::vector<int> order = random_permutation(5, random);
  std::sort(order.begin(), order.end());
  CHECK((order == std::vector<int>{0, 1, 2, 3, 4}));
}

TEST_CASE("erasing draws a rectangle inside the image, or none") {
  ErasingSpec spec;
  spec.p = 1.0;
  spec.values = {1.0f, 2.0f, 3.0f};
  spec.validate();
  for (uint64_t index = 0; index < 50; ++index) {
    SampleRandom random(9, 0, index);
    const ErasingParams params = plan_erasing(spec, 20, 30, random);
    if (!params.apply) continue;
    CHECK(params.top >= 0 && params.top + params.height <= 20);
    CHECK(params.left >= 0 && params.left + params.width <= 30);
    CHECK(params.values == spec.values);
  }
  std::vector<float> image(3 * 4 * 5, 0.5f);
  const float values[3] = {-1, -2, -3};
  erase(image.data(), DType::kFloat32, 4, 5, 1, 2, 2, 3, values, false);
  CHECK(image[0 * 20 + 1 * 5 + 2] == -1 && image[2 * 20 + 2 * 5 + 4] == -3);
  CHECK(image[1 * 20 + 0 * 5 + 2] == 0.5f && image[1 * 20 + 3 * 5 + 4] == 0.5f);
}

TEST_CASE("box formats round-trip; clamp and sanitize follow torchvision's rules") {
  std::vector<float> boxes = {10, 20, 30, 60, -5, 2, 4, 8, 5, 5, 5.5f, 9, 90, 90, 120, 95};
  std::vector<float> copy = boxes;
  convert_box_format(copy.data(), 4, BoxFormat::kXYXY, BoxFormat::kCXCYWH);
  CHECK(copy[0] == 20 && copy[1] == 40 && copy[2] == 20 && copy[3] == 40);
  convert_box_format(copy.data(), 4, BoxFormat::kCXCYWH, BoxFormat::kXYWH);
  convert_box_format(copy.data(), 4, BoxFormat::kXYWH, BoxFormat::kXYXY);
  CHECK(copy == boxes);
  // Canvas 100 x 100: box 1 has x1 < 0, box 2 is 0.5 wide, box 3 crosses x = 100.
  const std::vector<uint8_t> keep =
      sanitize_mask(boxes.data(), 4, BoxFormat::kXYXY, 100, 100, 1.0f, 1.0f);
  CHECK((keep == std::vector<uint8_t>{1, 0, 0, 0}));
  std::vector<int64_t> labels = {7, 8, 9, 10};
  CHECK(keep_rows(labels, keep, 1) == 1 && labels == std::vector<int64_t>{7});
  CHECK(keep_rows(boxes, keep, 4) == 1 && boxes.size() == 4 && boxes[3] == 60);
  std::vector<float> outside = {-5, 2, 140, 8};
  clamp_boxes(outside.data(), 1, BoxFormat::kXYXY, 100, 100);
  CHECK((outside == std::vector<float>{0, 2, 100, 8}));
  CHECK_THROWS_KIND(parse_box_format("xyz"), ErrorKind::kInvalidArgument);
  CHECK(parse_box_format("cxcywh") == BoxFormat::kCXCYWH);
}

TEST_CASE("compile_pipeline puts photometric, erasing and box ops in their stages") {
  const auto op = [](const char* name, std::vector<std::pair<std::string, ArgValue>> args = {}) {
    return make_op(name, args);
  };
  const ArgValue range = ArgValue::sequence({0.5, 1.5}, false);
  const Pipeline pipeline = compile_pipeline({
      op("photometric_distort", {{"brightness", range}, {"p", ArgValue::real(0.5)}}),
      op("resize", {{"size", ArgValue::sequence({32, 32}, true)}}),
      op("color_jitter", {{"contrast", range}}),
      op("gaussian_blur", {{"kernel_size", ArgValue::integer(3)}}),
      op("to_dtype", {{"dtype", ArgValue::string("float32")}, {"scale", ArgValue::boolean(true)}}),
      op("random_erasing", {{"value", ArgValue::real(0.0)}}),
      op("sanitize_bounding_boxes"),
  });
  CHECK(pipeline.geometric.size() == 1);
  CHECK(pipeline.photometric_before.size() == 1 &&
        pipeline.photometric_before[0].kind == PhotometricSpec::kPhotometricDistort);
  CHECK(pipeline.photometric_after.size() == 2 &&
        pipeline.photometric_after[1].kind == PhotometricSpec::kGaussianBlur);
  CHECK(pipeline.erasing.size() == 1 && pipeline.box_ops.size() == 1);
  CHECK(pipeline.fixed_size.has_value());
  // Misplaced ops name their index.
  CHECK_THROWS_KIND(compile_pipeline({op("resize", {{"size", ArgValue::integer(8)}}),
                                      op("grayscale"), op("hflip")}),
                    ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(
      compile_pipeline({op("to_dtype", {{"dtype", ArgValue::string("float32")}}), op("grayscale")}),
      ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(
      compile_pipeline({op("random_erasing"), op("normalize", {{"mean", ArgValue::real(0.5)},
                                                               {"std", ArgValue::real(0.2)}})}),
      ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(op("color_jitter", {{"hue", ArgValue::sequence({-0.7, 0.1}, false)}}),
                    ErrorKind::kInvalidArgument);  // caught when the pipeline is compiled too
  CHECK_THROWS_KIND(op("gaussian_blur", {{"kernel_size", ArgValue::integer(4)}}),
                    ErrorKind::kInvalidArgument);
  CHECK_THROWS_KIND(op("sanitize_bounding_boxes", {{"min_size", ArgValue::real(0.5)}}),
                    ErrorKind::kInvalidArgument);
}

TEST_MAIN()
