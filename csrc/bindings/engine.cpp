// Python binding of the engine (conveyor._core.Engine, run_pipeline) and of the op schema
// (conveyor._core.Op, op_schema): builds OpSpecs through the schema (ops/op_schema.h), numpy arrays
// to vectors and batches to numpy arrays that own their C++ storage. The GIL is released around
// every wait (next_batch, start_epoch, close).
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
#include "conveyor/ops/geometry_plan.h"
#include "conveyor/ops/op_schema.h"
#include "conveyor/runtime/engine.h"
#include "conveyor/runtime/sample_processor.h"
#include "conveyor/sampling/sample_random.h"

namespace py = pybind11;

namespace conveyor::bindings {
namespace {

// A Python value as the schema's untyped ArgValue (the schema gives it a type).
ArgValue arg_value(const py::handle& value) {
  if (value.is_none()) return ArgValue::none();
  if (py::isinstance<py::bool_>(value)) return ArgValue::boolean(value.cast<bool>());
  if (py::isinstance<py::int_>(value)) return ArgValue::integer(value.cast<long long>());
  if (py::isinstance<py::float_>(value)) return ArgValue::real(value.cast<double>());
  if (py::isinstance<py::str>(value)) return ArgValue::string(value.cast<std::string>());
  if (py::hasattr(value, "__index__") && !py::isinstance<py::sequence>(value))
    return ArgValue::integer(value.attr("__index__")().cast<long long>());  // numpy ints
  if (py::hasattr(value, "__float__") && !py::isinstance<py::sequence>(value) &&
      !py::hasattr(value, "__len__"))
    return ArgValue::real(value.attr("__float__")().cast<double>());  // numpy floats
  if (py::isinstance<py::sequence>(value) || py::hasattr(value, "__iter__")) {
    std::vector<double> numbers;
    bool integral = true;
    for (const py::handle item : value) {
      const ArgValue inner = arg_value(item);
      if (inner.form != ArgValue::kNumber)
        throw Error(ErrorKind::kInvalidArgument, "a sequence argument must hold numbers, got " +
                                                     py::repr(value).cast<std::string>());
      numbers.push_back(inner.numbers[0]);
      integral = integral && inner.integral;
    }
    return ArgValue::sequence(std::move(numbers), integral);
  }
  // torch.dtype and similar: their str() names them ("torch.float32" -> "float32")
  std::string text = py::str(value).cast<std::string>();
  if (text.rfind("torch.", 0) == 0) text = text.substr(6);
  return ArgValue::string(text);
}

// One op: its name and arguments exactly as given (kept for repr, equality and to_dict) and
// the typed OpSpec the schema built from them.
struct BoundOp {
  std::string name;
  py::dict args;
  OpSpec spec;
};

BoundOp bind_op(const std::string& name, const py::dict& args) {
  std::vector<std::pair<std::string, ArgValue>> values;
  for (const auto& [key, value] : args) {
    const std::string key_name = py::str(key).cast<std::string>();
    try {
      values.emplace_back(key_name, arg_value(value));
    } catch (const Error& error) {
      throw Error(ErrorKind::kInvalidArgument, name + ": " + key_name + ": " + error.what());
    }
  }
  return BoundOp{name, py::dict(args), make_op(name, values)};
}

// A pipeline given as Op objects or as dicts {"op": name, **args}.
std::vector<OpSpec> parse_pipeline(const py::list& ops) {
  std::vector<OpSpec> specs;
  for (size_t i = 0; i < ops.size(); ++i) {
    try {
      if (py::isinstance<BoundOp>(ops[i])) {
        specs.push_back(ops[i].cast<const BoundOp&>().spec);
        continue;
      }
      if (!py::isinstance<py::dict>(ops[i]))
        throw Error(ErrorKind::kInvalidArgument, "must be a conveyor._core.Op or a dict");
      py::dict args = ops[i].cast<py::dict>().attr("copy")();
      if (!args.contains("op")) throw Error(ErrorKind::kInvalidArgument, "missing the 'op' key");
      const std::string name = py::str(args["op"]).cast<std::string>();
      PyDict_DelItemString(args.ptr(), "op");
      specs.push_back(bind_op(name, args).spec);
    } catch (const Error& error) {
      throw Error(ErrorKind::kInvalidArgument,
                  "pipeline op " + std::to_string(i) + ": " + error.what());
    }
  }
  return specs;
}

std::vector<std::string> split_choices(const std::string& choices) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t end; (end = choices.find('|', begin)) != std::string::npos; begin = end + 1)
    out.push_back(choices.substr(begin, end - begin));
  out.push_back(choices.substr(begin));
  return out;
}

py::str arg_repr(const py::dict& args) {
  std::string text;
  for (const auto& [key, value] : args)
    text += ", " + py::str(key).cast<std::string>() + "=" + py::repr(value).cast<std::string>();
  return py::str(text);
}

py::list schema_table() {
  py::list table;
  for (const OpSchema& schema : op_schemas()) {
    py::list args;
    for (const ArgSchema& arg : schema.args) {
      py::dict entry;
      entry["name"] = arg.name;
      entry["type"] = arg_type_name(arg.type);
      entry["required"] = arg.required;
      entry["default"] = arg.default_value;
      entry["doc"] = arg.doc;
      entry["choices"] = arg.choices[0] ? py::cast(split_choices(arg.choices)) : py::none();
      args.append(entry);
    }
    py::dict op;
    op["name"] = schema.name;
    op["category"] = op_category_name(schema.category);
    op["doc"] = schema.doc;
    op["args"] = args;
    table.append(op);
  }
  return table;
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
// (images, indices, boxes, box_rows, box_offsets, masks, skipped, batch_index, buffer_id,
// image_sizes).
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
  py::object image_sizes = py::none();
  if (batch->padded) {
    std::vector<int64_t> sizes;
    for (const auto& [h, w] : batch->sample_sizes) sizes.insert(sizes.end(), {h, w});
    image_sizes = vector_array(std::move(sizes), {count, 2});
  }
  py::list skipped;
  for (const SkippedSample& s : batch->skipped)
    skipped.append(py::make_tuple(s.index, s.path, s.message));
  return py::make_tuple(images, vector_array(std::move(batch->indices), {count}), boxes, box_rows,
                        box_offsets, masks, skipped, batch->batch_index, batch->buffer_id,
                        image_sizes);
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
using IntArray = py::array_t<int, py::array::c_style | py::array::forcecast>;

std::unique_ptr<Engine> make_engine(const py::list& pipeline, std::vector<std::string> image_paths,
                                    std::optional<std::vector<std::string>> mask_paths,
                                    std::optional<FloatArray> boxes,
                                    std::optional<Int64Array> offsets, int num_threads,
                                    int prefetch, uint64_t seed, bool in_order, bool skip_errors,
                                    bool dct_scaling, std::optional<IntArray> source_sizes,
                                    int mask_pad_fill) {
  std::vector<OpSpec> ops = parse_pipeline(pipeline);
  EngineSources sources;
  sources.image_paths = std::move(image_paths);
  if (mask_paths) sources.mask_paths = std::move(*mask_paths);
  sources.has_boxes = boxes.has_value();
  if (boxes && !offsets) throw Error(ErrorKind::kInvalidArgument, "boxes need offsets");
  if (!boxes && offsets) throw Error(ErrorKind::kInvalidArgument, "offsets need boxes");
  sources.boxes = to_vector(boxes);
  sources.offsets = to_vector(offsets);
  sources.source_sizes = to_vector(source_sizes);
  if (mask_pad_fill < 0 || mask_pad_fill > 255)
    throw Error(ErrorKind::kInvalidArgument,
                "mask_pad_fill must be in [0, 255], got " + std::to_string(mask_pad_fill));
  EngineOptions options;
  options.mask_pad_fill = static_cast<uint8_t>(mask_pad_fill);
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
                        mask ? mask->data() : nullptr, nullptr, nullptr, output, true,
                        boxes.has_value());
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

// The steps a sample's draw gives (for tests: torchvision's kernels replay them).
py::list plan_steps(const py::list& pipeline, int width, int height,
                    std::optional<FloatArray> boxes, uint64_t seed, uint64_t epoch, int64_t index) {
  const Pipeline compiled = compile_pipeline(parse_pipeline(pipeline));
  const std::vector<float> box_values = to_vector(boxes);
  SampleRandom random(seed, epoch, static_cast<uint64_t>(index));
  const GeometryPlan plan =
      plan_geometry(compiled.geometric, width, height, random, boxes ? &box_values : nullptr);
  static const char* const kNames[] = {"crop", "pad", "resize", "hflip", "vflip"};
  py::list steps;
  for (const GeometryStep& step : plan.steps) {
    py::dict entry;
    entry["kind"] = kNames[step.kind];
    entry["x"] = step.x;
    entry["y"] = step.y;
    entry["width"] = step.width;
    entry["height"] = step.height;
    entry["padding"] =
        py::make_tuple(step.padding[0], step.padding[1], step.padding[2], step.padding[3]);
    entry["zero_boxes_outside"] = step.zero_boxes_outside;
    steps.append(entry);
  }
  return steps;
}

}  // namespace

void bind_engine(py::module_& m) {
  py::class_<BoundOp>(m, "Op",
                      "One native op, checked against the op schema (conveyor._core.op_schema()).")
      .def(py::init(
               [](const std::string& name, const py::kwargs& args) { return bind_op(name, args); }),
           py::arg("name"))
      .def_property_readonly("name", [](const BoundOp& op) { return op.name; })
      .def_property_readonly(
          "category",
          [](const BoundOp& op) { return op_category_name(op_schema(op.spec.kind).category); })
      .def_property_readonly("args", [](const BoundOp& op) { return py::dict(op.args); })
      .def("to_dict",
           [](const BoundOp& op) {
             py::dict out;
             out["op"] = op.name;
             for (const auto& [key, value] : op.args) out[key] = value;
             return out;
           })
      .def("__eq__",
           [](const BoundOp& op, const py::object& other) {
             if (!py::isinstance<BoundOp>(other)) return false;
             const BoundOp& o = other.cast<const BoundOp&>();
             return op.name == o.name && op.args.equal(o.args);
           })
      .def("__hash__", [](const BoundOp&) -> py::object { return py::none(); })
      .def("__repr__", [](const BoundOp& op) {
        return "Op('" + op.name + "'" + arg_repr(op.args).cast<std::string>() + ")";
      });
  m.def("op_schema", &schema_table,
        "Every native op: name, category, doc and its arguments (name, type, required, default, "
        "doc, choices).");
  py::class_<Engine>(m, "Engine", "Native batches from image files (see conveyor._engine.Engine).")
      .def(py::init(&make_engine), py::arg("pipeline"), py::arg("image_paths"),
           py::arg("mask_paths"), py::arg("boxes"), py::arg("offsets"), py::arg("num_threads"),
           py::arg("prefetch"), py::arg("seed"), py::arg("in_order"), py::arg("skip_errors"),
           py::arg("dct_scaling") = true, py::arg("source_sizes") = py::none(),
           py::arg("mask_pad_fill") = 255)
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
             int64_t start_batch, int pad_to_multiple) {
            IndexBatches batches;
            batches.indices = to_vector(std::optional<Int64Array>(indices));
            batches.offsets = to_vector(std::optional<Int64Array>(offsets));
            py::gil_scoped_release release;
            return e.start_epoch(epoch, std::move(batches), start_batch, pad_to_multiple);
          },
          py::arg("epoch"), py::arg("indices"), py::arg("offsets"), py::arg("start_batch") = 0,
          py::arg("pad_to_multiple") = 0)
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
             out["samples_repadded"] = s.samples_repadded;
             return out;
           })
      .def("close", &Engine::close, py::call_guard<py::gil_scoped_release>());
  m.def("plan_steps", &plan_steps, py::arg("pipeline"), py::arg("width"), py::arg("height"),
        py::arg("boxes") = py::none(), py::arg("seed") = 0, py::arg("epoch") = 0,
        py::arg("index") = 0,
        "The geometry steps (crop/pad/resize/hflip/vflip) sample `index` gets: the parameters "
        "the engine draws, for replaying with torchvision's kernels.");
  m.def("run_pipeline", &run_pipeline, py::arg("pipeline"), py::arg("image"), py::arg("boxes"),
        py::arg("labels"), py::arg("mask"), py::arg("seed"), py::arg("epoch"), py::arg("index"));
}

}  // namespace conveyor::bindings
