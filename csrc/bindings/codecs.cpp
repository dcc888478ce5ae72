// conveyor._core codecs: decode JPEG/PNG bytes into a new (not zero-filled) numpy array, HWC,
// whose memory comes from BlockCache. The GIL is released around header parsing and decoding; each
// Python thread has its own decoder (TurboJPEG handle and scratch memory).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <tuple>

#include "bindings.h"
#include "conveyor/codecs/decode_image.h"
#include "conveyor/core/block_cache.h"
#include "conveyor/core/error.h"

namespace py = pybind11;

namespace conveyor::bindings {
namespace {

using codecs::ImageFormat;

// A contiguous byte view of any buffer-protocol object (bytes, bytearray, memoryview, numpy).
py::buffer_info byte_view(const py::buffer& data) {
  py::buffer_info info = data.request();
  std::size_t expected = std::size_t(info.itemsize);
  for (py::ssize_t i = info.ndim - 1; i >= 0; --i) {
    if (info.shape[i] > 1 && std::size_t(info.strides[i]) != expected)
      throw Error(ErrorKind::kInvalidArgument, "image data must be a contiguous buffer");
    expected *= std::size_t(info.shape[i]);
  }
  if (info.itemsize != 1)
    throw Error(ErrorKind::kInvalidArgument, "image data must be bytes (uint8)");
  return info;
}

// A new numpy array over a BlockCache block; the block goes back to the cache when numpy frees
// the array (never earlier), so same-sized decodes reuse mapped, warm memory. Not zero-filled.
py::array cached_array(const ImageShape& shape) {
  struct Owner {
    std::uint8_t* data;
    std::size_t bytes;
  };
  auto* owner = new Owner{BlockCache::shared().acquire(shape.bytes()), shape.bytes()};
  py::capsule base(owner, [](void* pointer) {
    auto* block = static_cast<Owner*>(pointer);
    BlockCache::shared().release(block->data, block->bytes);
    delete block;
  });
  const py::dtype dtype =
      shape.sample_bytes == 2 ? py::dtype::of<std::uint16_t>() : py::dtype::of<std::uint8_t>();
  return py::array(dtype, {shape.height, shape.width, shape.channels}, {}, owner->data, base);
}

ImageFormat parse_format(const std::string& format, const std::uint8_t* data, std::size_t size) {
  if (format == "auto") return codecs::detect_image_format(data, size);
  if (format == "jpeg") return ImageFormat::kJpeg;
  if (format == "png") return ImageFormat::kPng;
  throw Error(ErrorKind::kInvalidArgument, "format must be 'auto', 'jpeg' or 'png'");
}

py::array decode(const py::buffer& data, const std::string& format, ColorMode mode, int scale_num,
                 int scale_denom, std::optional<std::tuple<int, int, int, int>> crop,
                 bool accept_warnings, std::uint64_t max_pixels, bool fast) {
  thread_local codecs::ImageDecoder decoder;
  const py::buffer_info info = byte_view(data);
  const auto* bytes = static_cast<const std::uint8_t*>(info.ptr);
  const std::size_t size = std::size_t(info.size);

  codecs::DecodeOptions options;
  options.mode = mode;
  options.scale = {scale_num, scale_denom};
  if (crop)
    options.crop = {std::get<0>(*crop), std::get<1>(*crop), std::get<2>(*crop), std::get<3>(*crop)};
  options.accept_warnings = accept_warnings;
  options.max_pixels = max_pixels;
  options.fast = fast;
  const codecs::JpegDecodeOptions jpeg{mode,       options.scale, options.crop, accept_warnings,
                                       max_pixels, fast};

  ImageFormat kind = parse_format(format, bytes, size);
  ImageShape shape;
  {
    py::gil_scoped_release release;
    // A forced format still gets that decoder's own "not a JPEG/PNG file" message.
    if (kind == ImageFormat::kJpeg) {
      shape = decoder.jpeg().output_shape(decoder.jpeg().read_header(bytes, size), jpeg);
    } else if (kind == ImageFormat::kPng) {
      if (!options.scale.is_identity() || !options.crop.empty())
        throw Error(ErrorKind::kInvalidArgument, "PNG: scale and crop apply to JPEG images only");
      shape =
          decoder.png().output_shape(decoder.png().read_header(bytes, size), {mode, max_pixels});
    } else {
      shape = decoder.output_shape(bytes, size, options);  // throws the unknown-format error
    }
  }
  py::array out = cached_array(shape);
  const ImageView view{static_cast<std::uint8_t*>(out.mutable_data()), shape, shape.row_bytes()};
  {
    py::gil_scoped_release release;
    if (kind == ImageFormat::kJpeg) {
      decoder.jpeg().decode(bytes, size, jpeg, view);
    } else {
      decoder.png().decode(bytes, size, {mode, max_pixels}, view);
    }
  }
  return out;
}

py::dict jpeg_header(const py::buffer& data) {
  thread_local codecs::JpegDecoder decoder;
  const py::buffer_info info = byte_view(data);
  codecs::JpegHeader header;
  {
    py::gil_scoped_release release;
    header =
        decoder.read_header(static_cast<const std::uint8_t*>(info.ptr), std::size_t(info.size));
  }
  static const char* colorspaces[] = {"rgb", "ycbcr", "gray", "cmyk", "ycck"};
  static const char* subsamplings[] = {"444", "422", "420", "gray", "440", "411", "441", "unknown"};
  py::dict result;
  result["width"] = header.width;
  result["height"] = header.height;
  result["components"] = header.components;
  result["colorspace"] = colorspaces[static_cast<int>(header.colorspace)];
  result["subsampling"] = subsamplings[static_cast<int>(header.subsampling)];
  return result;
}

}  // namespace

void bind_codecs(py::module_& m) {
  py::enum_<ColorMode>(m, "ColorMode")
      .value("UNCHANGED", ColorMode::kUnchanged)
      .value("GRAY", ColorMode::kGray)
      .value("GRAY_ALPHA", ColorMode::kGrayAlpha)
      .value("RGB", ColorMode::kRgb)
      .value("RGB_ALPHA", ColorMode::kRgbAlpha);
  m.attr("DEFAULT_MAX_PIXELS") = kDefaultMaxPixels;
  m.def("decode_image", &decode, py::arg("data"), py::arg("format"), py::arg("mode"),
        py::arg("scale_num"), py::arg("scale_denom"), py::arg("crop"), py::arg("accept_warnings"),
        py::arg("max_pixels"), py::arg("fast") = false,
        "Decodes JPEG/PNG bytes into a new HWC numpy array (uint8, or uint16 for 16-bit PNGs "
        "decoded unchanged). Releases the GIL while decoding.");
  m.def("jpeg_header", &jpeg_header, py::arg("data"));
  m.def("jpeg_scaling_factors", [] {
    std::vector<std::pair<int, int>> result;
    for (const auto& f : codecs::jpeg_scaling_factors()) result.emplace_back(f.num, f.denom);
    return result;
  });
  m.def("smallest_scale_at_least", [](int height, int width, int min_height, int min_width) {
    const auto f = codecs::smallest_scale_at_least(height, width, min_height, min_width);
    return std::make_pair(f.num, f.denom);
  });
  m.def("jpeg_exif_orientation", [](const py::buffer& data) {
    const py::buffer_info info = byte_view(data);
    return codecs::jpeg_exif_orientation(static_cast<const std::uint8_t*>(info.ptr),
                                         std::size_t(info.size));
  });
  m.def("detect_image_format", [](const py::buffer& data) {
    const py::buffer_info info = byte_view(data);
    switch (codecs::detect_image_format(static_cast<const std::uint8_t*>(info.ptr),
                                        std::size_t(info.size))) {
      case ImageFormat::kJpeg:
        return "jpeg";
      case ImageFormat::kPng:
        return "png";
      default:
        return "unknown";
    }
  });
}

}  // namespace conveyor::bindings
