// A resize followed by a crop computes only the crop's window of outputs, and the sample
// processor then decodes only the source pixels those outputs read. Both must give exactly
// the bytes of the reference path (the whole resize, then the crop, from the whole image).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "check.h"
#include "conveyor/core/error.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/image_transform.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/planar_image.h"
#include "conveyor/ops/resize_weights.h"
#include "conveyor/runtime/read_file.h"
#include "conveyor/runtime/sample_processor.h"
#include "jpeg_file.h"
#include "sized_op.h"

using namespace conveyor;
using conveyor_test::sized_op;

namespace {

// windowed_resize_source's scratch, shared by every test: its reuse is exercised too.
AxisWeights scratch_x, scratch_y;

OpSpec resize_op(int height, int width, bool shorter_side, int max_size, bool antialias) {
  OpSpec op = sized_op(OpKind::kResize, height,
                       shorter_side ? height : width);  // (as the binding fills it)
  op.shorter_side = shorter_side;
  op.max_size = max_size;
  op.antialias = antialias;
  return op;
}

OpSpec flip_op() {
  OpSpec op;
  op.kind = OpKind::kHorizontalFlip;
  op.p = 1.0;
  return op;
}

OpSpec pad_op(int amount) {
  OpSpec op;
  op.kind = OpKind::kPad;
  op.padding = {amount, amount + 1, amount + 2, amount};
  op.fill = {7, 8, 9};
  return op;
}

std::vector<uint8_t> test_image(int width, int height, uint32_t seed) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3 + kRowSlack);
  for (size_t i = 0; i < rgb.size(); ++i) {
    // Smooth gradients plus noise: both matter for the filters.
    const size_t pixel = i / 3, x = pixel % static_cast<size_t>(width),
                 y = pixel / static_cast<size_t>(width);
    rgb[i] =
        static_cast<uint8_t>((x * 3 + y * 5 + (i % 3) * 40) + (((i + seed) * 2654435761u) >> 27));
  }
  return rgb;
}

OutputFormat float_format() {
  OutputFormat format;
  format.dtype = DType::kFloat32;
  format.affine = true;
  for (int c = 0; c < 3; ++c) {
    format.multiplier[c] = 1.0f / (255.0f * (0.229f + 0.01f * c));
    format.offset[c] = -0.485f / (0.229f + 0.01f * c);
  }
  return format;
}

std::vector<uint8_t> run(ImageTransformer& transformer, const GeometryPlan& plan,
                         const DecodedImage& image, const OutputFormat& format) {
  std::vector<uint8_t> out(
      static_cast<size_t>(plan.width) * plan.height * 3 * dtype_size(format.dtype), 0xCD);
  transformer.run(plan, image, format, out.data());
  return out;
}

// The image (logical_width x logical_height, held as `physical` pixels at `scaled` size, i.e.
// DCT-scaled when smaller) as the transformer gets it: whole, or only `region` of it.
struct Source {
  std::vector<uint8_t> pixels;
  DecodedImage image;
};

Source whole_source(const std::vector<uint8_t>& rgb, int scaled_width, int scaled_height,
                    int logical_width, int logical_height) {
  Source source;
  source.pixels = rgb;
  source.image = DecodedImage{nullptr,       static_cast<size_t>(scaled_width) * 3,
                              scaled_width,  scaled_height,
                              logical_width, logical_height};
  source.image.scaled_width = scaled_width;
  source.image.scaled_height = scaled_height;
  source.image.data = source.pixels.data();
  return source;
}

Source region_source(const std::vector<uint8_t>& rgb, int scaled_width, int scaled_height,
                     int logical_width, int logical_height, const SourceRegion& region) {
  Source source;
  const size_t row = static_cast<size_t>(region.width) * 3;
  source.pixels.assign(row * region.height + kRowSlack, 0);
  for (int y = 0; y < region.height; ++y)
    std::memcpy(source.pixels.data() + row * y,
                rgb.data() + (static_cast<size_t>(region.y + y) * scaled_width + region.x) * 3,
                row);
  source.image = DecodedImage{source.pixels.data(), row,           region.width,
                              region.height,        logical_width, logical_height};
  source.image.origin_x = region.x;
  source.image.origin_y = region.y;
  source.image.scaled_width = scaled_width;
  source.image.scaled_height = scaled_height;
  return source;
}

struct Pipelines {
  std::vector<std::string> names;
  std::vector<std::vector<OpSpec>> ops;
  void add(const std::string& name, std::vector<OpSpec> pipeline) {
    names.push_back(name);
    ops.push_back(std::move(pipeline));
  }
};

Pipelines windowed_pipelines() {
  Pipelines p;
  const OpKind center = OpKind::kCenterCrop, random = OpKind::kRandomCrop;
  p.add("Resize(256) CenterCrop(224)",
        {resize_op(256, 0, true, 0, true), sized_op(center, 224, 224)});
  p.add("Resize((256, 300)) CenterCrop(224)",
        {resize_op(256, 300, false, 0, true), sized_op(center, 224, 224)});
  p.add("Resize(64, max_size=80) CenterCrop(31, 47)",
        {resize_op(64, 0, true, 80, true), sized_op(center, 31, 47)});
  p.add("Resize(100) antialias=False CenterCrop(77)",
        {resize_op(100, 0, true, 0, false), sized_op(center, 77, 77)});
  p.add("upscale Resize(600) CenterCrop(512)",
        {resize_op(600, 0, true, 0, true), sized_op(center, 512, 512)});
  p.add("flip Resize(57) CenterCrop(33, 41)",
        {flip_op(), resize_op(57, 0, true, 0, true), sized_op(center, 33, 41)});
  p.add("Resize(57) flip CenterCrop(33, 41) flip",
        {resize_op(57, 0, true, 0, true), flip_op(), sized_op(center, 33, 41), flip_op()});
  p.add("flip Resize(90) RandomCrop(50, 61) flip",
        {flip_op(), resize_op(90, 0, true, 0, true), sized_op(random, 50, 61), flip_op()});
  p.add("Resize(120) RandomCrop(64) then Pad (windowed, not fused)",
        {resize_op(120, 0, true, 0, true), sized_op(random, 64, 64), pad_op(3)});
  p.add("Resize(150) CenterCrop(96) flip Resize(40) CenterCrop(21)",
        {resize_op(150, 0, true, 0, true), sized_op(center, 96, 96), flip_op(),
         resize_op(40, 0, true, 0, true), sized_op(center, 21, 21)});
  p.add("Pad then Resize(70) CenterCrop(50) (planar source)",
        {pad_op(2), resize_op(70, 0, true, 0, true), sized_op(center, 50, 50)});
  p.add("CenterCrop larger than the resize pads",
        {resize_op(30, 0, true, 0, true), sized_op(center, 40, 40)});
  p.add("Resize(5) CenterCrop(3)", {resize_op(5, 0, true, 0, true), sized_op(center, 3, 3)});
  return p;
}

}  // namespace

TEST_CASE("window weights equal the whole weights' outputs, moved into a region") {
  for (bool antialias : {true, false}) {
    for (int out : {7, 224, 256, 640}) {
      AxisWeights full, window;
      compute_axis_weights(full, 500, 0.0, 500, out, antialias);
      const int begin = out / 5, count = out / 2;
      window_axis_weights(window, full, begin, count, false, 0, 500);
      CHECK(window.precision == full.precision && window.taps == full.taps);
      bool same = true;
      for (int x = 0; x < count; ++x) {
        // Placed elsewhere at most by zero weights: the weighted inputs are the same.
        for (int k = 0; k < full.taps; ++k) {
          const int input = full.first[begin + x] + k;
          const int at = input - window.first[x];
          const int16_t w = full.weights[static_cast<size_t>(begin + x) * full.taps + k];
          if (w != 0)
            same = same && at >= 0 && at < window.taps &&
                   window.weights[static_cast<size_t>(x) * window.taps + at] == w;
        }
      }
      CHECK(same);
    }
  }
  // A nonzero weight outside the decoded region is an internal error, never a silent read.
  AxisWeights full, window;
  compute_axis_weights(full, 100, 0.0, 100, 50, true);
  bool threw = false;
  try {
    window_axis_weights(window, full, 10, 20, false, 30, 20);
  } catch (const Error&) {
    threw = true;
  }
  CHECK(threw);
}

TEST_CASE("windowed resize then crop is bit-identical to the whole resize then the crop") {
  const Pipelines pipelines = windowed_pipelines();
  const int sizes[][2] = {{500, 375}, {375, 500}, {333, 247}, {256, 256},
                          {640, 427}, {97, 131},  {9, 7},     {3, 5}};
  const OutputFormat formats[] = {OutputFormat{}, float_format()};
  int compared = 0;
  for (size_t p = 0; p < pipelines.ops.size(); ++p) {
    for (const auto& size : sizes) {
      const int w = size[0], h = size[1];
      const std::vector<uint8_t> rgb = test_image(w, h, static_cast<uint32_t>(p));
      for (uint64_t seed : {1u, 2u}) {
        SampleRandom random(seed, 0, 0);
        GeometryPlan plan;
        try {
          plan = plan_geometry(pipelines.ops[p], w, h, random);
        } catch (const Error&) {
          continue;  // a RandomCrop larger than the resized image
        }
        const Source whole = whole_source(rgb, w, h, w, h);
        const std::optional<SourceRegion> region =
            windowed_resize_source(plan, w, h, 0, scratch_x, scratch_y);
        for (const OutputFormat& format : formats) {
          ImageTransformer reference(false), windowed;
          const auto expected = run(reference, plan, whole.image, format);
          const bool same_whole = run(windowed, plan, whole.image, format) == expected;
          bool same_region = true;
          if (region) {
            const Source part = region_source(rgb, w, h, w, h, *region);
            same_region = run(windowed, plan, part.image, format) == expected;
          }
          if (!same_whole || !same_region)
            std::printf("  differs: %s on %dx%d (seed %d, %s)%s\n", pipelines.names[p].c_str(), w,
                        h, static_cast<int>(seed), format.affine ? "float" : "uint8",
                        same_whole ? " from a region" : "");
          CHECK(same_whole && same_region);
          ++compared;
        }
      }
    }
  }
  CHECK(compared > 150);
}

TEST_CASE("a region decode of the windowed resize's taps covers them, also DCT-scaled") {
  // The processor decodes windowed_resize_source's rectangle; with a DCT-scaled image the plan
  // still refers to the full-resolution size.
  const int logical_w = 1000, logical_h = 750;
  for (int scale : {1, 2, 4}) {
    const int w = logical_w / scale, h = logical_h / scale;
    const std::vector<uint8_t> rgb = test_image(w, h, static_cast<uint32_t>(scale));
    for (const auto& ops :
         {std::vector<OpSpec>{resize_op(96, 0, true, 0, true),
                              sized_op(OpKind::kCenterCrop, 64, 64)},
          std::vector<OpSpec>{flip_op(), resize_op(100, 120, false, 0, true),
                              sized_op(OpKind::kRandomCrop, 33, 70), flip_op()}}) {
      SampleRandom random(7, 0, 0);
      const GeometryPlan plan = plan_geometry(ops, logical_w, logical_h, random);
      for (int margin : {0, 1}) {
        const std::optional<SourceRegion> region =
            windowed_resize_source(plan, w, h, margin, scratch_x, scratch_y);
        CHECK(region.has_value());
        if (!region) continue;
        CHECK(region->width < w && region->height < h);  // it does skip pixels
        const Source whole = whole_source(rgb, w, h, logical_w, logical_h);
        const Source part = region_source(rgb, w, h, logical_w, logical_h, *region);
        for (const OutputFormat& format : {OutputFormat{}, float_format()}) {
          ImageTransformer reference(false), windowed;
          CHECK(run(windowed, plan, part.image, format) ==
                run(reference, plan, whole.image, format));
        }
      }
    }
  }
}

TEST_CASE("plans without a resize right before a crop read the whole image") {
  SampleRandom random(1, 0, 0);
  const GeometryPlan pads = plan_geometry(
      {resize_op(30, 0, true, 0, true), sized_op(OpKind::kCenterCrop, 40, 40)}, 100, 80, random);
  CHECK(!windowed_resize_source(pads, 100, 80, 1, scratch_x, scratch_y).has_value());
  const GeometryPlan resize_only =
      plan_geometry({resize_op(30, 0, true, 0, true)}, 100, 80, random);
  CHECK(!windowed_resize_source(resize_only, 100, 80, 1, scratch_x, scratch_y).has_value());
  const GeometryPlan crop_first = plan_geometry(
      {sized_op(OpKind::kCenterCrop, 40, 40), resize_op(30, 0, true, 0, true)}, 100, 80, random);
  CHECK(!windowed_resize_source(crop_first, 100, 80, 1, scratch_x, scratch_y).has_value());
  // Resize(256) + CenterCrop(224) of 500x375 (341x256 resized) reads about 330 x 330 pixels.
  const GeometryPlan val =
      plan_geometry({resize_op(256, 0, true, 0, true), sized_op(OpKind::kCenterCrop, 224, 224)},
                    500, 375, random);
  const std::optional<SourceRegion> region =
      windowed_resize_source(val, 500, 375, 1, scratch_x, scratch_y);
  CHECK(region && region->x > 80 && region->width < 340 && region->y > 15 && region->height < 340);
}

namespace {

// What the engine did before windowed resizes: the whole JPEG decoded (DCT-scaled as the plan
// allows), the whole resize, then the crop.
std::vector<uint8_t> full_decode_reference(const std::string& path, const Pipeline& pipeline,
                                           uint64_t seed, int64_t index) {
  std::vector<uint8_t> bytes;
  read_file(path, bytes);
  codecs::ImageDecoder decoder;
  const codecs::JpegHeader header = decoder.jpeg().read_header(bytes.data(), bytes.size());
  SampleRandom random(seed, 0, static_cast<uint64_t>(index));
  const GeometryPlan plan = plan_geometry(pipeline.geometric, header.width, header.height, random);
  codecs::DecodeOptions options;
  options.mode = ColorMode::kRgb;
  options.scale = codecs::ScalingFactor{1, choose_dct_scale(plan, header.width, header.height)};
  const ImageShape shape = decoder.output_shape(bytes.data(), bytes.size(), options);
  std::vector<uint8_t> pixels(shape.row_bytes() * shape.height + kRowSlack);
  decoder.decode(bytes.data(), bytes.size(), options,
                 ImageView{pixels.data(), shape, shape.row_bytes()});
  DecodedImage image{pixels.data(), shape.row_bytes(), shape.width,
                     shape.height,  header.width,      header.height};
  image.scaled_width = shape.width;
  image.scaled_height = shape.height;
  ImageTransformer reference(false);
  return run(reference, plan, image, OutputFormat::from(pipeline));
}

}  // namespace

TEST_CASE(
    "JPEG files: region decode of the windowed taps equals the full-decode path, DCT-scaled too") {
  char pattern[] = "/tmp/conveyor_windowed_test_XXXXXX";
  const std::string dir = mkdtemp(pattern) ? pattern : "/tmp";
  const int sizes[][3] = {{500, 375, TJSAMP_420},
                          {333, 517, TJSAMP_444},
                          {1203, 905, TJSAMP_422},
                          {2100, 1500, TJSAMP_420},
                          {61, 47, TJSAMP_420}};
  EngineSources sources;
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i)
    sources.image_paths.push_back(conveyor_test::write_jpeg_file(
        dir + "/" + std::to_string(i) + ".jpg",
        test_image(sizes[i][0], sizes[i][1], static_cast<uint32_t>(i)), sizes[i][0], sizes[i][1],
        sizes[i][2]));
  OpSpec to_float;
  to_float.kind = OpKind::kToDtype;
  to_float.dtype = DType::kFloat32;
  to_float.scale_values = true;
  const std::vector<std::vector<OpSpec>> pipelines = {
      {resize_op(256, 0, true, 0, true), sized_op(OpKind::kCenterCrop, 224, 224), to_float},
      {resize_op(40, 0, true, 0, true),
       sized_op(OpKind::kCenterCrop, 32, 24)},  // DCT-scaled (1/2 to 1/8) on the larger ones
      {flip_op(), resize_op(45, 50, false, 0, true), sized_op(OpKind::kRandomCrop, 30, 33),
       flip_op()},
      {resize_op(100, 0, true, 0, false), sized_op(OpKind::kCenterCrop, 41, 41)}};
  for (const auto& ops : pipelines) {
    const Pipeline pipeline = compile_pipeline(ops);
    SampleProcessor processor(pipeline, sources, 5);
    const size_t bytes = static_cast<size_t>(pipeline.fixed_size->first) *
                         pipeline.fixed_size->second * 3 * dtype_size(pipeline.dtype);
    for (size_t i = 0; i < sources.size(); ++i) {
      std::vector<uint8_t> out(bytes, 0xEE);
      SampleOutput output;
      processor.process(static_cast<int64_t>(i), 0, out.data(), nullptr, output);
      const bool same = out == full_decode_reference(sources.image_paths[i], pipeline, 5,
                                                     static_cast<int64_t>(i));
      if (!same) std::printf("  differs: image %zu (%dx%d)\n", i, sizes[i][0], sizes[i][1]);
      CHECK(same);
    }
  }
  for (const std::string& path : sources.image_paths) std::remove(path.c_str());
  std::remove(dir.c_str());
}

TEST_MAIN()
