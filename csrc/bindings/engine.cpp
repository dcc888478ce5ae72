// Python binding of the engine (conveyor._core.Engine, run_pipeline): converts op dicts to
// OpSpec, numpy arrays to vectors and batches to numpy arrays that own their C++ storage.
// The GIL is released around every wait (next_batch, start_epoch, close).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "conveyor/core/error.h"
#include "conveyor/runtime/engine.h"
#include "conveyor/runtime/sample_processor.h"

namespace py = pybind11;

namespace conveyor::bindings {
namespace {

[[noreturn]] void bad_op(size_t index, const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, "pipeline op " + std::to_string(index) + ": " + message);
}

std::pair<int, int> parse_size(const py::handle& value, size_t index, bool* single = nullptr) {
  if (py::isinstance<py::int_>(value)) {
    const int size = value.cast<int>();
    if (single) *single = true;
    return {size, size};
  }
  const auto items = value.cast<std::vector<int>>();
  if (items.size() == 1) {
    if (single) *single = true;
    return {items[0], items[0]};
  }
  if (items.size() != 2) bad_op(index, "size must be an int or [height, width]");
  if (single) *single = false;
  return {items[0], items[1]};
}

std::array<int, 4> parse_padding(const py::handle& value, size_t index) {
  if (py::isinstance<py::int_>(value)) {
    const int pad = value.cast<int>();
    return {pad, pad, pad, pad};
  }
  const auto items = value.cast<std::vector<int>>();
  if (items.size() == 1) return {items[0], items[0], items[0], items[0]};
  if (items.size() == 2) return {items[0], items[1], items[0], items[1]};
  if (items.size() == 4) return {items[0], items[1], items[2], items[3]};
  bad_op(index, "padding must be an int or a sequence of 1, 2 or 4 ints");
}

std::array<uint8_t, 3> parse_fill(const py::handle& value, size_t index) {
  auto to_byte = [index](double v) {
    if (v < 0 || v > 255) bad_op(index, "fill must be in [0, 255] for uint8 images");
    return static_cast<uint8_t>(v);
  };
  if (value.is_none()) return {0, 0, 0};
  if (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value)) {
    const uint8_t v = to_byte(value.cast<double>());
    return {v, v, v};
  }
  const auto items = value.cast<std::vector<double>>();
  if (items.size() == 1) return {to_byte(items[0]), to_byte(items[0]), to_byte(items[0])};
  if (items.size() != 3) bad_op(index, "fill must be a number or 3 numbers");
  return {to_byte(items[0]), to_byte(items[1]), to_byte(items[2])};
}

std::array<float, 3> parse_channels(const py::handle& value, size_t index, const char* name) {
  const auto items = value.cast<std::vector<float>>();
  if (items.size() == 1) return {items[0], items[0], items[0]};
  if (items.size() != 3) bad_op(index, std::string(name) + " must have 1 or 3 values");
  return {items[0], items[1], items[2]};
}

DType parse_dtype(const std::string& name, size_t index) {
  if (name == "float32" || name == "float") return DType::kFloat32;
  if (name == "float16" || name == "half") return DType::kFloat16;
  if (name == "uint8") return DType::kUint8;
  bad_op(index, "unsupported dtype '" + name + "' (float32, float16 or uint8)");
}

std::vector<OpSpec> parse_pipeline(const py::list& ops) {
  std::vector<OpSpec> specs;
  for (size_t i = 0; i < ops.size(); ++i) {
    const py::dict op = ops[i].cast<py::dict>();
    if (!op.contains("op")) bad_op(i, "missing the 'op' key");
    const std::string name = op["op"].cast<std::string>();
    auto get = [&](const char* key) -> py::object {
      return op.contains(key) ? py::reinterpret_borrow<py::object>(op[key]) : py::none();
    };
    OpSpec spec;
    auto size_from = [&](bool allow_single) {
      if (get("size").is_none()) bad_op(i, name + " needs a size");
      bool single = false;
      std::tie(spec.height, spec.width) = parse_size(op["size"], i, &single);
      spec.shorter_side = allow_single && single;
    };
    if (name == "resize") {
      spec.kind = OpKind::kResize;
      size_from(true);
      if (!get("max_size").is_none()) spec.max_size = get("max_size").cast<int>();
      if (!get("antialias").is_none()) spec.antialias = get("antialias").cast<bool>();
    } else if (name == "random_resized_crop") {
      spec.kind = OpKind::kRandomResizedCrop;
      size_from(false);
      if (!get("scale").is_none()) {
        const auto s = get("scale").cast<std::vector<double>>();
        if (s.size() != 2) bad_op(i, "scale must be (min, max)");
        spec.scale = {s[0], s[1]};
      }
      if (!get("ratio").is_none()) {
        const auto r = get("ratio").cast<std::vector<double>>();
        if (r.size() != 2) bad_op(i, "ratio must be (min, max)");
        spec.ratio = {r[0], r[1]};
      }
      if (!get("antialias").is_none()) spec.antialias = get("antialias").cast<bool>();
    } else if (name == "random_crop") {
      spec.kind = OpKind::kRandomCrop;
      size_from(false);
      if (!get("padding").is_none()) {
        spec.padding = parse_padding(get("padding"), i);
        spec.has_padding = true;
      }
      if (!get("pad_if_needed").is_none()) spec.pad_if_needed = get("pad_if_needed").cast<bool>();
      spec.fill = parse_fill(get("fill"), i);
      if (!get("padding_mode").is_none() && get("padding_mode").cast<std::string>() != "constant")
        bad_op(i, "only padding_mode='constant' is supported natively");
    } else if (name == "center_crop") {
      spec.kind = OpKind::kCenterCrop;
      size_from(false);
    } else if (name == "pad") {
      spec.kind = OpKind::kPad;
      if (get("padding").is_none()) bad_op(i, "pad needs padding");
      spec.padding = parse_padding(get("padding"), i);
      spec.fill = parse_fill(get("fill"), i);
      if (!get("padding_mode").is_none() && get("padding_mode").cast<std::string>() != "constant")
        bad_op(i, "only padding_mode='constant' is supported natively");
    } else if (name == "hflip") {
      spec.kind = OpKind::kHorizontalFlip;
      if (!get("p").is_none()) spec.p = get("p").cast<double>();
    } else if (name == "to_dtype") {
      spec.kind = OpKind::kToDtype;
      if (get("dtype").is_none()) bad_op(i, "to_dtype needs a dtype");
      spec.dtype = parse_dtype(py::str(get("dtype")).cast<std::string>(), i);
      if (!get("scale").is_none()) spec.scale_values = get("scale").cast<bool>();
    } else if (name == "normalize") {
      spec.kind = OpKind::kNormalize;
      if (get("mean").is_none() || get("std").is_none()) bad_op(i, "normalize needs mean and std");
      spec.mean = parse_channels(get("mean"), i, "mean");
      spec.std = parse_channels(get("std"), i, "std");
    } else {
      bad_op(i, "unknown op '" + name +
                    "' (resize, random_resized_crop, random_crop, center_crop, "
                    "pad, hflip, to_dtype, normalize)");
    }
    specs.push_back(spec);
  }
  return specs;
}

py::dtype numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::kUint8:
      return py::dtype("uint8");
    case DType::kFloat32:
      return py::dtype("float32");
    case DType::kFloat16:
      return py::dtype("float16");
  }
  return py::dtype("uint8");
}

// A numpy array over C++ storage; the capsule keeps the storage alive.
py::array shared_array(const std::shared_ptr<uint8_t>& storage, py::dtype dtype,
                       std::vector<py::ssize_t> shape) {
  auto* owner = new std::shared_ptr<uint8_t>(storage);
  py::capsule capsule(owner, [](void* p) { delete static_cast<std::shared_ptr<uint8_t>*>(p); });
  return py::array(dtype, shape, storage.get(), capsule);
}

template <typename T>
py::array_t<T> vector_array(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owner = new std::vector<T>(std::move(values));
  py::capsule capsule(owner, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owner->data(), capsule);
}

// The batch as the tuple conveyor.loader.engine.Batch is built from, in its field order:
// (images, indices, boxes, box_rows, box_offsets, masks, skipped, batch_index, buffer_id).
// Arrays own (share) the C++ storage: nothing is copied.
py::tuple batch_fields(std::unique_ptr<EngineBatch> batch) {
  const py::ssize_t count = static_cast<py::ssize_t>(batch->indices.size());
  const py::dtype dtype = numpy_dtype(batch->dtype);
  py::object images = py::none(), masks = py::none();
  if (batch->images) {
    images = shared_array(batch->images, dtype, {count, 3, batch->height, batch->width});
    if (batch->masks)
      masks = shared_array(batch->masks, py::dtype("uint8"), {count, batch->height, batch->width});
  } else {
    py::list image_list, mask_list;
    for (size_t i = 0; i < batch->sample_images.size(); ++i) {
      const auto [h, w] = batch->sample_sizes[i];
      image_list.append(shared_array(batch->sample_images[i], dtype, {3, h, w}));
      if (batch->has_masks)
        mask_list.append(shared_array(batch->sample_masks[i], py::dtype("uint8"), {h, w}));
    }
    images = image_list;
    if (batch->has_masks) masks = mask_list;
  }
  py::object boxes = py::none(), box_rows = py::none(), box_offsets = py::none();
  if (batch->has_boxes) {
    const py::ssize_t kept = static_cast<py::ssize_t>(batch->boxes.size() / 4);
    boxes = vector_array(std::move(batch->boxes), {kept, 4});
    box_rows = vector_array(std::move(batch->box_rows), {kept});
    box_offsets = vector_array(std::move(batch->box_offsets), {count + 1});
  }
  py::list skipped;
  for (const SkippedSample& s : batch->skipped)
    skipped.append(py::make_tuple(s.index, s.path, s.message));
  return py::make_tuple(images, vector_array(std::move(batch->indices), {count}), boxes, box_rows,
                        box_offsets, masks, skipped, batch->batch_index, batch->buffer_id);
}

template <typename T>
std::vector<T> to_vector(
    const std::optional<py::array_t<T, py::array::c_style | py::array::forcecast>>& array) {
  if (!array) return {};
  return std::vector<T>(array->data(), array->data() + array->size());
}

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using Uint8Array = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

std::unique_ptr<Engine> make_engine(const py::list& pipeline, std::vector<std::string> image_paths,
                                    std::optional<std::vector<std::string>> mask_paths,
                                    std::optional<FloatArray> boxes,
                                    std::optional<Int64Array> offsets, int num_threads,
                                    int prefetch, uint64_t seed, bool in_order, bool skip_errors,
                                    bool dct_scaling) {
  std::vector<OpSpec> ops = parse_pipeline(pipeline);
  EngineSources sources;
  sources.image_paths = std::move(image_paths);
  if (mask_paths) sources.mask_paths = std::move(*mask_paths);
  sources.has_boxes = boxes.has_value();
  if (boxes && !offsets) throw Error(ErrorKind::kInvalidArgument, "boxes need offsets");
  if (!boxes && offsets) throw Error(ErrorKind::kInvalidArgument, "offsets need boxes");
  sources.boxes = to_vector(boxes);
  sources.offsets = to_vector(offsets);
  EngineOptions options;
  options.num_threads = num_threads;
  options.prefetch = prefetch;
  options.seed = seed;
  options.in_order = in_order;
  options.skip_errors = skip_errors;
  options.dct_scaling = dct_scaling;
  py::gil_scoped_release release;  // starting threads
  return std::make_unique<Engine>(ops, std::move(sources), options);
}

py::tuple run_pipeline(const py::list& pipeline, Uint8Array image, std::optional<FloatArray> boxes,
                       std::optional<Int64Array> labels, std::optional<Uint8Array> mask,
                       uint64_t seed, uint64_t epoch, int64_t index) {
  if (image.ndim() != 3 || image.shape(2) != 3)
    throw Error(ErrorKind::kInvalidArgument, "image must be uint8 [H, W, 3]");
  const int height = static_cast<int>(image.shape(0)), width = static_cast<int>(image.shape(1));
  if (mask && (mask->ndim() != 2 || mask->shape(0) != height || mask->shape(1) != width))
    throw Error(ErrorKind::kInvalidArgument, "mask must be uint8 [H, W] of the image's size");
  const Pipeline compiled = compile_pipeline(parse_pipeline(pipeline));
  EngineSources sources;
  SampleOutput output;
  output.boxes = to_vector(boxes);
  if (output.boxes.size() % 4)
    throw Error(ErrorKind::kInvalidArgument, "boxes must have shape [M, 4]");
  output.box_ids = to_vector(labels);  // the labels follow their boxes
  if (labels && output.box_ids.size() * 4 != output.boxes.size())
    throw Error(ErrorKind::kInvalidArgument, "labels must have one entry per box");
  std::vector<uint8_t> pixels(static_cast<size_t>(image.size()) + 64);
  std::memcpy(pixels.data(), image.data(), static_cast<size_t>(image.size()));
  {
    py::gil_scoped_release release;
    SampleProcessor processor(compiled, sources, seed);
    processor.transform(pixels.data(), static_cast<size_t>(width) * 3, width, height, index, epoch,
                        mask ? mask->data() : nullptr, nullptr, nullptr, output, true);
  }
  const py::dtype dtype = numpy_dtype(compiled.dtype);
  py::object out_image = shared_array(output.image, dtype, {3, output.height, output.width});
  py::object out_boxes = py::none(), out_labels = py::none(), out_mask = py::none();
  if (boxes) {
    const py::ssize_t count = static_cast<py::ssize_t>(output.boxes.size() / 4);
    out_boxes = vector_array(std::move(output.boxes), {count, 4});
    if (labels) out_labels = vector_array(std::move(output.box_ids), {count});
  }
  if (mask) out_mask = shared_array(output.mask, py::dtype("uint8"), {output.height, output.width});
  return py::make_tuple(out_image, out_boxes, out_labels, out_mask);
}

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<Engine>(m, "Engine", "Native batches from image files (see conveyor._engine.Engine).")
      .def(py::init(&make_engine), py::arg("pipeline"), py::arg("image_paths"),
           py::arg("mask_paths"), py::arg("boxes"), py::arg("offsets"), py::arg("num_threads"),
           py::arg("prefetch"), py::arg("seed"), py::arg("in_order"), py::arg("skip_errors"),
           py::arg("dct_scaling") = true)
      .def("dataset_size", &Engine::dataset_size)
      .def("output_shape",
           [](const Engine& e) -> py::object {
             const auto& size = e.pipeline().fixed_size;
             if (!size) return py::none();
             return py::make_tuple(3, size->first, size->second);
           })
      .def("output_dtype",
           [](const Engine& e) { return std::string(dtype_name(e.pipeline().dtype)); })
      .def(
          "start_epoch",
          [](Engine& e, uint64_t epoch, const Int64Array& indices, const Int64Array& offsets,
             int64_t start_batch) {
            IndexBatches batches;
            batches.indices = to_vector(std::optional<Int64Array>(indices));
            batches.offsets = to_vector(std::optional<Int64Array>(offsets));
            py::gil_scoped_release release;
            return e.start_epoch(epoch, std::move(batches), start_batch);
          },
          py::arg("epoch"), py::arg("indices"), py::arg("offsets"), py::arg("start_batch") = 0)
      .def("feed_buffer",
           [](Engine& e, py::array array) {
             if (!array.writeable())
               throw Error(ErrorKind::kInvalidArgument, "feed_buffer needs a writable array");
             if (!(array.flags() & py::array::c_style))
               throw Error(ErrorKind::kInvalidArgument, "feed_buffer needs a C-contiguous array");
             return e.feed_buffer(array.mutable_data(), static_cast<size_t>(array.nbytes()));
           })
      .def("cancel", &Engine::cancel, py::arg("ticket") = 0,
           py::call_guard<py::gil_scoped_release>())
      .def("current_ticket", &Engine::current_ticket)
      .def("live_buffer_ids", &Engine::live_buffer_ids)
      .def(
          "next_batch",
          [](Engine& e, uint64_t ticket) -> py::object {
            std::unique_ptr<EngineBatch> batch;
            {
              py::gil_scoped_release release;
              batch = e.next_batch(ticket);
            }
            if (!batch) return py::none();
            return batch_fields(std::move(batch));
          },
          py::arg("ticket") = 0)
      .def("stats",
           [](const Engine& e) {
             const EngineStats s = e.stats();
             py::dict out;
             out["samples_done"] = s.samples_done;
             out["samples_skipped"] = s.samples_skipped;
             out["batches_delivered"] = s.batches_delivered;
             out["batches_ready"] = s.batches_ready;
             out["wait_seconds"] = s.wait_seconds;
             return out;
           })
      .def("close", &Engine::close, py::call_guard<py::gil_scoped_release>());
  m.def("run_pipeline", &run_pipeline, py::arg("pipeline"), py::arg("image"), py::arg("boxes"),
        py::arg("labels"), py::arg("mask"), py::arg("seed"), py::arg("epoch"), py::arg("index"));
}

}  // namespace conveyor::bindings
