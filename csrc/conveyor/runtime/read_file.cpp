#include "conveyor/runtime/read_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "conveyor/core/error.h"

namespace conveyor {

void read_file(const std::string& path, std::vector<uint8_t>& bytes) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) {
    const int code = errno;
    throw Error(code == ENOENT ? ErrorKind::kNotFound : ErrorKind::kIo,
                "cannot open " + path + ": " + std::strerror(code));
  }
  // Read straight into the vector (files can grow or shrink meanwhile: read until EOF).
  long expected = 0;
  if (std::fseek(file, 0, SEEK_END) == 0) {
    expected = std::ftell(file);
    std::fseek(file, 0, SEEK_SET);
  }
  size_t total = 0;
  bytes.resize(expected > 0 ? static_cast<size_t>(expected) + 1 : size_t{1} << 16);
  for (;;) {
    const size_t got = std::fread(bytes.data() + total, 1, bytes.size() - total, file);
    total += got;
    if (total < bytes.size()) break;
    bytes.resize(bytes.size() * 2);
  }
  bytes.resize(total);
  const bool failed = std::ferror(file) != 0;
  const int code = errno;
  std::fclose(file);
  if (failed) throw Error(ErrorKind::kIo, "cannot read " + path + ": " + std::strerror(code));
}

}  // namespace conveyor
