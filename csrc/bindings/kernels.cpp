// conveyor._core.kernels: the photometric and box kernels and their parameter draws, called
// one at a time on numpy arrays. Tests compare them with torchvision's kernels given the same
// parameters and with torchvision's make_params distributions; the loader does not use them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "bindings.h"
#include "conveyor/core/error.h"
#include "conveyor/ops/box_ops.h"
#include "conveyor/ops/photometric.h"
#include "conveyor/ops/photometric_plan.h"
#include "conveyor/sampling/sample_random.h"

namespace py = pybind11;

namespace conveyor::bindings {
namespace {

using Image = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using Boxes = py::array_t<float, py::array::c_style | py::array::forcecast>;

PlanarImage to_planar(const Image& image) {
  if (image.ndim() != 3 || image.shape(0) != 3)
    throw Error(ErrorKind::kInvalidArgument, "expected a uint8 array of shape [3, H, W]");
  PlanarImage planar;
  planar.reset(static_cast<int>(image.shape(2)), static_cast<int>(image.shape(1)), 3);
  std::memcpy(planar.storage.data(), image.data(), static_cast<size_t>(image.size()));
  return planar;
}

Image to_array(const PlanarImage& planar) {
  Image out({py::ssize_t{3}, py::ssize_t{planar.height}, py::ssize_t{planar.width}});
  std::memcpy(out.mutable_data(), planar.storage.data(), planar.plane_stride * 3);
  return out;
}

// Runs `kernel` on a copy of `image`, without the GIL.
template <typename Kernel>
Image apply(const Image& image, Kernel kernel) {
  PlanarImage planar = to_planar(image);
  {
    py::gil_scoped_release release;
    kernel(planar);
  }
  return to_array(planar);
}

std::optional<std::array<float, 2>> range(const py::dict& spec, const char* key) {
  if (!spec.contains(key) || spec[key].is_none()) return std::nullopt;
  const auto v = spec[key].cast<std::vector<float>>();
  if (v.size() != 2)
    throw Error(ErrorKind::kInvalidArgument, std::string(key) + " must be (min, max)");
  return std::array<float, 2>{v[0], v[1]};
}

PhotometricSpec photometric_spec(const std::string& kind, const py::dict& spec) {
  PhotometricSpec s;
  if (kind == "color_jitter")
    s.kind = PhotometricSpec::kColorJitter;
  else if (kind == "photometric_distort")
    s.kind = PhotometricSpec::kPhotometricDistort;
  else if (kind == "grayscale")
    s.kind = PhotometricSpec::kGrayscale;
  else if (kind == "random_grayscale")
    s.kind = PhotometricSpec::kRandomGrayscale;
  else if (kind == "gaussian_blur")
    s.kind = PhotometricSpec::kGaussianBlur;
  else if (kind == "random_autocontrast")
    s.kind = PhotometricSpec::kRandomAutocontrast;
  else if (kind == "random_equalize")
    s.kind = PhotometricSpec::kRandomEqualize;
  else if (kind == "random_channel_permutation")
    s.kind = PhotometricSpec::kRandomChannelPermutation;
  else
    throw Error(ErrorKind::kInvalidArgument, "unknown photometric op '" + kind + "'");
  s.brightness = range(spec, "brightness");
  s.contrast = range(spec, "contrast");
  s.saturation = range(spec, "saturation");
  s.hue = range(spec, "hue");
  if (spec.contains("p")) s.p = spec["p"].cast<double>();
  if (spec.contains("kernel_size")) {
    const auto k = spec["kernel_size"].cast<std::vector<int>>();
    s.kernel_size = {k.at(0), k.at(1)};
  }
  if (spec.contains("sigma")) {
    const auto v = spec["sigma"].cast<std::vector<float>>();
    s.sigma = {v.at(0), v.at(1)};
  }
  s.validate();
  return s;
}

const char* step_name(PhotometricStep::Kind kind) {
  switch (kind) {
    case PhotometricStep::kBrightness:
      return "brightness";
    case PhotometricStep::kContrast:
      return "contrast";
    case PhotometricStep::kSaturation:
      return "saturation";
    case PhotometricStep::kHue:
      return "hue";
    case PhotometricStep::kGrayscale:
      return "grayscale";
    case PhotometricStep::kBlur:
      return "blur";
    case PhotometricStep::kAutocontrast:
      return "autocontrast";
    case PhotometricStep::kEqualize:
      return "equalize";
    case PhotometricStep::kPermute:
      return "permute";
  }
  return "?";
}

py::dict step_dict(const PhotometricStep& step) {
  py::dict d;
  d["kind"] = step_name(step.kind);
  d["factor"] = step.factor;
  d["permutation"] = std::vector<int>(step.permutation.begin(), step.permutation.end());
  d["kernel_size"] = std::vector<int>(step.kernel_size.begin(), step.kernel_size.end());
  d["sigma"] = std::vector<float>(step.sigma.begin(), step.sigma.end());
  return d;
}

Boxes boxes_copy(const Boxes& boxes) {
  if (boxes.ndim() != 2 || boxes.shape(1) != 4)
    throw Error(ErrorKind::kInvalidArgument, "boxes must have shape [N, 4]");
  Boxes out({boxes.shape(0), py::ssize_t{4}});
  std::memcpy(out.mutable_data(), boxes.data(), sizeof(float) * static_cast<size_t>(boxes.size()));
  return out;
}

}  // namespace

void bind_kernels(py::module_& parent) {
  py::module_ m = parent.def_submodule(
      "kernels", "photometric and box kernels one at a time, for tests against torchvision");
  m.def("adjust_brightness", [](const Image& im, double f) {
    return apply(im, [f](PlanarImage& p) { adjust_brightness(p, f); });
  });
  m.def("adjust_contrast", [](const Image& im, double f) {
    return apply(im, [f](PlanarImage& p) { adjust_contrast(p, f); });
  });
  m.def("adjust_saturation", [](const Image& im, double f) {
    return apply(im, [f](PlanarImage& p) { adjust_saturation(p, f); });
  });
  m.def("adjust_hue", [](const Image& im, double f) {
    return apply(im, [f](PlanarImage& p) { adjust_hue(p, f); });
  });
  m.def("rgb_to_grayscale",
        [](const Image& im) { return apply(im, [](PlanarImage& p) { rgb_to_grayscale(p); }); });
  m.def("autocontrast",
        [](const Image& im) { return apply(im, [](PlanarImage& p) { autocontrast(p); }); });
  m.def("equalize", [](const Image& im) { return apply(im, [](PlanarImage& p) { equalize(p); }); });
  m.def("permute_channels", [](const Image& im, std::array<int, 3> perm) {
    return apply(im, [perm](PlanarImage& p) { permute_channels(p, perm); });
  });
  m.def("gaussian_blur",
        [](const Image& im, std::array<int, 2> kernel_size, std::array<float, 2> sigma) {
          return apply(im, [&](PlanarImage& p) {
            BlurScratch scratch;
            gaussian_blur(p, kernel_size, sigma, scratch);
          });
        });
  m.def("gaussian_kernel1d", &gaussian_kernel1d);
  m.def("erase", [](py::array image, int top, int left, int height, int width,
                    std::vector<float> values, bool per_pixel) {
    if (image.ndim() != 3 || image.shape(0) != 3 || !(image.flags() & py::array::c_style))
      throw Error(ErrorKind::kInvalidArgument, "expected a C-contiguous array of shape [3, H, W]");
    DType dtype;
    if (image.dtype().is(py::dtype("float32")))
      dtype = DType::kFloat32;
    else if (image.dtype().is(py::dtype("float16")))
      dtype = DType::kFloat16;
    else if (image.dtype().is(py::dtype("uint8")))
      dtype = DType::kUint8;
    else
      throw Error(ErrorKind::kInvalidArgument, "erase: dtype must be float32, float16 or uint8");
    const size_t needed = per_pixel ? 3 * static_cast<size_t>(height) * width : 3;
    if (values.size() != needed)
      throw Error(ErrorKind::kInvalidArgument, "erase: expected " + std::to_string(needed) +
                                                   " values, got " + std::to_string(values.size()));
    py::array out =
        py::array(image.dtype(), std::vector<py::ssize_t>{3, image.shape(1), image.shape(2)});
    std::memcpy(out.mutable_data(), image.data(), static_cast<size_t>(image.nbytes()));
    erase(out.mutable_data(), dtype, static_cast<int>(image.shape(1)),
          static_cast<int>(image.shape(2)), top, left, height, width, values.data(), per_pixel);
    return out;
  });
  m.def(
      "plan_photometric",
      [](const std::string& kind, const py::dict& spec, uint64_t seed, uint64_t epoch,
         uint64_t index) {
        const PhotometricSpec s = photometric_spec(kind, spec);
        SampleRandom random(seed, epoch, index);
        std::vector<PhotometricStep> steps;
        plan_photometric(s, random, steps);
        py::list out;
        for (const auto& step : steps) out.append(step_dict(step));
        return out;
      },
      "The kernel calls one sample's draw makes: a list of dicts (kind, factor, permutation, "
      "kernel_size, sigma).");
  m.def("apply_photometric", [](const Image& im, const std::string& kind, const py::dict& spec,
                                uint64_t seed, uint64_t epoch, uint64_t index) {
    const PhotometricSpec s = photometric_spec(kind, spec);
    SampleRandom random(seed, epoch, index);
    std::vector<PhotometricStep> steps;
    plan_photometric(s, random, steps);
    return apply(im, [&](PlanarImage& p) {
      BlurScratch scratch;
      run_photometric(steps, p, scratch);
    });
  });
  m.def("plan_erasing", [](const py::dict& spec, int height, int width, uint64_t seed,
                           uint64_t epoch, uint64_t index) {
    ErasingSpec s;
    if (spec.contains("p")) s.p = spec["p"].cast<double>();
    if (spec.contains("scale")) s.scale = spec["scale"].cast<std::array<double, 2>>();
    if (spec.contains("ratio")) s.ratio = spec["ratio"].cast<std::array<double, 2>>();
    if (spec.contains("value")) {
      const py::object v = spec["value"];
      if (py::isinstance<py::str>(v)) {
        if (v.cast<std::string>() != "random")
          throw Error(ErrorKind::kInvalidArgument, "RandomErasing value string must be 'random'");
        s.random_values = true;
      } else if (py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v)) {
        s.values = {v.cast<float>()};
      } else {
        s.values = v.cast<std::vector<float>>();
      }
    }
    s.validate();
    SampleRandom random(seed, epoch, index);
    const ErasingParams params = plan_erasing(s, height, width, random);
    py::dict d;
    d["apply"] = params.apply;
    d["top"] = params.top;
    d["left"] = params.left;
    d["height"] = params.height;
    d["width"] = params.width;
    d["per_pixel"] = params.per_pixel;
    d["values"] = params.values;
    return d;
  });
  m.def("convert_box_format",
        [](const Boxes& boxes, const std::string& from, const std::string& to) {
          Boxes out = boxes_copy(boxes);
          convert_box_format(out.mutable_data(), static_cast<size_t>(out.shape(0)),
                             parse_box_format(from), parse_box_format(to));
          return out;
        });
  m.def("clamp_boxes", [](const Boxes& boxes, const std::string& format, int height, int width) {
    Boxes out = boxes_copy(boxes);
    clamp_boxes(out.mutable_data(), static_cast<size_t>(out.shape(0)), parse_box_format(format),
                height, width);
    return out;
  });
  m.def("sanitize_mask", [](const Boxes& boxes, const std::string& format, int height, int width,
                            float min_size, float min_area) {
    const Boxes in = boxes_copy(boxes);
    const std::vector<uint8_t> keep =
        sanitize_mask(in.data(), static_cast<size_t>(in.shape(0)), parse_box_format(format), height,
                      width, min_size, min_area);
    py::array_t<bool> out(static_cast<py::ssize_t>(keep.size()));
    for (size_t i = 0; i < keep.size(); ++i) out.mutable_data()[i] = keep[i] != 0;
    return out;
  });
}

}  // namespace conveyor::bindings
