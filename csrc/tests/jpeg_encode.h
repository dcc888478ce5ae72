// Test fixtures: a smooth test pattern and a libjpeg-API JPEG encoder (any sampling factors,
// progressive scans, restart markers, optimized Huffman tables).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

extern "C" {
#include <jpeglib.h>
}

namespace conveyor_test {

inline std::vector<std::uint8_t> pattern(int width, int height, int channels) {
  std::vector<std::uint8_t> pixels(std::size_t(width) * height * channels);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        pixels[(std::size_t(y) * width + x) * channels + c] =
            std::uint8_t(128 + 100 * std::sin(0.05 * x * (c + 1) + 0.03 * y) + (x * y) % 7);
  return pixels;
}

// Encodes with the libjpeg API, for what TurboJPEG 2.1's compressor cannot write: any sampling
// factors, restart markers, progressive scans. components 1, 3 (RGB in) or 4 (CMYK in, stored
// as Adobe CMYK).
struct EncodeSpec {
  int h_samp = 2, v_samp = 2;  // luma (or first component) sampling factors
  bool progressive = false;
  int restart_rows = 0;
  bool optimize = false;  // optimized Huffman tables instead of the standard ones
  int quality = 90;
};

inline std::vector<std::uint8_t> encode_libjpeg(const std::vector<std::uint8_t>& pixels, int width,
                                                int height, int components,
                                                const EncodeSpec& spec) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr error;
  cinfo.err = jpeg_std_error(&error);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = JDIMENSION(width);
  cinfo.image_height = JDIMENSION(height);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  cinfo.optimize_coding = spec.optimize ? TRUE : FALSE;
  cinfo.comp_info[0].h_samp_factor = spec.h_samp;
  cinfo.comp_info[0].v_samp_factor = spec.v_samp;
  for (int c = 1; c < cinfo.num_components; ++c)
    cinfo.comp_info[c].h_samp_factor = cinfo.comp_info[c].v_samp_factor = 1;
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  cinfo.restart_in_rows = spec.restart_rows;
  jpeg_start_compress(&cinfo, TRUE);
  const std::size_t stride = std::size_t(width) * components;
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(pixels.data() + stride * cinfo.next_scanline);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<std::uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

// `jpeg` without its segments of one marker type (e.g. 0xDB: DQT, 0xC4: DHT) before the scan.
inline std::vector<std::uint8_t> without_segments(const std::vector<std::uint8_t>& jpeg,
                                                  std::uint8_t marker) {
  std::vector<std::uint8_t> out(jpeg.begin(), jpeg.begin() + 2);
  std::size_t at = 2;
  while (at + 4 <= jpeg.size() && jpeg[at + 1] != 0xDA) {
    const std::size_t length = std::size_t(jpeg[at + 2]) << 8 | jpeg[at + 3];
    if (jpeg[at + 1] != marker)
      out.insert(out.end(), jpeg.begin() + std::ptrdiff_t(at),
                 jpeg.begin() + std::ptrdiff_t(at + 2 + length));
    at += 2 + length;
  }
  out.insert(out.end(), jpeg.begin() + std::ptrdiff_t(at), jpeg.end());
  return out;
}

}  // namespace conveyor_test
