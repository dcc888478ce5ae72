#include "conveyor/runtime/sample_processor.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>

#include "conveyor/core/error.h"
#include "conveyor/ops/box_geometry.h"
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/mask_geometry.h"
#include "conveyor/ops/planar_image.h"
#include "conveyor/runtime/padded_slot.h"
#include "conveyor/runtime/read_file.h"
#include "conveyor/sampling/sample_random.h"

namespace conveyor {

void EngineSources::validate() const {
  const size_t n = image_paths.size();
  if (!mask_paths.empty() && mask_paths.size() != n)
    throw Error(ErrorKind::kInvalidArgument, "mask_paths has " + std::to_string(mask_paths.size()) +
                                                 " entries for " + std::to_string(n) + " images");
  if (!source_sizes.empty() && source_sizes.size() != 2 * n)
    throw Error(ErrorKind::kInvalidArgument, "source_sizes must have shape [N, 2] = [" +
                                                 std::to_string(n) + ", 2], got " +
                                                 std::to_string(source_sizes.size()) + " values");
  if (!has_boxes) return;
  if (boxes.size() % 4 != 0)
    throw Error(ErrorKind::kInvalidArgument, "boxes must have shape [M, 4]");
  if (offsets.size() != n + 1)
    throw Error(ErrorKind::kInvalidArgument, "offsets must have N + 1 = " + std::to_string(n + 1) +
                                                 " entries, got " + std::to_string(offsets.size()));
  const int64_t m = static_cast<int64_t>(boxes.size() / 4);
  if (offsets.front() != 0 || offsets.back() != m)
    throw Error(
        ErrorKind::kInvalidArgument,
        "offsets must start at 0 and end at the number of boxes (" + std::to_string(m) + ")");
  for (size_t i = 0; i < n; ++i)
    if (offsets[i + 1] < offsets[i])
      throw Error(ErrorKind::kInvalidArgument, "offsets must be non-decreasing (offsets[" +
                                                   std::to_string(i + 1) + "] < offsets[" +
                                                   std::to_string(i) + "])");
}

SampleProcessor::SampleProcessor(const Pipeline& pipeline, const EngineSources& sources,
                                 uint64_t seed, bool dct_scaling,
                                 std::shared_ptr<BufferPool> sample_buffers)
    : pipeline_(pipeline),
      sources_(sources),
      sample_buffers_(std::move(sample_buffers)),
      seed_(seed),
      dct_scaling_(dct_scaling),
      format_(OutputFormat::from(pipeline)),
      photometric_(pipeline) {}

void SampleProcessor::process(int64_t index, uint64_t epoch, void* image_slot, uint8_t* mask_slot,
                              SampleOutput& output, const PaddedSlot* padded) {
  const std::string& path = sources_.image_paths[static_cast<size_t>(index)];
  read_file(path, file_bytes_);
  const uint8_t* data = file_bytes_.data();
  const size_t size = file_bytes_.size();
  const codecs::ImageFormat kind = codecs::detect_image_format(data, size);
  codecs::DecodeOptions options;
  options.mode = ColorMode::kRgb;
  int width = 0, height = 0;
  if (kind == codecs::ImageFormat::kJpeg) {
    const codecs::JpegHeader header = decoder_.jpeg().read_header(data, size);
    width = header.width;
    height = header.height;
  } else if (kind == codecs::ImageFormat::kPng) {
    const codecs::PngHeader header = decoder_.png().read_header(data, size);
    width = header.width;
    height = header.height;
  }
  if (kind == codecs::ImageFormat::kUnknown) decoder_.output_shape(data, size, options);  // throws
  output.source_width = width;
  output.source_height = height;
  // Decoded at 1/dct_scale and/or only in part: the plan still refers to full-resolution
  // coordinates of the whole image.
  if (sources_.has_boxes) {
    const int64_t begin = sources_.offsets[static_cast<size_t>(index)];
    const int64_t end = sources_.offsets[static_cast<size_t>(index) + 1];
    output.boxes.assign(sources_.boxes.begin() + 4 * begin, sources_.boxes.begin() + 4 * end);
    output.box_ids.resize(static_cast<size_t>(end - begin));
    std::iota(output.box_ids.begin(), output.box_ids.end(), begin);
  }
  SampleRandom random(seed_, epoch, static_cast<uint64_t>(index));
  const GeometryPlan plan = plan_geometry(pipeline_.geometric, width, height, random,
                                          sources_.has_boxes ? &output.boxes : nullptr);
  photometric_.draw(random, plan.width, plan.height);
  const bool whole = photometric_.needs_whole_image();
  DecodedImage decoded;
  decoded.logical_width = width;
  decoded.logical_height = height;
  if (kind == codecs::ImageFormat::kJpeg) {
    const int dct_scale = dct_scaling_ && !whole ? choose_dct_scale(plan, width, height) : 1;
    options.scale = codecs::ScalingFactor{1, dct_scale};
    decoded.scaled_width = options.scale.scale(width);
    decoded.scaled_height = options.scale.scale(height);
    // Decode only what the plan reads (a region decode is exact: same pixels as the whole
    // image's): the plan's first crop widened by a pixel for the rounding of DCT-scaled
    // coordinates, or the taps of a first resize windowed by its crop plus a pixel.
    const SourceRegion region =
        whole ? SourceRegion{0, 0, width, height} : source_region(plan, width, height);
    std::optional<SourceRegion> scaled_region;
    if (region.width < width || region.height < height) {
      const auto scaled_begin = [](int at, int scaled, int full) {
        return std::max(0, static_cast<int>(static_cast<int64_t>(at) * scaled / full) - 1);
      };
      const auto scaled_end = [](int at, int scaled, int full) {
        return std::min(
            scaled, static_cast<int>((static_cast<int64_t>(at) * scaled + full - 1) / full) + 1);
      };
      const int x0 = scaled_begin(region.x, decoded.scaled_width, width);
      const int y0 = scaled_begin(region.y, decoded.scaled_height, height);
      const int x1 = scaled_end(region.x + region.width, decoded.scaled_width, width);
      const int y1 = scaled_end(region.y + region.height, decoded.scaled_height, height);
      scaled_region = SourceRegion{x0, y0, x1 - x0, y1 - y0};
    } else if (!whole) {
      scaled_region = windowed_resize_source(plan, decoded.scaled_width, decoded.scaled_height, 1,
                                             source_x_, source_y_);
    }
    if (scaled_region && (scaled_region->width < decoded.scaled_width ||
                          scaled_region->height < decoded.scaled_height)) {
      options.crop = codecs::CropRegion{scaled_region->x, scaled_region->y, scaled_region->width,
                                        scaled_region->height};
      decoded.origin_x = scaled_region->x;
      decoded.origin_y = scaled_region->y;
    }
  }
  const ImageShape shape = decoder_.output_shape(data, size, options);
  const size_t stride = shape.row_bytes();
  pixels_.resize(stride * static_cast<size_t>(shape.height) + kRowSlack);
  decoder_.decode(data, size, options, ImageView{pixels_.data(), shape, stride});
  decoded.data = pixels_.data();
  decoded.row_stride = stride;
  decoded.width = shape.width;
  decoded.height = shape.height;

  const uint8_t* mask = nullptr;
  if (!sources_.mask_paths.empty()) {
    const std::string& mask_path = sources_.mask_paths[static_cast<size_t>(index)];
    try {
      read_file(mask_path, mask_pixels_);
      codecs::DecodeOptions mask_options;  // unchanged: palette indices
      const ImageShape mask_shape =
          decoder_.output_shape(mask_pixels_.data(), mask_pixels_.size(), mask_options);
      if (mask_shape.channels != 1 || mask_shape.sample_bytes != 1)
        throw Error(ErrorKind::kDecode,
                    "a mask must be a single-channel 8-bit image (palette or gray), got " +
                        std::to_string(mask_shape.channels) + " channel(s) of " +
                        std::to_string(8 * mask_shape.sample_bytes) + " bits");
      if (mask_shape.width != width || mask_shape.height != height)
        throw Error(ErrorKind::kDecode, "mask size " + std::to_string(mask_shape.width) + "x" +
                                            std::to_string(mask_shape.height) +
                                            " differs from the image size " +
                                            std::to_string(width) + "x" + std::to_string(height));
      mask_.resize(mask_shape.bytes());
      decoder_.decode(mask_pixels_.data(), mask_pixels_.size(), mask_options,
                      ImageView{mask_.data(), mask_shape, mask_shape.row_bytes()});
    } catch (const Error& error) {
      throw Error(error.kind(), "mask " + mask_path + ": " + error.what());
    }
    mask = mask_.data();
  }
  // A padded slot only holds the size the engine planned (from the source size it knew, which
  // an annotation may state wrongly): any other size gets its own buffer, which the engine
  // then copies into the batch.
  if (padded && (plan.width != padded->planned_width || plan.height != padded->planned_height))
    padded = nullptr;
  const bool allocate = !pipeline_.fixed_size.has_value() && !padded;
  if (pipeline_.fixed_size &&
      (plan.width != pipeline_.fixed_size->second || plan.height != pipeline_.fixed_size->first))
    throw Error(ErrorKind::kRuntime,
                "internal: planned size differs from the pipeline's fixed size");
  apply(plan, decoded, mask != nullptr, image_slot, mask_slot, output, allocate, padded);
}

void SampleProcessor::transform(const uint8_t* rgb, size_t stride, int width, int height,
                                int64_t index, uint64_t epoch, const uint8_t* mask,
                                void* image_slot, uint8_t* mask_slot, SampleOutput& output,
                                bool allocate, bool has_boxes) {
  SampleRandom random(seed_, epoch, static_cast<uint64_t>(index));
  const GeometryPlan plan = plan_geometry(pipeline_.geometric, width, height, random,
                                          has_boxes ? &output.boxes : nullptr);
  photometric_.draw(random, plan.width, plan.height);
  if (mask) mask_.assign(mask, mask + static_cast<size_t>(width) * height);
  apply(plan, DecodedImage{rgb, stride, width, height, width, height}, mask != nullptr, image_slot,
        mask_slot, output, allocate);
}

std::shared_ptr<uint8_t> SampleProcessor::new_buffer(size_t bytes) {
  if (sample_buffers_) return sample_buffers_->acquire(bytes);
  return std::shared_ptr<uint8_t>(new uint8_t[bytes], std::default_delete<uint8_t[]>());
}

void SampleProcessor::apply(const GeometryPlan& plan, const DecodedImage& decoded, bool has_mask,
                            void* image_slot, uint8_t* mask_slot, SampleOutput& output,
                            bool allocate, const PaddedSlot* padded) {
  if (plan.width <= 0 || plan.height <= 0)
    throw Error(ErrorKind::kInvalidArgument, "the pipeline produced an empty image");
  const size_t value_size = dtype_size(pipeline_.dtype);
  void* image_out = image_slot;
  OutputFormat format = format_;
  // A padded slot: the rows are written straight into it (its row and plane strides). Erasing
  // writes a contiguous image: there the image is written at the slot's end and moved into its
  // rows in place.
  ImageLayout written{3, plan.height, plan.width, static_cast<size_t>(plan.width),
                      static_cast<size_t>(plan.height)};
  if (allocate) {
    const size_t bytes = static_cast<size_t>(plan.width) * plan.height * 3 * value_size;
    output.image = new_buffer(bytes);
    image_out = output.image.get();
  } else if (padded && pipeline_.erasing.empty()) {
    written.row_values = format.row_values = static_cast<size_t>(padded->width);
    written.plane_rows = static_cast<size_t>(padded->height);
    format.plane_values = written.row_values * written.plane_rows;
  } else if (padded) {
    image_out = padded_tail(static_cast<uint8_t*>(image_slot), 3, padded->height, padded->width,
                            plan.height, plan.width, value_size);
  }
  output.in_slot = !allocate;
  DecodedImage input = decoded;
  photometric_.run_before(input);
  if (photometric_.runs_after_geometry())
    photometric_.run_after(transformer_, plan, input, format, image_out);
  else
    transformer_.run(plan, input, format, image_out);
  photometric_.erase_output(image_out, pipeline_.dtype, plan.width, plan.height);
  if (padded)  // rows written at the slot's end go into place; the padding if it is ours
    copy_into_padded_slot(static_cast<const uint8_t*>(image_out), written, value_size,
                          static_cast<uint8_t*>(image_slot), padded->height, padded->width,
                          padded->fill_padding ? std::optional<uint8_t>(0) : std::nullopt);
  output.width = plan.width;
  output.height = plan.height;
  const int width = decoded.logical_width, height = decoded.logical_height;
  if (!output.boxes.empty())
    apply_geometry_to_boxes(plan, width, height, output.boxes, output.box_ids);
  photometric_.run_box_ops(output.boxes, output.box_ids, plan.width, plan.height);
  if (has_mask) {
    apply_geometry_to_mask(plan, width, height, mask_, mask_scratch_);
    const size_t bytes = static_cast<size_t>(plan.width) * plan.height;
    if (allocate) {
      output.mask = new_buffer(bytes);
      std::memcpy(output.mask.get(), mask_.data(), bytes);
    } else if (padded) {
      copy_into_padded_slot(
          mask_.data(),
          ImageLayout{1, plan.height, plan.width, static_cast<size_t>(plan.width),
                      static_cast<size_t>(plan.height)},
          1, mask_slot, padded->height, padded->width,
          padded->fill_padding ? std::optional<uint8_t>(padded->mask_fill) : std::nullopt);
    } else {
      std::memcpy(mask_slot, mask_.data(), bytes);
    }
  }
}

}  // namespace conveyor
