// Test fixture: writes an RGB image as a JPEG file with TurboJPEG (quality 90).
#pragma once

#include <turbojpeg.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace conveyor_test {

// `subsampling`: a TJSAMP_* value. Returns `path`.
inline std::string write_jpeg_file(const std::string& path, const std::vector<uint8_t>& rgb,
                                   int width, int height, int subsampling = TJSAMP_420) {
  tjhandle handle = tjInitCompress();
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  tjCompress2(handle, rgb.data(), width, 0, height, TJPF_RGB, &jpeg, &size, subsampling, 90, 0);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  std::fwrite(jpeg, 1, size, file);
  std::fclose(file);
  tjFree(jpeg);
  tjDestroy(handle);
  return path;
}

}  // namespace conveyor_test
