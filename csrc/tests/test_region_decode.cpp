// The sample processor decodes only the plan's crop region (and DCT-scaled where the plan
// allows): its output must equal the same plan run on the whole image decoded at the same
// scale, bit for bit, for every crop op, with flips, gray and progressive files.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" {
#include <jpeglib.h>
}

#include "check.h"
#include "conveyor/codecs/decode_image.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/image_transform.h"
#include "conveyor/ops/op_spec.h"
#include "conveyor/ops/output_writer.h"
#include "conveyor/ops/planar_image.h"
#include "conveyor/runtime/sample_processor.h"
#include "conveyor/sampling/sample_random.h"
#include "sized_op.h"

using namespace conveyor;
using conveyor_test::sized_op;

namespace {

std::string write_jpeg(const std::string& dir, int index, int width, int height, int components,
                       bool progressive) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * components);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < components; ++c)
        pixels[(static_cast<size_t>(y) * width + x) * components + c] = static_cast<uint8_t>(
            128 + 90 * std::sin(0.07 * x * (c + 1) + 0.05 * y + index) + ((x ^ y) & 15));
  const std::string path = dir + "/" + std::to_string(index) + ".jpg";
  std::FILE* file = std::fopen(path.c_str(), "wb");
  jpeg_compress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, file);
  cinfo.image_width = JDIMENSION(width);
  cinfo.image_height = JDIMENSION(height);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, 90, TRUE);
  if (progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(width) * components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pixels.data() + stride * cinfo.next_scanline;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(file);
  return path;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  std::vector<uint8_t> bytes;
  uint8_t buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + n);
  std::fclose(file);
  return bytes;
}

// The same sample without region decoding: the whole image decoded at the plan's DCT scale.
std::vector<uint8_t> reference(const Pipeline& pipeline, const std::string& path, uint64_t seed,
                               uint64_t epoch, int64_t index) {
  const std::vector<uint8_t> bytes = read_all(path);
  codecs::ImageDecoder decoder;
  const codecs::JpegHeader header = decoder.jpeg().read_header(bytes.data(), bytes.size());
  SampleRandom random(seed, epoch, static_cast<uint64_t>(index));
  const GeometryPlan plan = plan_geometry(pipeline.geometric, header.width, header.height, random);
  codecs::DecodeOptions options;
  options.mode = ColorMode::kRgb;
  options.scale = {1, choose_dct_scale(plan, header.width, header.height)};
  const Image image = decoder.decode(bytes.data(), bytes.size(), options);
  std::vector<uint8_t> padded(image.shape().bytes() + kRowSlack);
  std::copy(image.data(), image.data() + image.shape().bytes(), padded.begin());
  std::vector<uint8_t> out(static_cast<size_t>(plan.width) * plan.height * 3);
  ImageTransformer transformer;
  transformer.run(plan,
                  DecodedImage{padded.data(), image.shape().row_bytes(), image.shape().width,
                               image.shape().height, header.width, header.height},
                  OutputFormat::from(pipeline), out.data());
  return out;
}

}  // namespace

TEST_CASE("region decode gives the whole-image decode's output for every crop op") {
  char pattern[] = "/tmp/conveyor_region_test_XXXXXX";
  const std::string dir = mkdtemp(pattern);
  EngineSources sources;
  const int sizes[][2] = {{500, 375}, {333, 500}, {97, 61}, {640, 480}};
  int index = 0;
  for (const auto& size : sizes)
    for (int components : {3, 1})
      for (bool progressive : {false, true})
        sources.image_paths.push_back(
            write_jpeg(dir, index++, size[0], size[1], components, progressive));

  OpSpec flip = sized_op(OpKind::kHorizontalFlip, 0, 0);
  OpSpec rrc_aliased = sized_op(OpKind::kRandomResizedCrop, 40, 56);
  rrc_aliased.antialias = false;
  OpSpec rrc_wide = sized_op(OpKind::kRandomResizedCrop, 24, 24);
  rrc_wide.scale = {0.5, 1.0};
  OpSpec small_resize = sized_op(OpKind::kResize, 20, 30);
  const std::vector<std::vector<OpSpec>> pipelines = {
      {sized_op(OpKind::kRandomResizedCrop, 32, 32), flip},  // DCT-scaled region
      {flip, sized_op(OpKind::kRandomResizedCrop, 64, 48)},  // crop after a flip
      {rrc_wide, flip},                                      // large regions, 1/4 and 1/8 scales
      {rrc_aliased},                                         // plain bilinear: no DCT scaling
      {sized_op(OpKind::kCenterCrop, 50, 40)},               // no resize: full scale
      {sized_op(OpKind::kRandomCrop, 60, 30), flip},
      {sized_op(OpKind::kCenterCrop, 57, 90), small_resize},  // crop then resize
  };
  for (const std::vector<OpSpec>& ops : pipelines) {
    const Pipeline pipeline = compile_pipeline(ops);
    SampleProcessor processor(pipeline, sources, 5);
    for (uint64_t epoch = 0; epoch < 3; ++epoch) {
      for (int64_t i = 0; i < static_cast<int64_t>(sources.size()); ++i) {
        SampleOutput output;
        std::vector<uint8_t> slot(640 * 480 * 3);
        processor.process(i, epoch, slot.data(), nullptr, output);
        const uint8_t* image = output.image ? output.image.get() : slot.data();
        const std::vector<uint8_t> expected =
            reference(pipeline, sources.image_paths[static_cast<size_t>(i)], 5, epoch, i);
        const bool same = expected.size() == size_t(output.width) * output.height * 3 &&
                          std::equal(expected.begin(), expected.end(), image);
        if (!same)
          std::fprintf(stderr, "pipeline %d image %d epoch %d differs\n",
                       int(&ops - pipelines.data()), int(i), int(epoch));
        CHECK(same);
      }
    }
  }
}

TEST_MAIN()
